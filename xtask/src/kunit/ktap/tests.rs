use super::*;

fn names(tests: &[Test]) -> Vec<(&str, Status)> {
    tests.iter().map(|t| (t.name.as_str(), t.status)).collect()
}

const NESTED: &str = "\
[    0.500000] KTAP version 1
[    0.500001] 1..2
[    0.500002]     KTAP version 1
[    0.500003]     # Subtest: example
[    0.500004]     1..3
[    0.500005]     # example_simple_test: initializing
[    0.500006]     ok 1 example_simple_test
[    0.500007]     # example_skip_test: initializing
[    0.500008]     ok 2 example_skip_test # SKIP this test should be skipped
[    0.500009]     # example_fail_test: EXPECTATION FAILED at lib/x.c:10
[    0.500010]     Expected 1 == 2, but
[    0.500011]     not ok 3 example_fail_test
[    0.500012] # example: pass:1 fail:1 skip:1 total:3
[    0.500013] not ok 1 example
[    0.500014]     KTAP version 1
[    0.500015]     # Subtest: params
[    0.500016]     1..1
[    0.500017]         KTAP version 1
[    0.500018]         # Subtest: param_test
[    0.500019]         ok 1 - case a
[    0.500020]         ok 2 - case b # SKIP no b
[    0.500021]     ok 1 param_test
[    0.500022] ok 2 params
[    0.600000] reboot: Restarting system
";

#[test]
fn suites_nest_by_indentation_behind_a_timestamp_prefix() {
    let r = parse(NESTED, End::Finished);
    assert!(r.found);
    assert_eq!(r.plan, Some(2));
    assert_eq!(names(&r.suites), [("example", Status::Failed), ("params", Status::Passed)]);
    let example = &r.suites[0];
    assert_eq!(example.plan, Some(3));
    assert_eq!(
        names(&example.subtests),
        [
            ("example_simple_test", Status::Passed),
            ("example_skip_test", Status::Skipped),
            ("example_fail_test", Status::Failed)
        ]
    );
    assert_eq!(example.subtests[1].directive.as_deref(), Some("SKIP this test should be skipped"));
    let param = &r.suites[1].subtests[0];
    assert_eq!(names(&param.subtests), [("case a", Status::Passed), ("case b", Status::Skipped)]);
    let c = r.counts();
    assert_eq!((c.passed, c.failed, c.skipped, c.crashed, c.total()), (2, 1, 2, 0, 5));
    let paths: Vec<String> = r.leaves().iter().map(|(p, t)| format!("{}.{}", p.join("."), t.name)).collect();
    assert_eq!(paths[4], "params.param_test.case b");
}

#[test]
fn diagnostic_lines_go_with_the_next_result_at_their_level() {
    let r = parse(NESTED, End::Finished);
    let example = &r.suites[0];
    assert_eq!(example.subtests[0].diagnostics, ["example_simple_test: initializing"]);
    assert_eq!(
        example.subtests[2].diagnostics,
        ["example_fail_test: EXPECTATION FAILED at lib/x.c:10", "Expected 1 == 2, but"]
    );
    assert_eq!(example.diagnostics, ["example: pass:1 fail:1 skip:1 total:3"]);
}

#[test]
fn a_crash_mid_suite_is_the_running_tests_and_its_suites() {
    let log = "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: s\n    1..3\n    ok 1 a\nBUG: kernel NULL pointer dereference\nKernel panic - not syncing: Fatal exception\n";
    let r = parse(log, End::Finished);
    assert_eq!(names(&r.suites), [("s", Status::Crashed)]);
    let s = &r.suites[0];
    assert_eq!(names(&s.subtests), [("a", Status::Passed), ("test 2 (no result)", Status::Crashed)]);
    assert_eq!(s.subtests[1].diagnostics[0], "BUG: kernel NULL pointer dereference");
    assert_eq!(r.counts().crashed, 1);
    let r = parse(log, End::TimedOut);
    assert_eq!(r.suites[0].subtests[1].status, Status::Timeout);
    assert_eq!(r.counts().timeout, 1);
}

#[test]
fn a_crash_two_levels_deep_is_one_crashed_test() {
    let log = "KTAP version 1\n1..1\n    # Subtest: outer\n    1..1\n        # Subtest: inner\n        ok 1 - x\n";
    let r = parse(log, End::Finished);
    let outer = &r.suites[0];
    assert_eq!(outer.status, Status::Crashed);
    assert_eq!(names(&outer.subtests), [("inner", Status::Crashed)]);
    assert_eq!(names(&outer.subtests[0].subtests), [("x", Status::Passed), ("test 2 (no result)", Status::Crashed)]);
    assert_eq!(r.counts().total(), 2);
}

#[test]
fn old_tap_14_without_version_lines_per_suite_and_no_plan() {
    let log = "TAP version 14\n    # Subtest: s\n    ok 1 - a\n    not ok 2 - b\nnot ok 1 - s\n";
    let r = parse(log, End::Finished);
    assert_eq!(r.plan, None);
    assert_eq!(names(&r.suites), [("s", Status::Failed)]);
    assert_eq!(names(&r.suites[0].subtests), [("a", Status::Passed), ("b", Status::Failed)]);
}

