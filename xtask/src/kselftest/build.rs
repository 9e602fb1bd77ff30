//! Building the selftests: the kernel's UAPI headers, then the TARGETs' `make install` with the
//! arch's gcc linking statically (the guest has no C library; gcc with `--toolchain clang` too),
//! out of the source tree in build/obj/kselftest-ARCH (with a kernel folder's tail: `-clang`,
//! `-VERSION`); the install folder packed as an initramfs layer.

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::initramfs::Compression;
use crate::initramfs::archive::{Entry, Kind};
use crate::sources::Tree;
use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// The selftests' folder in the kernel source.
pub const SELFTESTS: &str = "tools/testing/selftests";

/// Where the tests are in the guest.
pub const GUEST_DIR: &str = "kselftest";

/// The selftests' `make install` of `targets` into `install`, from the kernel source tree: `O=`
/// holds the headers (`KHDR_INCLUDES` is `O/usr/include`) and the objects (`O/kselftest/…`).
/// lib.mk compiles and links with `$(CC)`, so `-static` goes there: `USERLDFLAGS` misses the
/// Makefiles with their own link rules. `FORCE_TARGETS=1`: a target that does not build fails
/// the build instead of going missing from the list.
pub fn install_argv(arch: &Arch, obj: &Utf8Path, install: &Utf8Path, targets: &[String], jobs: usize) -> Vec<String> {
    let [arch_arg, cross] = arch.make_args();
    vec![
        "make".to_owned(),
        "-C".to_owned(),
        SELFTESTS.to_owned(),
        format!("O={obj}"),
        arch_arg,
        cross,
        format!("CC={}gcc -static", arch.cross_compile()),
        format!("TARGETS={}", targets.join(" ")),
        "FORCE_TARGETS=1".to_owned(),
        format!("KSFT_INSTALL_PATH={install}"),
        format!("-j{jobs}"),
        "install".to_owned(),
    ]
}

/// Builds and installs `targets`, packs them (with `shim`, our stand-in for busybox's timeout)
/// as a layer stored as `compression`; returns the layer.
pub fn layer(ctx: &Ctx, tree: &Tree, targets: &[String], compression: Compression) -> Result<Utf8PathBuf> {
    // Its headers are kernel makes: a folder per kernel source and toolchain, as a config's.
    let obj = crate::kernel::folder(ctx, &format!("kselftest-{}", ctx.arch.dir));
    let install = obj.join("install");
    let out = obj.join(format!("kselftest.{}", compression.suffix()));
    let argv = install_argv(ctx.arch, &obj, &install, targets, ctx.jobs);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let install_step = tree.step(&argv).log(obj.file_name().unwrap_or("kselftest"));
    // `headers` needs no .config: this folder is a kernel `O=` folder for the headers alone.
    let headers = crate::kernel::make(ctx, tree, &obj, &["headers"]);
    let runner = crate::prepare::runner(ctx)?;
    if ctx.dry_run {
        runner.run(&headers)?;
        runner.run(&install_step)?;
        // The layer is packed from what `make install` leaves; qemu's memory depends on its size.
        return Err(crate::dry::needs(&out));
    }
    fs::create_dir_all(&obj)?;
    let _lock = ctx.lock(&obj)?;
    runner.run(&headers)?;
    if install.exists() {
        fs::remove_dir_all(&install)?;
    }
    runner.run(&install_step)?;
    let mut tests = crate::initramfs::archive::collect(&install)?;
    for e in &mut tests {
        e.path = format!("{GUEST_DIR}/{}", e.path);
    }
    let shim = ctx.root.join("xtask/kselftest/timeout");
    anyhow::ensure!(shim.is_file(), "{shim} is missing");
    let mut extra = vec![
        Entry { path: "usr/bin/timeout".into(), mode: 0o755, kind: Kind::File { source: shim } },
        // For the tests that write there; rootfs/ has none.
        Entry { path: "tmp".into(), mode: 0o1777, kind: Kind::Dir },
    ];
    // runner.sh sends each test's output to `4>>/dev/stdout`; without the links udev would
    // make, that creates a file and the output is lost.
    for (name, fd) in [("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2"), ("fd", "")] {
        let target = format!("/proc/self/fd{fd}");
        extra.push(Entry { path: format!("dev/{name}"), mode: 0o777, kind: Kind::Symlink { target } });
    }
    let (count, bytes) = crate::initramfs::write_layer(vec![tests, extra], ctx.arch, &out, compression)
        .with_context(|| format!("packing {install}"))?;
    eprintln!("{out} ({bytes} bytes, {count} entries)");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_install_links_statically_with_the_arch_compiler_out_of_the_tree() {
        let arm64 = crate::arch::parse("arm64").unwrap();
        let targets = ["size".to_owned(), "exec".to_owned()];
        let argv = install_argv(arm64, "/b/obj/k".into(), "/b/obj/k/install".into(), &targets, 2);
        assert_eq!(argv[..4], ["make", "-C", "tools/testing/selftests", "O=/b/obj/k"]);
        assert!(argv.contains(&"ARCH=arm64".to_owned()), "{argv:?}");
        assert!(argv.contains(&format!("CC={}gcc -static", arm64.cross_compile())), "{argv:?}");
        assert!(argv.contains(&"TARGETS=size exec".to_owned()), "{argv:?}");
        assert!(argv.contains(&"KSFT_INSTALL_PATH=/b/obj/k/install".to_owned()), "{argv:?}");
        assert_eq!(argv.last().unwrap(), "install");
        let x86 = install_argv(crate::arch::parse("x86_64").unwrap(), "/o".into(), "/i".into(), &targets, 1);
        assert!(x86.contains(&"ARCH=x86".to_owned()), "{x86:?}");
    }
}
