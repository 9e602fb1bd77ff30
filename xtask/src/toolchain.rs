//! The kernel's compiler: `--toolchain gcc|clang`. gcc is the walk-through's; clang builds the
//! kernel with `LLVM=1` (clang, ld.lld and the llvm binutils of the builder image, which
//! cross-compile by themselves with ARCH=). busybox and the selftests are built with gcc either
//! way. Kernels of different toolchains are built in folders of their own.

/// Which compiler builds the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Toolchain {
    #[default]
    Gcc,
    Clang,
}

impl Toolchain {
    pub fn name(self) -> &'static str {
        match self {
            Toolchain::Gcc => "gcc",
            Toolchain::Clang => "clang",
        }
    }

    /// What make gets besides ARCH= and CROSS_COMPILE=.
    pub fn make_args(self) -> &'static [&'static str] {
        match self {
            Toolchain::Gcc => &[],
            Toolchain::Clang => &["LLVM=1"],
        }
    }

    /// What kernel folder names get after the config's name (none for the default, gcc).
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Toolchain::Gcc => None,
            Toolchain::Clang => Some("clang"),
        }
    }

    /// The tools as kbuild names them for Kconfig (`$(CC)` in its compiler tests), with the
    /// arch's CROSS_COMPILE prefix for gcc's; LLVM=1's have none.
    pub fn kbuild_tools(self, cross: &str) -> Vec<(&'static str, String)> {
        let tools = match self {
            Toolchain::Gcc => [("CC", "gcc"), ("LD", "ld"), ("NM", "nm"), ("OBJCOPY", "objcopy")],
            Toolchain::Clang => [("CC", "clang"), ("LD", "ld.lld"), ("NM", "llvm-nm"), ("OBJCOPY", "llvm-objcopy")],
        };
        let prefix = if self == Toolchain::Gcc { cross } else { "" };
        tools.iter().map(|(k, v)| (*k, format!("{prefix}{v}"))).collect()
    }

    /// What kbuild exports as CLANG_FLAGS for the target `triple` (`aarch64-linux-gnu`), which
    /// Kconfig's compiler tests (`cc-option`, `as-instr`) add to `$(CC)`: without `--target`,
    /// clang would test the host's flags. As 6.1's scripts/Makefile.clang with the integrated
    /// assembler (6.12 adds `-Werror=option-ignored -Werror=unused-command-line-argument`).
    /// None for gcc.
    pub fn clang_flags(self, triple: &str) -> Option<String> {
        (self == Toolchain::Clang).then(|| {
            format!(
                "--target={triple} -fintegrated-as -Werror=unknown-warning-option -Werror=ignored-optimization-argument"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Toolchain;

    #[test]
    fn clang_is_llvm_1_in_a_folder_of_its_own() {
        assert_eq!(Toolchain::Gcc.make_args(), [] as [&str; 0]);
        assert_eq!(Toolchain::Clang.make_args(), ["LLVM=1"]);
        assert_eq!((Toolchain::Gcc.suffix(), Toolchain::Clang.suffix()), (None, Some("clang")));
        let cc = |t: Toolchain| t.kbuild_tools("aarch64-linux-gnu-")[0].1.clone();
        assert_eq!((cc(Toolchain::Gcc).as_str(), cc(Toolchain::Clang).as_str()), ("aarch64-linux-gnu-gcc", "clang"));
        assert_eq!(Toolchain::Gcc.clang_flags("aarch64-linux-gnu"), None);
        assert!(Toolchain::Clang.clang_flags("aarch64-linux-gnu").unwrap().starts_with("--target=aarch64-linux-gnu "));
    }
}