#[test]
fn directives_and_odd_lines() {
    assert_eq!(result("ok 1 name # SKIP why"), Some((true, "name", Some("SKIP why"))));
    assert_eq!(result("not ok 12 - a b c"), Some((false, "a b c", None)));
    assert_eq!(result("ok 3 # skip"), Some((true, "", Some("skip"))));
    assert_eq!(result("ok x name"), None);
    assert_eq!(result("okay 1 name"), None);
    assert_eq!(status(false, Some("SKIP unsupported")), Status::Skipped);
    assert_eq!(status(false, Some("TODO later")), Status::Failed);
    assert_eq!(status(true, Some("TODO later")), Status::Passed);
    let r = parse("no tests here\n", End::Finished);
    assert!(!r.found && r.suites.is_empty());
    // A line shorter than the prefix, a blank one: no panic, nothing taken.
    let r = parse("[ 0.1] KTAP version 1\n\n[ 0.2] 1..1\nx\n[ 0.3] ok 1 t\n", End::Finished);
    assert_eq!(names(&r.suites), [("t", Status::Passed)]);
}

#[test]
fn every_cut_of_a_log_parses() {
    for end in 0..NESTED.len() {
        if NESTED.is_char_boundary(end) {
            let r = parse(&NESTED[..end], End::Finished);
            assert!(r.counts().total() <= 6);
        }
    }
}

/// What `cargo xtask kunit` printed on x86_64 (fast-kunit, 6.1, lib/kunit/.kunitconfig): the boot
/// log, KUnit's own suites and the example suite; kunit.py found the same 24 tests.
const CAPTURED: &str = include_str!("../testdata/kunit-6.1-x86_64.log");

#[test]
fn a_captured_run_gives_kunit_pys_counts() {
    let r = parse(CAPTURED, End::Finished);
    assert_eq!((r.plan, r.suites.len()), (Some(7), 7));
    let c = r.counts();
    assert_eq!((c.total(), c.passed, c.skipped, c.failed, c.crashed), (24, 22, 2, 0, 0));
    let example = r.suites.iter().find(|s| s.name == "example").unwrap();
    assert_eq!(example.status, Status::Passed);
    let skip = example.subtests.iter().find(|t| t.name == "example_skip_test").unwrap();
    assert_eq!((skip.status, skip.directive.as_deref()), (Status::Skipped, Some("SKIP this test should be skipped")));
    assert_eq!(skip.diagnostics[0], "example_skip_test: initializing");
    // Lines a test logs without `#` are its own too.
    let log = r.suites.iter().find(|s| s.name == "kunit-log-test").unwrap();
    assert_eq!(log.subtests[0].diagnostics[..2], ["put this in log.", "this too."]);
    // Cut after the third suite's plan: that suite's running test crashed, the rest is missing.
    let cut = CAPTURED.find("# Subtest: kunit-resource-test").unwrap() + 40;
    let r = parse(&CAPTURED[..cut], End::Finished);
    assert_eq!(names(&r.suites[2..]), [("kunit-resource-test", Status::Crashed)]);
    assert_eq!(r.counts().crashed, 1);
}

/// What kselftest's run_kselftest.sh prints: a block per collection, each test's output as
/// diagnostic lines before its result.
const KSELFTEST: &str = "\
TAP version 13
1..1
# selftests: size: get_size
# TAP version 13
# ok 1 get runtime memory use
ok 1 selftests: size: get_size
TAP version 13
1..2
# selftests: exec: execveat
# ok 1 Check success of execveat(3, 'execveat', 0)... [OK]
ok 1 selftests: exec: execveat
# selftests: exec: load_address_4096
# not ok 1 Failed to map
not ok 2 selftests: exec: load_address_4096 # exit=1
";

#[test]
fn top_level_blocks_each_with_its_plan() {
    let r = parse(KSELFTEST, End::Finished);
    assert_eq!(r.plan, Some(3));
    assert_eq!(
        names(&r.suites),
        [
            ("selftests: size: get_size", Status::Passed),
            ("selftests: exec: execveat", Status::Passed),
            ("selftests: exec: load_address_4096", Status::Failed)
        ]
    );
    assert_eq!(r.suites[0].diagnostics, ["selftests: size: get_size", "TAP version 13", "ok 1 get runtime memory use"]);
    assert_eq!(r.suites[2].directive.as_deref(), Some("exit=1"));
}

#[test]
fn a_top_level_test_without_its_result_crashed_or_timed_out() {
    let cut = KSELFTEST.find("not ok 2").unwrap();
    let r = parse(&KSELFTEST[..cut], End::TimedOut);
    let last = r.suites.last().unwrap();
    assert_eq!((last.name.as_str(), last.status), ("test 2 (no result)", Status::Timeout));
    assert_eq!(last.diagnostics, ["selftests: exec: load_address_4096", "not ok 1 Failed to map"]);
    assert_eq!(r.counts().timeout, 1);
    // A block whose plan is met leaves nothing running; the plan counts the block's own results.
    let cut = KSELFTEST.find("# selftests: exec: load").unwrap();
    assert_eq!(parse(&KSELFTEST[..cut], End::Finished).counts().crashed, 1);
    let cut = KSELFTEST.find("TAP version 13\n1..2").unwrap();
    assert_eq!(parse(&KSELFTEST[..cut], End::Finished).counts().total(), 1);
    let r = parse("KTAP version 1\n1..2\nok 1 a\n[ 1.0] BUG: oops\n", End::Finished);
    assert_eq!(names(&r.suites), [("a", Status::Passed), ("test 2 (no result)", Status::Crashed)]);
}
