//! Step 3: the initramfs, packed in-process as a reproducible newc cpio + gzip -9.
//!
//! Layers, later ones winning: busybox's `_install`, `rootfs/` from git, and the device nodes
//! in [`DEV_NODES`] plus the arch's serial console (`dev/console` the kernel opens for init
//! before anything is mounted; the rest so that `/init-fast` needs no mdev). No host cpio, no
//! root, no fakeroot.

pub mod archive;

use crate::ctx::{Ctx, write_atomic};
use crate::stamp::Stamp;
use anyhow::{Context, Result, bail};
use archive::{Entry, Kind};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

/// How the archive is stored. gzip -9 is the walk-through's; an uncompressed archive is larger
/// but costs the booting kernel no decompression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

/// Builds busybox if needed, then writes build/initramfs-busybox-ARCH.cpio[.gz]; returns its path.
pub fn build(ctx: &Ctx, compression: Compression) -> Result<Utf8PathBuf> {
    let install = crate::busybox::build(ctx, false)?;
    let entries = entries(&install, &ctx.root.join("rootfs"), ctx.arch)?;
    check_binaries(&entries, ctx.arch)?;
    let out = path(ctx, compression);
    let mtime = mtime()?;
    // The uncompressed archive is cheap to make in memory; gzip -9 is what costs. Same archive
    // as the last write: keep that file.
    let (_, cpio) = archive::write_cpio(&entries, mtime, Vec::new())?;
    let stamp = Stamp::new(
        out.with_file_name(format!(".{}.stamp", out.file_name().unwrap())),
        &[&cpio, out.as_str().as_bytes()],
    );
    if stamp.fresh(&[&out]) {
        eprintln!("{out} is up to date");
        return Ok(out);
    }
    if ctx.dry_run {
        crate::dry::would_write(&out, &format!("the initramfs, {} entries", entries.len()));
        return Ok(out);
    }
    stamp.clear();
    let size = write(&entries, mtime, &out, compression)?;
    stamp.write()?;
    eprintln!("{out} ({size} bytes, {} entries)", entries.len());
    Ok(out)
}

impl Compression {
    /// The file name suffix of an archive stored this way.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => "cpio.gz",
            Compression::None => "cpio",
        }
    }
}

/// Where the initramfs with this compression is written.
pub fn path(ctx: &Ctx, compression: Compression) -> Utf8PathBuf {
    ctx.build.join(format!("initramfs-busybox-{}.{}", ctx.arch.dir, compression.suffix()))
}

/// What a kernel boots: the busybox initramfs with `compression`, followed by `layers` (the
/// kernel's modules, kselftest's tests), written to `out` (the kernel unpacks concatenated
/// archives one after the other, a later one's file over an earlier one's, so the shared archive
/// is not repacked). Without layers, the busybox initramfs itself. `no_build`: use the archive
/// already there.
pub fn boot_archive(
    ctx: &Ctx,
    compression: Compression,
    layers: &[&Utf8Path],
    out: &Utf8Path,
    no_build: bool,
) -> Result<Utf8PathBuf> {
    let initrd = if no_build {
        let path = path(ctx, compression);
        anyhow::ensure!(path.is_file(), "--no-build: {path} is missing: pack it with `cargo xtask initramfs`");
        path
    } else {
        build(ctx, compression)?
    };
    if layers.is_empty() {
        return Ok(initrd);
    }
    if ctx.dry_run {
        let layers: Vec<String> = layers.iter().map(ToString::to_string).collect();
        crate::dry::would_write(out, &format!("{initrd} followed by {}", layers.join(", ")));
        return Ok(out.to_owned());
    }
    let mut bytes = fs::read(&initrd)?;
    for layer in layers {
        bytes.extend(fs::read(layer)?);
    }
    write_atomic(out, &bytes)?;
    Ok(out.to_owned())
}

/// Packs the `lib/modules/` that `make modules_install` put under `root` into `out`; returns
/// the number of modules and the archive's size.
pub fn write_modules(root: &Utf8Path, out: &Utf8Path, compression: Compression) -> Result<(usize, u64)> {
    let entries = archive::collect(root)?;
    let modules = entries.iter().filter(|e| e.path.ends_with(".ko")).count();
    Ok((modules, write(&entries, mtime()?, out, compression)?))
}

/// The character devices every initramfs has, as devtmpfs names them (name, mode, major, minor).
const DEV_NODES: &[(&str, u32, u32, u32)] = &[
    ("console", 0o600, 5, 1),
    ("full", 0o666, 1, 7),
    ("null", 0o666, 1, 3),
    ("random", 0o666, 1, 8),
    ("tty", 0o666, 5, 0),
    ("urandom", 0o666, 1, 9),
    ("zero", 0o666, 1, 5),
];

/// Every archive member, sorted, from busybox's install folder, the rootfs skeleton and the
/// device nodes (with `arch`'s console).
pub fn entries(install: &Utf8Path, rootfs: &Utf8Path, arch: &crate::arch::Arch) -> Result<Vec<Entry>> {
    let init = rootfs.join("init");
    let meta = fs::metadata(&init).with_context(|| format!("the initramfs needs an init script at {init}"))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("{init} is not an executable file (chmod +x it)");
    }
    Ok(archive::merge(vec![archive::collect(install)?, archive::collect(rootfs)?, dev_nodes(arch)]))
}

