//! What a test run reports (KUnit's, kselftest's): the summary for people (as kunit.py's),
//! `--json` and `--junit`. Pure functions of the parsed results and the run's facts.

use super::ktap::{Report, Status, Test};
use serde::Serialize;
use std::collections::BTreeMap;

/// The run's facts besides its results.
#[derive(Serialize)]
pub struct Run {
    /// What ran the tests (`kunit`, `kselftest`): JUnit's name for the run starts with it.
    #[serde(skip)]
    pub tool: &'static str,
    pub arch: &'static str,
    /// The variant booted (`fast-kunit`), its base config, and the kernel's release.
    pub config: String,
    pub base: String,
    pub release: String,
    /// What chose the tests, by name: KUnit's `kunitconfigs` and `filter_glob`, kselftest's
    /// `targets`.
    #[serde(flatten)]
    pub selection: BTreeMap<&'static str, Vec<String>>,
    /// Configure and build (nothing when up to date), then boot and tests, in seconds.
    pub build_s: f64,
    pub run_s: f64,
    pub timed_out: bool,
}

/// One test of `--json`.
#[derive(Serialize)]
struct JsonTest<'a> {
    /// The suites it is in, outermost first, joined by `.`.
    suite: String,
    name: &'a str,
    status: Status,
    directive: Option<&'a str>,
    diagnostics: &'a [String],
}

pub fn json(run: &Run, report: &Report) -> String {
    #[derive(Serialize)]
    struct Json<'a> {
        #[serde(flatten)]
        run: &'a Run,
        suites: usize,
        counts: super::ktap::Counts,
        tests: Vec<JsonTest<'a>>,
    }
    let tests = report
        .leaves()
        .into_iter()
        .map(|(path, t)| JsonTest {
            suite: path.join("."),
            name: &t.name,
            status: t.status,
            directive: t.directive.as_deref(),
            diagnostics: &t.diagnostics,
        })
        .collect();
    let out = Json { run, suites: report.suites.len(), counts: report.counts(), tests };
    serde_json::to_string_pretty(&out).expect("plain data serializes") + "\n"
}

