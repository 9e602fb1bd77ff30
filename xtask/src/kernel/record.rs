//! The build record each kernel build leaves in its `O=` folder (`teeny-build.json`), like
//! TuxMake's metadata.json: what went in, how it was built, what came out.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

pub const FILE: &str = "teeny-build.json";

#[derive(Serialize)]
pub struct Record {
    pub config: String,
    /// The `--arch` it was built for.
    pub arch: String,
    /// sha256 of the config file's text.
    pub config_sha256: String,
    pub base: String,
    pub merge: Vec<String>,
    pub source: Source,
    pub builder_image: String,
    /// `--toolchain`: gcc or clang (LLVM=1).
    pub toolchain: String,
    /// The compiler and its version, as the kernel's own .config records it
    /// (CONFIG_CC_VERSION_TEXT: "gcc (Debian 12.2.0-14) 12.2.0", "Debian clang version 14.0.6").
    pub compiler: Option<String>,
    /// The make command lines, in order: base target, olddefconfig, build.
    pub make: Vec<String>,
    pub duration_s: f64,
    pub vmlinux: Artifact,
    /// The arch's boot image (bzImage on x86, Image on arm64 and riscv64); the key keeps its x86
    /// name for the readers of existing records.
    pub bzimage: Artifact,
    /// None with --no-ccache.
    pub ccache: Option<crate::ccache::Stats>,
    /// Hand edits of `.config` that the config file does not hold, as `.config` has them.
    pub unsaved_changes: Vec<String>,
    /// Compiler warnings in the build's log.
    pub warnings: usize,
}

#[derive(Serialize)]
pub struct Source {
    pub version: String,
    /// The tarball's sha256; None for a source tree.
    pub sha256: Option<String>,
    pub dir: Utf8PathBuf,
}

#[derive(Serialize)]
pub struct Artifact {
    pub bytes: u64,
    pub sha256: String,
}

impl Artifact {
    pub fn of(path: &Utf8Path) -> Result<Artifact> {
        Ok(Artifact { bytes: fs_err::metadata(path)?.len(), sha256: crate::sources::sha256_file(path, None)? })
    }
}

/// The compiler's warnings in a build log (`file.c:12:5: warning: …`).
pub fn warnings(log: &str) -> usize {
    log.lines().filter(|l| l.contains(": warning: ")).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_compiler_warnings_only() {
        let log = "  CC      kernel/fork.o\nkernel/fork.c:12:5: warning: unused variable 'x' [-Wunused-variable]\n\
                   scripts/Makefile.build: warning-free\nmm/slab.c:1:1: warning: y\n";
        assert_eq!(super::warnings(log), 2);
    }
}
