//! End-to-end tests of a second kernel source, picked with `--kernel-version`, and of
//! `--toolchain clang`: every shipped config of every arch configures on the second source with
//! all its lines in effect, and the host's `fast`, built there with clang (LLVM=1), boots.
//!
//! The second source is the second of `TEENY_KERNEL_SOURCE`'s comma-separated tarballs (`.ci/run`
//! gives Debian's 6.1 and 6.12) or, without it, the second `linux` pin of sources.txt; its
//! version comes from its name or its pin, never from here. Configuring costs seconds per config.
//! One kernel is built cold (3–5 minutes): the host's `fast` on the second source with clang.
//! It is the only proof that a newer kernel builds with our builder image and boots with our
//! initramfs, and that Debian's clang builds our configs, boots and stays byte-reproducible
//! (the fake tree checks that LLVM=1 reaches every make and that clang's folder is its own).
//! One kernel for both, since each costs as much as the other and they are independent: a
//! failure names which part broke. A copy of the config in another `O=` folder of the same build
//! folder is warm (ccache hits, about a minute). The other arches' builds on the second source
//! and with clang are measured by hand (docs/builds.md). The build folder is the rest of the
//! tier's (target/tmp/e2e-build), so busybox is not built again.

mod common;

use common::{host, json, serial, stderr, stdout, str_at};
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
fn fast_built_with_clang_on_the_second_kernel_boots_and_a_copy_has_the_same_bytes() {
    let _g = serial();
    let version = second_version();
    let clang = ["--toolchain", "clang", "--kernel-version", &version];
    let boot = [&clang[..], &["qemu", "--kernel", "fast", "--", "uname -r; cat /proc/version; exit 4"]].concat();
    let out = xtask(&boot);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let said = stdout(&out);
    let release = said.lines().next().unwrap_or_default().trim().to_owned();
    assert!(
        release == version
            || release.starts_with(&format!("{version}."))
            || release.starts_with(&format!("{version}-")),
        "uname -r says {release}, --kernel-version {version}"
    );
    assert!(said.contains("clang"), "the guest's kernel says its compiler: {said}");
    let obj = build_dir().join("obj").join(common::kernel_folder(host(), "fast", &[&version, "clang"]));
    let record = json(&obj.join("teeny-build.json"));
    assert_eq!(str_at(&record, "/source/version"), release.as_str(), "{record:#}");
    assert_eq!(str_at(&record, "/toolchain"), "clang");
    assert!(str_at(&record, "/compiler").contains("clang version"), "{record:#}");
    let make: Vec<&str> = record["make"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(make.iter().all(|m| m.split(' ').any(|w| w == "LLVM=1")), "{make:?}");

    // The same config under another name, so in an O= folder of its own, in the same build
    // folder (the same unpacked source, so the same paths for ccache): the same bytes, from the
    // warm cache. A build folder of its own would unpack the source again at another path.
    let tail = [version.as_str(), "clang"];
    let dir = common::private_copy(&build_dir(), "fast", "copy", "", &tail);
    let copy_obj = build_dir().join("obj").join(common::kernel_folder(host(), "copy", &tail));
    let env = [("TEENY_KERNEL_CONFIGS", dir.as_path())];
    let out = common::run(&build_dir(), &[&clang[..], &["kernel", "copy"]].concat(), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = json(&copy_obj.join("teeny-build.json"));
    for artifact in ["/vmlinux/sha256", "/bzimage/sha256"] {
        assert_eq!(str_at(&copy, artifact), str_at(&record, artifact), "{artifact} differs between the two folders");
    }
    let (hits, misses) = (copy["ccache"]["hits"].as_u64().unwrap(), copy["ccache"]["misses"].as_u64().unwrap());
    assert!(hits > 10 * misses.max(1), "the copy compiled from the warm cache: {hits} hits, {misses} misses");
    std::fs::remove_dir_all(copy_obj).unwrap();
    std::fs::remove_dir_all(dir).unwrap();

    // An unknown version is named with the ones there are, before anything is built.
    let out = xtask(&["--kernel-version", "1.0", "kernel", "fast"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--kernel-version 1.0: "), "{}", stderr(&out));
}
