//! End-to-end tests of a second kernel source, picked with `--kernel-version`: every shipped
//! config of every arch configures on it with all its lines in effect, and the host's `fast`
//! builds and boots on it.
//!
//! The second source is the second of `TEENY_KERNEL_SOURCE`'s comma-separated tarballs (`.ci/run`
//! gives Debian's 6.1 and 6.12) or, without it, the second `linux` pin of sources.txt; its
//! version comes from its name or its pin, never from here. Configuring costs seconds per config.
//! The one kernel built is the host's `fast` on the second source (3–4 minutes cold): the only
//! proof that a newer kernel builds with our builder image and boots with our initramfs; the
//! other arches' builds on it are measured by hand (docs/builds.md). The build folder is the rest
//! of the tier's (target/tmp/e2e-build), so busybox is not built again.

mod common;

use common::{host, serial, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

fn xtask(args: &[&str]) -> Output {
    common::run(&build_dir(), args, &[])
}

/// The second kernel's version, as `--kernel-version` takes it.
fn second_version() -> String {
    let version = match std::env::var("TEENY_KERNEL_SOURCE") {
        Ok(list) if !list.is_empty() => list.split(',').nth(1).map(|path| {
            let name = Path::new(path).file_name().unwrap().to_str().unwrap();
            let stem = name.split(".tar").next().unwrap();
            stem.trim_start_matches("linux-source-").trim_start_matches("linux-").to_owned()
        }),
        _ => std::fs::read_to_string(common::root().join("sources.txt"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("linux "))
            .nth(1)
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned()),
    };
    version.expect("a second kernel: TEENY_KERNEL_SOURCE=FIRST,SECOND, or a second `linux` line in sources.txt")
}

#[test]
fn every_shipped_config_configures_on_the_second_kernel_with_all_its_lines() {
    let _g = serial();
    let version = second_version();
    let mut configured = 0;
    for arch in std::fs::read_dir(common::root().join("kernel-configs")).unwrap() {
        let arch = arch.unwrap().path();
        let arch_name = arch.file_name().unwrap().to_str().unwrap().to_owned();
        for config in std::fs::read_dir(&arch).unwrap() {
            let config = config.unwrap().path();
            let Some(name) = config.file_name().unwrap().to_str().unwrap().strip_suffix(".config") else { continue };
            let args = ["--arch", &arch_name, "--kernel-version", &version, "kernel", name, "--configure"];
            let out = xtask(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{arch_name}/{name} on {version}: {err}");
            assert!(err.contains("settings took effect"), "{arch_name}/{name} on {version}: {err}");
            assert!(
                err.contains(&format!("-{name}-{version}/.config")),
                "a folder of its own for the second kernel: {err}"
            );
            configured += 1;
        }
    }
    assert!(configured >= 12, "every arch's configs: {configured}");
}

#[test]
fn fast_builds_and_boots_on_the_second_kernel() {
    let _g = serial();
    let version = second_version();
    let out = xtask(&["--kernel-version", &version, "qemu", "--kernel", "fast", "--", "uname -r; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let release = stdout(&out).trim().to_owned();
    assert!(
        release == version
            || release.starts_with(&format!("{version}."))
            || release.starts_with(&format!("{version}-")),
        "uname -r says {release}, --kernel-version {version}"
    );
    let obj = build_dir().join("obj").join(common::kernel_folder(host(), "fast", &[&version]));
    let record = common::json(&obj.join("teeny-build.json"));
    assert_eq!(common::str_at(&record, "/source/version"), release.as_str(), "{record:#}");
    // An unknown version is named with the ones there are, before anything is built.
    let out = xtask(&["--kernel-version", "1.0", "kernel", "fast"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--kernel-version 1.0: "), "{}", stderr(&out));
}
