//! Kconfig `.config` files and fragments (`CONFIG_X=value` lines), for the kernel and busybox alike.
//!
//! Fragments are merged onto a full .config the way `scripts/kconfig/merge_config.sh` does; a
//! config file is updated in place with the changes of an edited .config; and requested settings
//! that kconfig silently dropped (unmet dependencies) are found and explained by Kconfig's model
//! itself (kconfiglib, `xtask/kconfig/explain.py`).

use crate::ctx::Ctx;
use crate::step::Step;
use anyhow::{Result, bail};
use camino::Utf8Path;
use fs_err as fs;
use std::collections::{HashMap, HashSet};

/// One `CONFIG_…` assignment, with the 1-based line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The symbol without its `CONFIG_` prefix.
    pub symbol: String,
    /// The raw text after `=` (`y`, `m`, `0x10`, `"string"`), or `n` for `# CONFIG_X is not set`.
    pub value: String,
    pub line: usize,
}

/// What one .config line says.
enum Line<'a> {
    Setting(&'a str, &'a str),
    Ignored,
    Malformed,
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() {
        return Line::Ignored;
    }
    if let Some(rest) = line.strip_prefix('#') {
        // Only the exact form kconfig writes means `n`; any other `#` line is a comment.
        let unset = rest.trim_start().strip_prefix("CONFIG_").and_then(|r| r.strip_suffix(" is not set"));
        return match unset {
            Some(symbol) if is_symbol(symbol) => Line::Setting(symbol, "n"),
            _ => Line::Ignored,
        };
    }
    match line.strip_prefix("CONFIG_").and_then(|r| r.split_once('=')) {
        Some((symbol, value)) if is_symbol(symbol) => Line::Setting(symbol, value),
        _ => Line::Malformed,
    }
}

fn is_symbol(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a .config or fragment; `origin` (a file name) is used in errors as `origin:line: …`.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Setting>> {
    if text.starts_with('\u{feff}') {
        bail!("{origin}:1: the file starts with a UTF-8 byte order mark (bytes EF BB BF): save it without one");
    }
    let mut settings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match classify(line) {
            Line::Setting(symbol, value) => {
                settings.push(Setting { symbol: symbol.into(), value: value.into(), line: i + 1 })
            }
            Line::Ignored => {}
            Line::Malformed => bail!("{origin}:{}: malformed config line: {}", i + 1, line.trim()),
        }
    }
    Ok(settings)
}

/// Fails naming both lines when two settings of one symbol disagree: kconfig would take the
/// last and drop the first without a word.
pub fn check_conflicts(origin: &str, settings: &[Setting]) -> Result<()> {
    let mut first: HashMap<&str, &Setting> = HashMap::new();
    for s in settings {
        match first.get(s.symbol.as_str()) {
            Some(f) if f.value != s.value => bail!(
                "{origin}:{}: {} contradicts line {}: {}: keep one of them",
                s.line,
                line_of(s),
                f.line,
                line_of(f)
            ),
            Some(_) => {}
            None => {
                first.insert(&s.symbol, s);
            }
        }
    }
    Ok(())
}

/// A setting as a config line.
pub fn line_of(s: &Setting) -> String {
    if s.value == "n" {
        format!("# CONFIG_{} is not set", s.symbol)
    } else {
        format!("CONFIG_{}={}", s.symbol, s.value)
    }
}

/// Every `(symbol, value)` of a .config in file order. Malformed lines are skipped: these texts
/// come from kconfig itself, and callers that need strictness use [`parse`].
fn values(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|line| match classify(line) {
            Line::Setting(symbol, value) => Some((symbol, value)),
            _ => None,
        })
        .collect()
}

/// Symbol → value, the last assignment winning as it does for kconfig.
fn value_map(text: &str) -> HashMap<&str, &str> {
    values(text).into_iter().collect()
}

/// The value of one symbol in a .config text, as written (strings keep their quotes).
pub fn value_of<'a>(text: &'a str, symbol: &str) -> Option<&'a str> {
    values(text).into_iter().rev().find(|(s, _)| *s == symbol).map(|(_, v)| v)
}

