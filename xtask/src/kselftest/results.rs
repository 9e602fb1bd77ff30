//! kselftest's results as suites: run_kselftest.sh prints each test as a top-level result,
//! `ok N selftests: DIR: NAME`, a TAP block per collection (target); they become a suite per
//! collection, as KUnit's tests are. And what a target's name may be. Pure.

use crate::kunit::ktap::{Report, Status, Test};
use anyhow::{Result, bail};

/// A target as `TARGETS=` takes it: a folder under tools/testing/selftests (`size`,
/// `filesystems/epoll`), also a word of the guest's command line.
pub fn check_target(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-./".contains(c);
    if name.is_empty() || !name.chars().all(ok) || name.starts_with('/') || name.split('/').any(|p| p == "..") {
        bail!(
            "selftest target `{name}`: a folder of tools/testing/selftests, such as `size` or `filesystems/epoll` (letters, digits, `_-./`)"
        );
    }
    Ok(())
}

/// `selftests: DIR: NAME`, run_kselftest.sh's name for a test.
fn split(name: &str) -> Option<(&str, &str)> {
    let (dir, test) = name.strip_prefix("selftests: ")?.split_once(": ")?;
    Some((dir, test))
}

/// The top-level results grouped into a suite per collection. A test without a result (the
/// run ended while it ran) is named after its header line, `# selftests: DIR: NAME`.
pub fn group(report: Report) -> Report {
    let mut suites: Vec<Test> = Vec::new();
    for mut t in report.suites {
        let named = split(&t.name).map(|(d, n)| (d.to_owned(), n.to_owned()));
        let header = t.diagnostics.iter().find_map(|d| split(d)).map(|(d, n)| (d.to_owned(), n.to_owned()));
        let (dir, name) = named.or(header).unwrap_or_else(|| ("(unknown)".to_owned(), t.name.clone()));
        if t.diagnostics.first().is_some_and(|d| split(d) == Some((&dir, &name))) {
            t.diagnostics.remove(0);
        }
        t.name = name;
        let suite = match suites.iter().position(|s| s.name == dir) {
            Some(i) => &mut suites[i],
            None => {
                suites.push(Test {
                    name: dir,
                    status: Status::Passed,
                    directive: None,
                    diagnostics: Vec::new(),
                    plan: None,
                    subtests: Vec::new(),
                });
                suites.last_mut().unwrap()
            }
        };
        suite.subtests.push(t);
    }
    for s in &mut suites {
        let has = |status| s.subtests.iter().any(|t| t.status == status);
        s.status = [Status::Crashed, Status::Timeout, Status::Failed].into_iter().find(|&st| has(st)).unwrap_or(
            match s.subtests.iter().all(|t| t.status == Status::Skipped) {
                true => Status::Skipped,
                false => Status::Passed,
            },
        );
        s.plan = Some(s.subtests.len());
    }
    Report { found: report.found, plan: report.plan, suites }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kunit::ktap::{End, parse};

    const LOG: &str = "\
TAP version 13
1..1
# selftests: size: get_size
# ok 1 get runtime memory use
ok 1 selftests: size: get_size
TAP version 13
1..3
# selftests: exec: execveat
ok 1 selftests: exec: execveat
# selftests: exec: null-argv
ok 2 selftests: exec: null-argv # SKIP
# selftests: exec: recursion-depth
# still running
";

    #[test]
    fn a_suite_per_collection_and_the_running_test_named_by_its_header() {
        let r = group(parse(LOG, End::TimedOut));
        let names: Vec<(&str, Status)> = r.suites.iter().map(|s| (s.name.as_str(), s.status)).collect();
        assert_eq!(names, [("size", Status::Passed), ("exec", Status::Timeout)]);
        let exec: Vec<(&str, Status)> = r.suites[1].subtests.iter().map(|t| (t.name.as_str(), t.status)).collect();
        assert_eq!(
            exec,
            [("execveat", Status::Passed), ("null-argv", Status::Skipped), ("recursion-depth", Status::Timeout)]
        );
        assert_eq!(r.suites[0].subtests[0].diagnostics, ["ok 1 get runtime memory use"]);
        assert_eq!(r.suites[1].subtests[2].diagnostics, ["still running"]);
        let c = r.counts();
        assert_eq!((c.passed, c.skipped, c.timeout, c.total()), (2, 1, 1, 4));
        assert_eq!(r.plan, Some(4));
    }

    #[test]
    fn target_names_are_folders_not_shell() {
        for good in ["size", "filesystems/epoll", "net/af_unix", "vDSO", "drivers/dma-buf"] {
            check_target(good).unwrap();
        }
        for bad in ["", "../x", "/etc", "a b", "a;b", "$(x)", "a'b"] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
