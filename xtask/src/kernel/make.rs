//! The kernel's make command line: `make O=… ARCH=… CROSS_COMPILE=…` with the reproducible
//! build environment, for every step of a kernel.

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::sources::Tree;
use crate::step::Step;
use crate::toolchain::Toolchain;
use camino::{Utf8Path, Utf8PathBuf};

/// The kernel's environment for reproducible builds: same inputs, same bzImage.
pub(super) const REPRODUCIBLE: &[(&str, &str)] = &[
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 1970"),
    ("KBUILD_BUILD_USER", "teeny"),
    ("KBUILD_BUILD_HOST", "teeny-linux"),
    ("KBUILD_BUILD_VERSION", "1"),
];

/// The `O=` folder of config NAME for the chosen arch, kernel source and toolchain.
pub(super) fn obj_dir(ctx: &Ctx, name: &str) -> Utf8PathBuf {
    folder(ctx, &format!("linux-{}-{name}", ctx.arch.dir))
}

/// A folder of `make`s on the chosen kernel source with the chosen toolchain (a config's `O=`
/// folder, kselftest's headers): `STEM` with the tail that [`folder_name`] gives it.
pub fn folder(ctx: &Ctx, stem: &str) -> Utf8PathBuf {
    ctx.obj(&folder_name(stem, ctx.kernel.suffix.as_deref(), ctx.toolchain.suffix()))
}

/// `STEM` (`linux-ARCH-NAME`), then `-VERSION` for a kernel source other than the default one
/// and `-clang` for a toolchain other than gcc: such kernels never share a folder.
fn folder_name(stem: &str, source: Option<&str>, toolchain: Option<&str>) -> String {
    let tail: String = source.into_iter().chain(toolchain).map(|v| format!("-{v}")).collect();
    format!("{stem}{tail}")
}

/// make's arguments besides `O=` and the target: ARCH=, CROSS_COMPILE= and the toolchain's.
pub(super) fn args(ctx: &Ctx) -> Vec<String> {
    fixed_args(ctx.arch, ctx.toolchain)
}

pub(super) fn fixed_args(arch: &Arch, toolchain: Toolchain) -> Vec<String> {
    let mut args: Vec<String> = arch.make_args().into();
    args.extend(toolchain.make_args().iter().map(|a| a.to_string()));
    args
}

/// `make O=OBJ ARCH=… CROSS_COMPILE=… [LLVM=1] ARGS…`.
fn argv(obj: &Utf8Path, arch: &Arch, toolchain: Toolchain, args: &[&str]) -> Vec<String> {
    let head = ["make".to_owned(), format!("O={obj}")];
    head.into_iter().chain(fixed_args(arch, toolchain)).chain(args.iter().map(|a| a.to_string())).collect()
}

pub fn make(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, args: &[&str]) -> Step {
    let argv = argv(obj, ctx.arch, ctx.toolchain, args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let step = tree.step(&argv).log(obj.file_name().unwrap_or("linux"));
    REPRODUCIBLE.iter().fold(step, |s, (k, v)| s.env(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_source_or_toolchain_gets_folders_of_its_own() {
        assert_eq!(folder_name("linux-x86-fast", None, None), "linux-x86-fast");
        assert_eq!(folder_name("linux-arm64-fast-share", Some("6.12.16"), None), "linux-arm64-fast-share-6.12.16");
        assert_eq!(folder_name("linux-x86-fast", None, Some("clang")), "linux-x86-fast-clang");
        assert_eq!(folder_name("linux-x86-fast", Some("6.12"), Some("clang")), "linux-x86-fast-6.12-clang");
        assert_eq!(folder_name("kselftest-riscv64", None, Toolchain::Clang.suffix()), "kselftest-riscv64-clang");
    }

    #[test]
    fn clang_adds_llvm_1_after_the_arch_and_keeps_its_cross_prefix() {
        let arm64 = crate::arch::parse("arm64").unwrap();
        let gcc = argv("/b/obj/k".into(), arm64, Toolchain::Gcc, &["-j2"]);
        let clang = argv("/b/obj/k".into(), arm64, Toolchain::Clang, &["-j2"]);
        let [arch, cross] = arm64.make_args();
        assert_eq!(gcc, ["make", "O=/b/obj/k", &arch, &cross, "-j2"]);
        assert_eq!(clang, ["make", "O=/b/obj/k", &arch, &cross, "LLVM=1", "-j2"]);
    }
}
