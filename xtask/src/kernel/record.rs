//! The build record each kernel build leaves in its `O=` folder (`teeny-build.json`), like
//! TuxMake's metadata.json: what went in, how it was built, what came out. It is written
//! first, before make runs, as `"status": "running"` with what is known then, and again when
//! the build ends, as `pass` (with what came out) or `fail` (with the error): so a killed
//! build leaves `running`. Every write is atomic.

use crate::ctx::write_atomic;
use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

pub const FILE: &str = "teeny-build.json";

/// How far the build got.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Written before make starts; a build killed (or its machine lost) leaves it so.
    Running,
    Pass,
    Fail,
}

#[derive(Serialize)]
pub struct Record {
    pub status: Status,
    /// A failed build's error, its first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What is known before make runs.
    #[serde(flatten)]
    pub start: Start,
    /// The compiler and its version, as the kernel's own .config records it
    /// (CONFIG_CC_VERSION_TEXT: "gcc (Debian 12.2.0-14) 12.2.0", "Debian clang version 14.0.6"); null until configured.
    pub compiler: Option<String>,
    /// Null while running.
    pub duration_s: Option<f64>,
    /// Null until it passed.
    pub vmlinux: Option<Artifact>,
    /// The arch's boot image (bzImage on x86, Image on arm64 and riscv64); the key keeps its x86
    /// name for the readers of existing records. Null until it passed.
    pub bzimage: Option<Artifact>,
    /// None with --no-ccache, and until it passed.
    pub ccache: Option<crate::ccache::Stats>,
    /// Hand edits of `.config` that the config file does not hold, as `.config` has them.
    pub unsaved_changes: Vec<String>,
    /// Compiler warnings in the build's log; null while running.
    pub warnings: Option<usize>,
}

/// The part of a [`Record`] written before make runs, so that it survives a killed build.
#[derive(Serialize)]
pub struct Start {
    /// When the build started (UTC, ISO 8601).
    pub started: String,
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
    /// The make command lines, in order: base target, olddefconfig, build.
    pub make: Vec<String>,
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

impl Record {
    /// The record of a build that is starting: `status: running`, its outcome null.
    pub fn running(start: Start) -> Record {
        Record {
            status: Status::Running,
            error: None,
            start,
            compiler: None,
            duration_s: None,
            vmlinux: None,
            bzimage: None,
            ccache: None,
            unsaved_changes: Vec::new(),
            warnings: None,
        }
    }

    /// Writes it into the `O=` folder `obj`, atomically.
    pub fn write(&self, obj: &Utf8Path) -> Result<()> {
        write_atomic(&obj.join(FILE), serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// The build failed with `error` after `duration_s`.
    pub fn fail(&mut self, error: &anyhow::Error, duration_s: f64) {
        self.status = Status::Fail;
        self.error = Some(format!("{error:#}").lines().next().unwrap_or_default().to_owned());
        self.duration_s = Some(duration_s);
    }
}

/// The compiler's warnings in a build log (`file.c:12:5: warning: …`).
pub fn warnings(log: &str) -> usize {
    log.lines().filter(|l| l.contains(": warning: ")).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Record {
        Record::running(Start {
            started: crate::clock::iso8601(1_700_000_000),
            config: "fast".into(),
            arch: "x86_64".into(),
            config_sha256: "c".repeat(64),
            base: "tinyconfig".into(),
            merge: Vec::new(),
            source: Source { version: "6.1.127".into(), sha256: Some("s".repeat(64)), dir: "/b/src/linux".into() },
            builder_image: "teeny-linux-builder:abc".into(),
            toolchain: "gcc".into(),
            make: vec!["make O=/b/obj/linux-x86-fast ARCH=x86 CROSS_COMPILE= -j2".into()],
        })
    }

    #[test]
    fn a_running_record_has_what_is_known_before_make_and_nulls_for_the_rest() {
        let v = serde_json::to_value(running()).unwrap();
        assert_eq!(v["status"], "running");
        assert_eq!(v["started"], "2023-11-14T22:13:20Z");
        assert_eq!(
            (v["config"].as_str(), v["builder_image"].as_str()),
            (Some("fast"), Some("teeny-linux-builder:abc"))
        );
        assert_eq!(v["make"].as_array().map(Vec::len), Some(1));
        for key in ["vmlinux", "bzimage", "compiler", "duration_s", "warnings", "ccache"] {
            assert!(v.get(key).is_some_and(|x| x.is_null()), "{key}: {v:#}");
        }
        assert!(v.get("error").is_none(), "{v:#}");
    }

    #[test]
    fn a_failed_record_says_the_errors_first_line_and_a_passed_one_what_came_out() {
        let mut record = running();
        let error = anyhow::anyhow!("`make … -j2` failed: exit status: 2; last lines of x.log:\n  | oops")
            .context("building fast");
        record.fail(&error, 1.5);
        let v = serde_json::to_value(&record).unwrap();
        assert_eq!(v["status"], "fail");
        assert_eq!(v["error"], "building fast: `make … -j2` failed: exit status: 2; last lines of x.log:");
        assert_eq!(v["duration_s"], 1.5);
        let passed = Record {
            status: Status::Pass,
            vmlinux: Some(Artifact { bytes: 6, sha256: "v".repeat(64) }),
            warnings: Some(0),
            ..running()
        };
        let v = serde_json::to_value(&passed).unwrap();
        assert_eq!((v["status"].as_str(), v["vmlinux"]["bytes"].as_u64()), (Some("pass"), Some(6)));
        assert!(v.get("error").is_none());
    }

    #[test]
    fn counts_compiler_warnings_only() {
        let log = "  CC      kernel/fork.o\nkernel/fork.c:12:5: warning: unused variable 'x' [-Wunused-variable]\n\
                   scripts/Makefile.build: warning-free\nmm/slab.c:1:1: warning: y\n";
        assert_eq!(warnings(log), 2);
    }
}