/// `dev/` with [`DEV_NODES`] and the arch's serial console.
fn dev_nodes(arch: &crate::arch::Arch) -> Vec<Entry> {
    let (major, minor) = arch.console_node;
    let serial = (arch.console, 0o600, major, minor);
    let nodes = DEV_NODES.iter().copied().chain([serial]).map(|(name, mode, major, minor)| Entry {
        path: format!("dev/{name}"),
        mode,
        kind: Kind::CharDev { major, minor },
    });
    [Entry { path: "dev".into(), mode: 0o755, kind: Kind::Dir }].into_iter().chain(nodes).collect()
}

/// Every ELF file packed must run on the guest's architecture: a busybox or a `rootfs/` binary
/// built for another one would only fail in the guest, as "exec format error" or a panic.
/// Returns the paths of those that are dynamically linked (the guest has no C library).
fn check_binaries<'a>(entries: &'a [Entry], arch: &crate::arch::Arch) -> Result<Vec<&'a str>> {
    let mut dynamic = Vec::new();
    for e in entries {
        if let Kind::File { source } = &e.kind {
            let bytes = fs::read(source)?;
            if crate::elf::is_elf(&bytes) {
                let elf = crate::elf::check(source, &bytes, arch)
                    .with_context(|| format!("refusing to pack /{} into an initramfs for {}", e.path, arch.name))?;
                if elf.interpreter {
                    dynamic.push(e.path.as_str());
                }
            }
        }
    }
    Ok(dynamic)
}

/// Packs `layers` (later ones winning) into `out`, an archive booted after the busybox
/// initramfs (see [`boot_archive`]); every ELF file must be statically linked for `arch`.
/// Returns the archive's entries and size.
pub fn write_layer(
    layers: Vec<Vec<Entry>>,
    arch: &crate::arch::Arch,
    out: &Utf8Path,
    compression: Compression,
) -> Result<(usize, u64)> {
    let entries = archive::merge(layers);
    let dynamic = check_binaries(&entries, arch)?;
    if let Some(first) = dynamic.first() {
        bail!(
            "refusing to pack {out}: /{first}{} dynamically linked, and the guest has no C library",
            match dynamic.len() {
                1 => " is".to_owned(),
                n => format!(" and {} other file(s) are", n - 1),
            }
        );
    }
    Ok((entries.len(), write(&entries, mtime()?, out, compression)?))
}

/// Fixed timestamps make the archive reproducible: SOURCE_DATE_EPOCH if set, else 0.
fn mtime() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => {
            s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={s} is not a number of seconds"))
        }
        _ => Ok(0),
    }
}

/// Writes the archive to a temporary name and renames it over `out`, so an interrupted run
/// leaves the previous image intact. Returns the size in bytes.
pub fn write(entries: &[Entry], mtime: u32, out: &Utf8Path, compression: Compression) -> Result<u64> {
    // Removed on drop unless renamed into place.
    let guard = crate::disk::Tmp::beside(out);
    let tmp = guard.path();
    let result = (|| -> Result<u64> {
        let file = fs::File::create(tmp)?;
        let w = std::io::BufWriter::new(file);
        let mut w = match compression {
            Compression::Gzip => archive::write_gz(entries, mtime, w)?,
            Compression::None => archive::write_cpio(entries, mtime, w)?.1,
        };
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(tmp, out)?;
        Ok(fs::metadata(out)?.len())
    })();
    if result.is_ok() {
        guard.keep();
    }
    result.with_context(|| format!("writing {out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_has_the_usual_nodes_and_the_arch_console() {
        let node = |arch: &str, name: &str| {
            dev_nodes(crate::arch::parse(arch).unwrap())
                .into_iter()
                .find(|e| e.path == format!("dev/{name}"))
                .map(|e| e.kind)
        };
        assert_eq!(node("arm64", "ttyAMA0"), Some(Kind::CharDev { major: 204, minor: 64 }));
        assert_eq!(node("riscv64", "ttyS0"), Some(Kind::CharDev { major: 4, minor: 64 }));
        assert_eq!(node("arm64", "ttyS0"), None);
        assert_eq!(node("x86_64", "null"), Some(Kind::CharDev { major: 1, minor: 3 }));
        assert_eq!(node("x86_64", "console"), Some(Kind::CharDev { major: 5, minor: 1 }));
    }

    #[test]
    fn a_binary_for_another_arch_is_refused() {
        let dir = archive::tests::TempDir::new("binaries");
        let busybox = dir.0.join("busybox");
        // An x86-64 ELF header, no program headers.
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        fs::write(&busybox, &elf).unwrap();
        let script = dir.0.join("init");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        let entries = [("bin/busybox", &busybox), ("init", &script)].map(|(path, source)| Entry {
            path: path.into(),
            mode: 0o755,
            kind: Kind::File { source: source.clone() },
        });
        assert!(check_binaries(&entries, crate::arch::parse("x86_64").unwrap()).unwrap().is_empty());
        let err = format!("{:#}", check_binaries(&entries, crate::arch::parse("riscv64").unwrap()).unwrap_err());
        assert!(err.starts_with("refusing to pack /bin/busybox into an initramfs for riscv64: "), "{err}");
        assert!(err.ends_with("is a binary for x86_64, not riscv64"), "{err}");
    }
}
