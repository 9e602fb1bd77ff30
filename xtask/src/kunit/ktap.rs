//! KTAP, the kernel's test output (Documentation/dev-tools/ktap.rst), read from a console log:
//! pure, so it is unit-tested on captured runs.
//!
//! The log may carry other kernel messages and a prefix before every line (a printk
//! timestamp): the prefix is as long as the one before the first `KTAP version` line, as
//! kunit.py takes it. Results nest by indentation (4 spaces per level): a suite's plan, its
//! tests' results and their diagnostic lines (`# …`) are indented one level deeper than the
//! suite's own `ok`/`not ok` line. A diagnostic line belongs to the next result at its level,
//! so a test's own messages go with it; other lines (an oops) go with the test that was running.
//! When the log ends inside a suite, the test that was running is reported as crashed (or timed
//! out, when the run did) instead of as a parse error; so is a top-level test the plan announced
//! when the log ends before its result. A `TAP version` line at the top level after the first
//! starts another block of top-level results with a plan of its own, as kselftest's
//! `run_kselftest.sh` prints one per collection.

use serde::Serialize;

/// A test's outcome, as kunit.py names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// No result: the kernel stopped (or the run ended) while it ran.
    Crashed,
    /// No result: the run's time limit ended it.
    Timeout,
}

/// One test or suite (a test with subtests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Test {
    pub name: String,
    pub status: Status,
    /// The directive after `#` on the result line (`SKIP reason`), if any.
    pub directive: Option<String>,
    /// Its diagnostic lines, without their `# ` (and other lines printed while it ran).
    pub diagnostics: Vec<String>,
    /// The number its plan (`1..N`) announced, for a suite.
    pub plan: Option<usize>,
    pub subtests: Vec<Test>,
}

/// How the run that printed the log ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The kernel finished (shut down, halted or rebooted): an unfinished test crashed.
    Finished,
    /// The time limit stopped it: an unfinished test timed out.
    TimedOut,
}

/// The counts of leaf tests (tests without subtests), as kunit.py's summary gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub crashed: usize,
    pub timeout: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped + self.crashed + self.timeout
    }

    fn add(&mut self, status: Status) {
        match status {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
            Status::Crashed => self.crashed += 1,
            Status::Timeout => self.timeout += 1,
        }
    }
}

/// What a log held: the top-level suites, and whether KTAP was found at all.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// Whether a `KTAP version` (or `TAP version`) line was found.
    pub found: bool,
    /// The top-level plan.
    pub plan: Option<usize>,
    pub suites: Vec<Test>,
}

impl Report {
    /// Leaf tests by status, over every suite.
    pub fn counts(&self) -> Counts {
        fn walk(t: &Test, c: &mut Counts) {
            match t.subtests.is_empty() {
                true => c.add(t.status),
                false => t.subtests.iter().for_each(|s| walk(s, c)),
            }
        }
        let mut c = Counts::default();
        self.suites.iter().for_each(|s| walk(s, &mut c));
        c
    }

    /// Every leaf test with its path of suite names (outermost first).
    pub fn leaves(&self) -> Vec<(Vec<&str>, &Test)> {
        fn walk<'a>(t: &'a Test, path: &mut Vec<&'a str>, out: &mut Vec<(Vec<&'a str>, &'a Test)>) {
            if t.subtests.is_empty() {
                out.push((path.clone(), t));
                return;
            }
            path.push(&t.name);
            t.subtests.iter().for_each(|s| walk(s, path, out));
            path.pop();
        }
        let mut out = Vec::new();
        self.suites.iter().for_each(|s| walk(s, &mut Vec::new(), &mut out));
        out
    }
}

/// A suite being read: the lines at `indent` are its plan and its tests' results.
struct Open {
    indent: usize,
    name: Option<String>,
    plan: Option<usize>,
    subtests: Vec<Test>,
    /// Diagnostic and other lines since the last result at this level.
    pending: Vec<String>,
}

impl Open {
    fn new(indent: usize) -> Open {
        Open { indent, name: None, plan: None, subtests: Vec::new(), pending: Vec::new() }
    }
}

/// A result line: `ok 1 name # SKIP why` or `not ok 2 name`.
fn result(line: &str) -> Option<(bool, &str, Option<&str>)> {
    let (ok, rest) = match line.strip_prefix("not ok ") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix("ok ")?),
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    number.parse::<usize>().ok()?;
    let rest = rest.trim_start_matches("- ");
    match rest.split_once(" # ").or_else(|| rest.strip_prefix("# ").map(|d| ("", d))) {
        Some((name, directive)) => Some((ok, name.trim(), Some(directive.trim()))),
        None => Some((ok, rest.trim(), None)),
    }
}

fn status(ok: bool, directive: Option<&str>) -> Status {
    let skip = directive.is_some_and(|d| d.len() >= 4 && d[..4].eq_ignore_ascii_case("skip"));
    match (skip, ok) {
        (true, _) => Status::Skipped,
        (false, true) => Status::Passed,
        (false, false) => Status::Failed,
    }
}

fn plan(line: &str) -> Option<usize> {
    line.strip_prefix("1..")?.split_whitespace().next()?.parse().ok()
}

fn is_version(line: &str) -> bool {
    line.starts_with("KTAP version ") || line.starts_with("TAP version ")
}