fn push_line(out: &mut String, symbol: &str, value: &str) {
    if value == "n" {
        out.push_str(&format!("# CONFIG_{symbol} is not set\n"));
    } else {
        out.push_str(&format!("CONFIG_{symbol}={value}\n"));
    }
}

/// Returns the new .config text: `base` with every setting of `fragments` applied in order.
pub fn merge(base: &str, fragments: &[Setting]) -> String {
    // Applying in order means the last setting of each symbol is the one that counts.
    let wanted: HashMap<&str, &str> = fragments.iter().map(|s| (s.symbol.as_str(), s.value.as_str())).collect();
    let mut out = String::new();
    let mut written = HashSet::new();
    for line in base.lines() {
        match classify(line) {
            Line::Setting(symbol, _) if wanted.contains_key(symbol) => {
                written.insert(symbol);
                push_line(&mut out, symbol, wanted[symbol]);
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for s in fragments {
        if written.insert(&s.symbol) {
            push_line(&mut out, &s.symbol, wanted[s.symbol.as_str()]);
        }
    }
    out
}

/// The symbols whose value differs between two config texts, in `new`'s order then `old`'s. A
/// symbol missing from one text differs from any value: in a `savedefconfig` file, missing
/// means "at its default".
pub fn changed<'a>(old: &'a str, new: &'a str) -> Vec<&'a str> {
    let (a, b) = (value_map(old), value_map(new));
    let mut seen = HashSet::new();
    values(new)
        .into_iter()
        .chain(values(old))
        .map(|(symbol, _)| symbol)
        .filter(|symbol| seen.insert(*symbol) && a.get(symbol) != b.get(symbol))
        .collect()
}

/// The config file `text` updated to hold `edited`'s value (a full .config) of each of `symbols`
/// and of each of its own settings: a line of the user's whose value changed is rewritten where
/// it is, other symbols are appended; every other line, comment and directive stays as it is.
pub fn update(text: &str, symbols: &[&str], edited: &str) -> String {
    let edited = value_map(edited);
    let value = |symbol: &str| edited.get(symbol).copied().unwrap_or("n");
    let mut out = String::new();
    let mut present = HashSet::new();
    for line in text.split_inclusive('\n') {
        let Line::Setting(symbol, old) = classify(line) else {
            out.push_str(line);
            continue;
        };
        present.insert(symbol);
        if value(symbol) == old {
            out.push_str(line);
            continue;
        }
        push_line(&mut out, symbol, value(symbol));
        // Keep a last line without newline as it was.
        if !line.ends_with('\n') {
            out.pop();
        }
    }
    for symbol in symbols {
        if present.insert(symbol) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            push_line(&mut out, symbol, value(symbol));
        }
    }
    out
}

/// The settings of `want` that `got` does not have (both full .config texts, a missing symbol
/// being `n` as for kconfig), with `want`'s values.
pub fn differences(want: &str, got: &str) -> Vec<Setting> {
    let (a, b) = (value_map(want), value_map(got));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (symbol, _) in values(want).into_iter().chain(values(got)) {
        let value = a.get(symbol).copied().unwrap_or("n");
        if seen.insert(symbol) && value != b.get(symbol).copied().unwrap_or("n") {
            out.push(Setting { symbol: symbol.into(), value: value.into(), line: 0 });
        }
    }
    out
}

/// Every requested setting whose value in the effective .config differs. A symbol absent from
/// `effective` counts as `n` (kconfig omits symbols whose dependencies are unmet).
pub fn check(requested: &[Setting], effective: &str) -> Vec<Setting> {
    let effective = value_map(effective);
    // A symbol requested twice is checked once, against its last request.
    let last: HashMap<&str, usize> = requested.iter().enumerate().map(|(i, s)| (s.symbol.as_str(), i)).collect();
    let got = |s: &Setting| effective.get(s.symbol.as_str()).copied().unwrap_or("n");
    requested
        .iter()
        .enumerate()
        .filter(|(i, s)| last[s.symbol.as_str()] == *i && got(s) != s.value)
        .map(|(_, s)| s.clone())
        .collect()
}

/// The requested settings of ours set to `n` whose symbol the effective .config does not
/// mention: they pass [`check`] even if no Kconfig defines them, so [`explain`] looks them up.
pub fn unmentioned_offs(requested: &[Setting], effective: &str) -> Vec<Setting> {
    let effective = value_map(effective);
    requested.iter().filter(|s| s.value == "n" && !effective.contains_key(s.symbol.as_str())).cloned().collect()
}

/// Explains each request with `xtask/kconfig/explain.py` (python3-kconfiglib, in the builder): one
/// line per request, empty when `obj/.config` holds it, else its type, prompt, `Depends on:` and
/// `Selected by:` with current values, or that no Kconfig defines it. `env` is a step carrying
/// the tree's environment (the argv and folder are set here); `kconfig` is the top Kconfig file
/// and `srctree` the folder its `source` lines are relative to.
pub fn explain(
    ctx: &Ctx,
    env: Step,
    kconfig: &str,
    srctree: &Utf8Path,
    obj: &Utf8Path,
    requests: &[Setting],
) -> Result<Vec<String>> {
    let out = obj.join(".teeny-explain");
    let script = ctx.root.join("xtask/kconfig/explain.py");
    let mut argv =
        vec!["python3".to_owned(), script.to_string(), kconfig.to_owned(), ".config".to_owned(), out.to_string()];
    argv.extend(requests.iter().map(|s| format!("{}={}", s.symbol, s.value)));
    let step = Step { argv, cwd: obj.to_owned(), ..env }.env("srctree", srctree.as_str());
    crate::prepare::runner(ctx)?.run(&step)?;
    let text = fs::read_to_string(&out)?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    anyhow::ensure!(lines.len() == requests.len(), "{out}: {} lines for {} requests", lines.len(), requests.len());
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(symbol: &str, value: &str) -> Setting {
        Setting { symbol: symbol.into(), value: value.into(), line: 0 }
    }

    const BASE: &str = "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_A=y\n# CONFIG_B is not set\n\
                        CONFIG_C=m\n\n# Section\nCONFIG_D=\"hello world\"\nCONFIG_E=0x10\n";

    #[test]
    fn parses_settings_with_line_numbers() {
        let got = parse("f", BASE).unwrap();
        let pairs: Vec<_> = got.iter().map(|s| (s.symbol.as_str(), s.value.as_str(), s.line)).collect();
        assert_eq!(
            pairs,
            [("A", "y", 4), ("B", "n", 5), ("C", "m", 6), ("D", "\"hello world\"", 9), ("E", "0x10", 10)]
        );
        // Other comments, even ones mentioning CONFIG_, are not settings.
        assert!(parse("f", "# CONFIG_X is not set, see foo\n# CONFIG_X=y\n").unwrap().is_empty());
    }

    #[test]
    fn a_byte_order_mark_and_contradicting_lines_are_named() {
        let err = parse("f.config", "\u{feff}CONFIG_A=y\n").unwrap_err().to_string();
        assert!(err.contains("f.config:1: the file starts with a UTF-8 byte order mark"), "{err}");
        let settings = parse("f.config", "CONFIG_A=y\nCONFIG_B=y\nCONFIG_A=y\n# CONFIG_A is not set\n").unwrap();
        let err = check_conflicts("f.config", &settings).unwrap_err().to_string();
        assert_eq!(err, "f.config:4: # CONFIG_A is not set contradicts line 1: CONFIG_A=y: keep one of them");
        check_conflicts("f.config", &settings[..3]).unwrap();
    }

    #[test]
    fn rejects_malformed_lines_with_their_position() {
        for bad in ["CONFIG_FOO y", "FOO=y", "CONFIG_=y", "CONFIG_foo bar=y"] {
            let err = parse("frag.config", &format!("CONFIG_OK=y\n{bad}\n")).unwrap_err().to_string();
            assert_eq!(err, format!("frag.config:2: malformed config line: {bad}"));
        }
    }

    #[test]
    fn merge_replaces_in_place_and_appends_new_symbols() {
        let frags = [s("C", "y"), s("NEW", "y"), s("A", "y"), s("A", "n"), s("OFF", "n")];
        let merged = merge(BASE, &frags);
        let want = "#\n# Automatically generated file; DO NOT EDIT.\n#\n# CONFIG_A is not set\n# CONFIG_B is not set\n\
                    CONFIG_C=y\n\n# Section\nCONFIG_D=\"hello world\"\nCONFIG_E=0x10\nCONFIG_NEW=y\n# CONFIG_OFF is not set\n";
        assert_eq!(merged, want);
        assert_eq!(merge("CONFIG_A=y", &[]), "CONFIG_A=y\n");
    }

    #[test]
    fn changed_tells_a_missing_symbol_from_n() {
        let edited = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=m\nCONFIG_E=0x20\nCONFIG_F=y\n# CONFIG_G is not set\n";
        assert_eq!(changed(BASE, edited), ["B", "E", "F", "G", "D"]);
        assert!(changed(BASE, BASE).is_empty());
        // In a savedefconfig file, missing means "at its default", which n need not be.
        assert_eq!(changed("# CONFIG_X is not set\n", ""), ["X"]);
    }

    /// A user's config file: a header, directives, comments between settings.
    const FILE: &str = "# about\n#: base allnoconfig\nCONFIG_A=y\n\n# why B\n# CONFIG_B is not set\nCONFIG_C=m\n";

    #[test]
    fn update_keeps_every_line_and_rewrites_changed_values_in_place() {
        // Nothing changed: the very same bytes, even without a final newline.
        assert_eq!(update(FILE, &[], BASE), FILE);
        assert_eq!(update(FILE, &["A", "C"], BASE), FILE);
        let open = FILE.trim_end();
        assert_eq!(update(open, &[], BASE), open);
        // B turned on, C off, NEW on: B and C in place, NEW appended; A untouched.
        let edited = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_NEW=y\nCONFIG_OTHER=y\n";
        let want =
            "# about\n#: base allnoconfig\nCONFIG_A=y\n\n# why B\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_NEW=y\n";
        assert_eq!(update(FILE, &["NEW", "B"], edited), want);
        // A line without newline stays one; appending starts a new line.
        assert_eq!(update("CONFIG_A=y", &["Z"], "CONFIG_A=m\nCONFIG_Z=1\n"), "CONFIG_A=m\nCONFIG_Z=1\n");
        assert_eq!(update("CONFIG_A=y", &[], "CONFIG_A=m\n"), "CONFIG_A=m");
        // A symbol set twice: both lines follow, so the last one still says the right thing.
        assert_eq!(update("CONFIG_A=y\nCONFIG_A=m\n", &[], "CONFIG_A=m\n"), "CONFIG_A=m\nCONFIG_A=m\n");
    }

    #[test]
    fn an_updated_file_merges_back_to_the_edit() {
        let edited = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=m\nCONFIG_E=0x20\nCONFIG_F=y\n# CONFIG_G is not set\n";
        let cases = [
            (BASE, edited),
            (edited, BASE),
            ("", BASE),
            (BASE, ""),
            ("CONFIG_X=y\nCONFIG_X=m\n", "CONFIG_Y=1\nCONFIG_Y=2\n"),
        ];
        for (base, edited) in cases {
            let file = update(FILE, &changed(base, edited), edited);
            let merged = merge(base, &parse("f", &file).unwrap());
            assert!(differences(&merged, edited).is_empty(), "base:\n{base}\nedited:\n{edited}\nmerged:\n{merged}");
        }
    }

    #[test]
    fn differences_treat_a_missing_symbol_as_n() {
        assert!(differences(BASE, &format!("{BASE}# CONFIG_Z is not set\n")).is_empty());
        let got = differences("CONFIG_A=y\nCONFIG_B=m\n", "CONFIG_B=y\nCONFIG_C=y\n");
        assert_eq!(got, [s("A", "y"), s("B", "m"), s("C", "n")]);
    }

    #[test]
    fn check_treats_absent_symbols_as_n_and_uses_the_last_request() {
        // C is requested twice (the last one matches); B and NOPE are n, like an absent symbol.
        let requested = [s("A", "y"), s("C", "y"), s("C", "m"), s("B", "n"), s("GONE", "y"), s("NOPE", "n")];
        assert_eq!(check(&requested, BASE), [s("GONE", "y")]);
        assert_eq!(check(&[s("E", "0x20")], BASE), [s("E", "0x20")]);
        // NOPE passes the check, but the .config does not mention it: it may not exist.
        assert_eq!(unmentioned_offs(&requested, BASE), [s("NOPE", "n")]);
    }
}
