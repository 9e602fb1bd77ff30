//! The kernel's make command line: `make O=… ARCH=… CROSS_COMPILE=…` with the reproducible
//! build environment, for every step of a kernel.

use crate::ctx::Ctx;
use crate::sources::Tree;
use crate::step::Step;
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
    ctx.obj(&folder_name(ctx.arch.dir, name, ctx.kernel.suffix.as_deref(), ctx.toolchain.suffix()))
}

/// `linux-ARCH-NAME`, then `-VERSION` for a kernel source other than the default one and
/// `-clang` for a toolchain other than gcc: such kernels never share a folder.
fn folder_name(arch_dir: &str, name: &str, source: Option<&str>, toolchain: Option<&str>) -> String {
    let tail: String = source.into_iter().chain(toolchain).map(|v| format!("-{v}")).collect();
    format!("linux-{arch_dir}-{name}{tail}")
}

/// make's arguments besides `O=` and the target: ARCH=, CROSS_COMPILE= and the toolchain's.
pub(super) fn args(ctx: &Ctx) -> Vec<String> {
    let mut args: Vec<String> = ctx.arch.make_args().into();
    args.extend(ctx.toolchain.make_args().iter().map(|a| a.to_string()));
    args
}

pub fn make(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, args: &[&str]) -> Step {
    let o = format!("O={obj}");
    let fixed = self::args(ctx);
    let argv: Vec<&str> =
        ["make", o.as_str()].into_iter().chain(fixed.iter().map(String::as_str)).chain(args.iter().copied()).collect();
    let step = tree.step(&argv).log(obj.file_name().unwrap_or("linux"));
    REPRODUCIBLE.iter().fold(step, |s, (k, v)| s.env(k, v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn another_source_gets_folders_of_its_own() {
        assert_eq!(super::folder_name("x86", "fast", None, None), "linux-x86-fast");
        assert_eq!(super::folder_name("arm64", "fast-share", Some("6.12.16"), None), "linux-arm64-fast-share-6.12.16");
        assert_eq!(super::folder_name("x86", "fast", None, Some("clang")), "linux-x86-fast-clang");
        assert_eq!(super::folder_name("x86", "fast", Some("6.12"), Some("clang")), "linux-x86-fast-6.12-clang");
    }
}