/// Closes an open suite: with its result line (and the diagnostic lines that came before it at
/// that line's level), or at the end of the log, without one.
fn close(open: Open, result: Option<(bool, &str, Option<&str>)>, mut before: Vec<String>, end: End) -> Test {
    let mut subtests = open.subtests;
    let status = match result {
        Some((ok, _, directive)) => status(ok, directive),
        None => {
            let lost = match end {
                End::Finished => Status::Crashed,
                End::TimedOut => Status::Timeout,
            };
            // The log ended inside it: the test after its last result was running, unless that
            // is a suite that ended so (then this one is only its parent).
            if subtests.last().is_none_or(|t| t.status != lost || t.subtests.is_empty()) {
                let running = format!("test {} (no result)", subtests.len() + 1);
                subtests.push(leaf(running, lost, None, open.pending.clone()));
            }
            lost
        }
    };
    if result.is_some() {
        before.splice(0..0, open.pending);
    }
    let name = match result {
        Some((_, name, _)) if !name.is_empty() => name.to_owned(),
        _ => open.name.unwrap_or_else(|| "(unnamed)".to_owned()),
    };
    Test {
        name,
        status,
        directive: result.and_then(|r| r.2).map(str::to_owned),
        diagnostics: before,
        plan: open.plan,
        subtests,
    }
}

fn leaf(name: String, status: Status, directive: Option<&str>, diagnostics: Vec<String>) -> Test {
    Test { name, status, directive: directive.map(str::to_owned), diagnostics, plan: None, subtests: Vec::new() }
}

/// Reads the KTAP in a console log.
pub fn parse(log: &str, end: End) -> Report {
    let mut lines = log.lines().map(|l| l.trim_end_matches('\r'));
    let Some(prefix) = lines.by_ref().find_map(|l| l.find("KTAP version ").or_else(|| l.find("TAP version "))) else {
        return Report { found: false, plan: None, suites: Vec::new() };
    };
    // `stack[0]` is the root, whose lines are at indent 0; each open suite is deeper.
    let mut stack = vec![Open::new(0)];
    // The root's results before the current top-level block (a `TAP version` line at the root
    // starts one), and the plans of the blocks before it.
    let (mut block_start, mut plans) = (0, None::<usize>);
    for raw in lines {
        let line = raw.get(prefix..).unwrap_or("");
        let indent = line.len() - line.trim_start_matches(' ').len();
        let text = line.trim();
        if is_version(text) && indent == 0 && stack.len() == 1 {
            let root = &mut stack[0];
            (block_start, plans) = (root.subtests.len(), sum(plans, root.plan.take()));
            continue;
        }
        let top = stack.last_mut().expect("the root stays");
        if is_version(text) || text.starts_with("# Subtest:") {
            if indent > top.indent {
                stack.push(Open::new(indent));
            }
            if let Some(name) = text.strip_prefix("# Subtest:") {
                stack.last_mut().unwrap().name = Some(name.trim().to_owned());
            }
            continue;
        }
        if let Some(n) = plan(text)
            && indent == top.indent
        {
            top.plan = Some(n);
            continue;
        }
        if let Some(r) = result(text) {
            // Suites deeper than the line: the shallowest of them gets it, any deeper one had
            // no result of its own.
            while stack.len() > 2 && stack[stack.len() - 2].indent > indent {
                let inner = stack.pop().unwrap();
                let test = close(inner, None, Vec::new(), end);
                stack.last_mut().unwrap().subtests.push(test);
            }
            if stack.len() > 1 && stack.last().unwrap().indent > indent {
                let open = stack.pop().unwrap();
                let parent = stack.last_mut().unwrap();
                let test = close(open, Some(r), std::mem::take(&mut parent.pending), end);
                parent.subtests.push(test);
            } else {
                let top = stack.last_mut().unwrap();
                let (ok, name, directive) = r;
                let diagnostics = std::mem::take(&mut top.pending);
                top.subtests.push(leaf(name.to_owned(), status(ok, directive), directive, diagnostics));
            }
            continue;
        }
        let note = text.strip_prefix('#').map_or(text, str::trim);
        if !note.is_empty() {
            // At the level it was printed, or (a kernel message) with the innermost suite.
            let open = match text.starts_with('#') {
                true => stack.iter_mut().rev().find(|o| o.indent <= indent).expect("the root"),
                false => stack.last_mut().unwrap(),
            };
            open.pending.push(note.to_owned());
        }
    }
    // Suites still open: the innermost's running test had no result; each outer one crashed too.
    // With none open, the block's plan says whether a top-level test was running.
    let inside = stack.len() > 1;
    while stack.len() > 1 {
        let open = stack.pop().unwrap();
        let test = close(open, None, Vec::new(), end);
        stack.last_mut().unwrap().subtests.push(test);
    }
    let mut root = stack.pop().unwrap();
    let done = root.subtests.len() - block_start;
    if !inside && root.plan.is_some_and(|n| done < n) {
        let status = match end {
            End::Finished => Status::Crashed,
            End::TimedOut => Status::Timeout,
        };
        let running = format!("test {} (no result)", done + 1);
        root.subtests.push(leaf(running, status, None, std::mem::take(&mut root.pending)));
    }
    Report { found: true, plan: sum(plans, root.plan), suites: root.subtests }
}

/// Two plans' tests together (a log of several top-level blocks announces their sum).
fn sum(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
