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

/// The `O=` folder of config NAME for the chosen arch and kernel source.
pub(super) fn obj_dir(ctx: &Ctx, name: &str) -> Utf8PathBuf {
    ctx.obj(&folder_name(ctx.arch.dir, name, ctx.kernel.suffix.as_deref()))
}

/// `linux-ARCH-NAME`, and `-VERSION` for a kernel source other than the default one.
fn folder_name(arch_dir: &str, name: &str, source: Option<&str>) -> String {
    let source = source.map(|v| format!("-{v}")).unwrap_or_default();
    format!("linux-{arch_dir}-{name}{source}")
}

pub fn make(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, args: &[&str]) -> Step {
    let o = format!("O={obj}");
    let [arch, cross] = ctx.arch.make_args();
    let argv: Vec<&str> =
        ["make", o.as_str(), arch.as_str(), cross.as_str()].into_iter().chain(args.iter().copied()).collect();
    let step = tree.step(&argv).log(obj.file_name().unwrap_or("linux"));
    REPRODUCIBLE.iter().fold(step, |s, (k, v)| s.env(k, v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn another_source_gets_folders_of_its_own() {
        assert_eq!(super::folder_name("x86", "fast", None), "linux-x86-fast");
        assert_eq!(super::folder_name("arm64", "fast-share", Some("6.12.16")), "linux-arm64-fast-share-6.12.16");
    }
}
