//! End-to-end test of `cargo xtask kselftest` with a real kernel, booted under TCG: the `size`
//! selftest built statically in the builder, packed as an initramfs layer, run by
//! run_kselftest.sh under busybox's sh, its TAP read back from the exit status and `--json`.
//!
//! The kernel is the host's `fast`, which the rest of the end-to-end tier builds too, in the same
//! build folder (target/tmp/e2e-build), so it is built once: `size` has no `config` file, so its
//! `-kselftest` variant adds nothing and is `fast` itself. `size` because it passes on any
//! kernel and runs in a second: it only calls sysinfo(2).

mod common;

use common::{json, serial, stderr, stdout, temp_dir};
use std::path::{Path, PathBuf};

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

#[test]
fn the_size_target_passes_with_exit_0_and_its_counts_in_json() {
    let _g = serial();
    let dir = temp_dir("kselftest-size");
    let j = dir.join("r.json");
    let out = common::run(&build_dir(), &["kselftest", "size", "--json", j.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&j);
    assert_eq!((v["counts"]["passed"].as_u64(), v["counts"]["failed"].as_u64()), (Some(1), Some(0)), "{v:#}");
    assert_eq!((v["suites"].as_u64(), v["targets"][0].as_str()), (Some(1), Some("size")));
    let test = &v["tests"][0];
    assert_eq!((test["suite"].as_str(), test["name"].as_str()), (Some("size"), Some("get_size")), "{v:#}");
    assert_eq!(test["status"], "passed");
    // The test's own TAP, with its memory figures, is its diagnostics.
    let diagnostics: Vec<&str> = test["diagnostics"].as_array().unwrap().iter().filter_map(|d| d.as_str()).collect();
    assert!(diagnostics.iter().any(|d| d.starts_with("ok 1 get runtime memory use")), "{diagnostics:?}");
    assert!(stdout(&out).contains("Ran 1 test in 1 suite: passed: 1"), "{}", stdout(&out));
}
