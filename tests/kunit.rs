//! End-to-end tests of `cargo xtask kunit` with a real kernel, booted under TCG: KUnit's
//! results as the kernel prints them, read back from the summary, `--json` and `--junit`.
//!
//! One real kernel, the host's `fast-kunit`, shared by every test here: KUnit runs inside the
//! kernel, so nothing else shows that the variant, the boot to the end and the parser work
//! together. No in-tree test fails on purpose, and a failing test is what `kunit` must report,
//! so the kernel is built from a copy of the kernel source (hard links, in a temporary folder)
//! whose example suite has one test of ours added, `teeny_fail_test`, which fails. A cold build
//! on 2 cores takes about 3 minutes (the copy's paths miss the compiler cache); each run after
//! it only runs make, which finds nothing to do. The build folder is the end-to-end tier's own.

mod common;

use common::{json, serial, stderr, stdout, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

/// Our failing test, put into the example suite of the source copy.
const FAILING: &str = "static void teeny_fail_test(struct kunit *test)\n{\n\tKUNIT_EXPECT_EQ(test, 1 + 1, 3);\n}\n\n";

/// The kernel source (what `fetch` unpacks), copied with the failing test added.
fn source_with_a_failing_test() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let out = common::run(&build_dir(), &["fetch"], &[]);
        assert!(out.status.success(), "cargo xtask fetch failed");
        let linux = stdout(&out).lines().last().and_then(|l| l.split_once(' ')).map(|(_, d)| d.to_owned()).unwrap();
        let copy = temp_dir("kunit-tree").join("linux");
        let cp = std::process::Command::new("cp").args(["-al", &linux]).arg(&copy).status().unwrap();
        assert!(cp.success(), "cp -al {linux} failed");
        let file = copy.join("lib/kunit/kunit-example-test.c");
        let text = std::fs::read_to_string(&file).unwrap();
        let cases = "static struct kunit_case example_test_cases[] = {\n";
        assert!(text.contains(cases), "{}: the example suite's case list moved", file.display());
        let text = text.replacen(cases, &format!("{FAILING}{cases}\tKUNIT_CASE(teeny_fail_test),\n"), 1);
        // A new file, not the hard link's: the unpacked tree stays as it is.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, text).unwrap();
        copy
    })
}

fn kunit(args: &[&str]) -> Output {
    let mut all = vec!["kunit"];
    all.extend_from_slice(args);
    common::run(&build_dir(), &all, &[("TEENY_KERNEL_SOURCE", source_with_a_failing_test())])
}

fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    let tests = v["tests"].as_array().unwrap();
    tests
        .iter()
        .map(|t| {
            (
                format!("{}.{}", t["suite"].as_str().unwrap(), t["name"].as_str().unwrap()),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The JUnit file parsed as XML: its `<testsuites>` counts and `<testcase>` count.
fn junit(path: &Path) -> ([usize; 4], usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let count = |a: &str| root.attribute(a).unwrap().parse::<usize>().unwrap();
    let cases = doc.descendants().filter(|n| n.has_tag_name("testcase")).count();
    ([count("tests"), count("failures"), count("errors"), count("skipped")], cases)
}

#[test]
fn kunits_own_suites_pass_with_exit_0_and_their_counts_in_json_and_junit() {
    let _g = serial();
    let dir = temp_dir("kunit-pass");
    let (j, x) = (dir.join("r.json"), dir.join("r.xml"));
    let out = kunit(&["kunit*", "--json", j.to_str().unwrap(), "--junit", x.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&j);
    let tests = statuses(&v);
    assert!(tests.len() >= 10, "{tests:?}");
    assert!(tests.iter().all(|(name, s)| name.starts_with("kunit") && s == "passed"), "{tests:?}");
    assert_eq!(v["counts"]["passed"].as_u64().unwrap() as usize, tests.len());
    assert_eq!((v["arch"].as_str(), v["config"].as_str()), (Some(common::host().name), Some("fast-kunit")));
    assert_eq!(junit(&x), ([tests.len(), 0, 0, 0], tests.len()));
    assert!(stdout(&out).contains(&format!("Ran {} tests in", tests.len())), "{}", stdout(&out));
}

#[test]
fn the_example_suite_with_a_failing_test_exits_1_and_names_it_and_its_skips() {
    let _g = serial();
    let dir = temp_dir("kunit-fail");
    let (j, x) = (dir.join("r.json"), dir.join("r.xml"));
    let out = kunit(&[
        "example",
        "--kunitconfig",
        "lib/kunit",
        "--json",
        j.to_str().unwrap(),
        "--junit",
        x.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("[FAILED] example.teeny_fail_test\n"), "{summary}");
    assert!(summary.contains("Expected 1 + 1 == 3, but"), "{summary}");
    let v = json(&j);
    let tests = statuses(&v);
    let status_of = |name: &str| tests.iter().find(|(n, _)| n == name).map(|(_, s)| s.as_str());
    assert_eq!(status_of("example.teeny_fail_test"), Some("failed"));
    assert_eq!(status_of("example.example_simple_test"), Some("passed"));
    assert_eq!(status_of("example.example_skip_test"), Some("skipped"));
    let skipped = tests.iter().filter(|(_, s)| s == "skipped").count();
    assert!(skipped >= 1, "{tests:?}");
    assert_eq!(v["counts"]["failed"], 1);
    assert_eq!(junit(&x), ([tests.len(), 1, 0, skipped], tests.len()));
}

#[test]
fn a_timeout_kills_the_guest_and_exits_124() {
    let _g = serial();
    source_with_a_failing_test();
    // Built first, so that the limit is the boot's alone.
    assert!(kunit(&["example"]).status.code().is_some());
    let out = kunit(&["--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out after 1 s, qemu killed"), "{}", stderr(&out));
}

#[test]
fn a_conflict_between_kunitconfigs_names_both_lines_before_any_build() {
    let _g = serial();
    let dir = temp_dir("kunit-conflict");
    std::fs::write(dir.join("a"), "CONFIG_KUNIT=y\nCONFIG_KUNIT_EXAMPLE_TEST=y\n").unwrap();
    std::fs::write(dir.join("b"), "# CONFIG_KUNIT_EXAMPLE_TEST is not set\n").unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let out = kunit(&["--kunitconfig", a.to_str().unwrap(), "--kunitconfig", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let want = format!(
        "{}:1: # CONFIG_KUNIT_EXAMPLE_TEST is not set contradicts {}:2: CONFIG_KUNIT_EXAMPLE_TEST=y",
        b.display(),
        a.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("$ make"), "{err}");
}