/// Text for XML: the five escapes, and the characters XML 1.0 does not allow dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML as CI systems read it: a `<testsuite>` per top-level suite, a `<testcase>` per
/// leaf test (classname: its suites joined by `.`); a failure is `<failure>`, a crash or a
/// timeout `<error>`, a skip `<skipped>`, each with the test's diagnostic lines.
pub fn junit(run: &Run, report: &Report) -> String {
    let c = report.counts();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{} {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        run.tool,
        xml(&run.config),
        c.total(),
        c.failed,
        c.crashed + c.timeout,
        c.skipped,
        run.run_s
    ));
    for suite in &report.suites {
        let one = Report { found: true, plan: None, suites: vec![suite.clone()] };
        let (sc, leaves) = (one.counts(), one.leaves());
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
            xml(&suite.name),
            sc.total(),
            sc.failed,
            sc.crashed + sc.timeout,
            sc.skipped
        ));
        for (path, t) in leaves {
            out.push_str(&testcase(&path.join("."), t));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(class: &str, t: &Test) -> String {
    let open = format!("    <testcase classname=\"{}\" name=\"{}\"", xml(class), xml(&t.name));
    let log = xml(&t.diagnostics.join("\n"));
    let directive = xml(t.directive.as_deref().unwrap_or(""));
    match t.status {
        Status::Passed => format!("{open}/>\n"),
        Status::Skipped => format!("{open}>\n      <skipped message=\"{directive}\"/>\n    </testcase>\n"),
        Status::Failed => format!("{open}>\n      <failure message=\"failed\">{log}</failure>\n    </testcase>\n"),
        Status::Crashed => format!("{open}>\n      <error message=\"crashed\">{log}</error>\n    </testcase>\n"),
        Status::Timeout => format!("{open}>\n      <error message=\"timed out\">{log}</error>\n    </testcase>\n"),
    }
}

/// The summary for people: kunit.py's count line, and each test that did not pass with its
/// diagnostic lines.
pub fn summary(run: &Run, report: &Report) -> String {
    let c = report.counts();
    let mut out = String::new();
    for (path, t) in report.leaves() {
        if matches!(t.status, Status::Failed | Status::Crashed | Status::Timeout) {
            let what = match t.status {
                Status::Failed => "FAILED",
                Status::Crashed => "CRASHED",
                _ => "TIMED OUT",
            };
            // kselftest's directive is the test's exit status (`exit=127`: no interpreter).
            let directive = t.directive.as_deref().map(|d| format!(" # {d}")).unwrap_or_default();
            let name = path.iter().copied().chain([t.name.as_str()]).collect::<Vec<_>>().join(".");
            out.push_str(&format!("[{what}] {name}{directive}\n"));
            for d in &t.diagnostics {
                out.push_str(&format!("    {d}\n"));
            }
        }
    }
    let mut counts = vec![format!("passed: {}", c.passed)];
    for (n, what) in [(c.failed, "failed"), (c.skipped, "skipped"), (c.crashed, "crashed"), (c.timeout, "timed out")] {
        if n > 0 {
            counts.push(format!("{what}: {n}"));
        }
    }
    out.push_str(&format!(
        "Testing complete. Ran {} test{} in {} suite{}: {} ({} {} on {}; build {:.1} s, boot and tests {:.1} s)\n",
        c.total(),
        if c.total() == 1 { "" } else { "s" },
        report.suites.len(),
        if report.suites.len() == 1 { "" } else { "s" },
        counts.join(", "),
        run.config,
        run.release,
        run.arch,
        run.build_s,
        run.run_s
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::super::ktap::{End, parse};
    use super::*;

    fn run() -> Run {
        Run {
            tool: "kunit",
            arch: "x86_64",
            config: "fast-kunit".into(),
            base: "fast".into(),
            release: "6.1.0".into(),
            selection: [("kunitconfigs", vec!["lib/kunit/.kunitconfig".into()]), ("filter_glob", vec![])].into(),
            build_s: 1.0,
            run_s: 2.5,
            timed_out: false,
        }
    }

    const LOG: &str = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: ex<&>\n    1..3\n    ok 1 a\n    ok 2 b # SKIP not \"here\"\n    # c: Expected 1 == 2\n    not ok 3 c\nnot ok 1 ex<&>\n";

    #[test]
    fn the_summary_names_what_failed_with_its_lines() {
        let s = summary(&run(), &parse(LOG, End::Finished));
        assert!(s.starts_with("[FAILED] ex<&>.c\n    c: Expected 1 == 2\n"), "{s}");
        assert!(s.contains("Ran 3 tests in 1 suite: passed: 1, failed: 1, skipped: 1 (fast-kunit"), "{s}");
        let s = summary(&run(), &parse("TAP version 13\n1..1\n# no bash\nnot ok 1 t.sh # exit=127\n", End::Finished));
        assert!(s.starts_with("[FAILED] t.sh # exit=127\n    no bash\n"), "{s}");
        assert!(s.contains("Ran 1 test in 1 suite: passed: 0, failed: 1"), "{s}");
    }

    #[test]
    fn json_has_one_object_per_test_and_the_runs_facts() {
        let v: serde_json::Value = serde_json::from_str(&json(&run(), &parse(LOG, End::Finished))).unwrap();
        assert_eq!(v["counts"]["failed"], 1);
        assert_eq!(v["arch"], "x86_64");
        assert_eq!(v["kunitconfigs"][0], "lib/kunit/.kunitconfig");
        assert_eq!(v["tests"].as_array().unwrap().len(), 3);
        assert_eq!(v["tests"][2]["suite"], "ex<&>");
        assert_eq!(v["tests"][2]["status"], "failed");
        assert_eq!(v["tests"][2]["diagnostics"][0], "c: Expected 1 == 2");
        assert_eq!(v["tests"][1]["status"], "skipped");
    }

    #[test]
    fn junit_escapes_and_counts() {
        let x = junit(&run(), &parse(LOG, End::Finished));
        assert!(
            x.contains("<testsuites name=\"kunit fast-kunit\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<testsuite name=\"ex&lt;&amp;&gt;\" tests=\"3\""), "{x}");
        assert!(x.contains("<skipped message=\"SKIP not &quot;here&quot;\"/>"), "{x}");
        assert!(x.contains("<failure message=\"failed\">c: Expected 1 == 2</failure>"), "{x}");
        assert_eq!(xml("a\u{1}b\u{7f}"), "ab\u{7f}");
        let crashed =
            junit(&run(), &parse("KTAP version 1\n1..1\n    # Subtest: s\n    1..2\n    ok 1 a\n", End::TimedOut));
        assert!(crashed.contains("errors=\"1\"") && crashed.contains("<error message=\"timed out\">"), "{crashed}");
    }
}
