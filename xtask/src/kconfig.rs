//! Kconfig `.config` files and fragments (`CONFIG_X=value` lines), for the kernel and busybox alike.
//!
//! Fragments are merged onto a full .config the way `scripts/kconfig/merge_config.sh` does; an
//! edited .config can be diffed back into a minimal fragment; and requested settings that kconfig
//! silently dropped (unmet dependencies) are found and explained from the tree's Kconfig files.

use anyhow::{Context, Result, bail};
use camino::Utf8Path;
use fs_err as fs;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One `CONFIG_…` assignment, with the 1-based line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The symbol without its `CONFIG_` prefix.
    pub symbol: String,
    /// The raw text after `=` (`y`, `m`, `0x10`, `"string"`), or `n` for `# CONFIG_X is not set`.
    pub value: String,
    pub line: usize,
}

/// A requested setting that the effective .config does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub symbol: String,
    pub requested: String,
    /// `n` when kconfig left the symbol out of the .config.
    pub effective: String,
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

/// The minimal fragment that turns `base` into `edited` (both full .config texts). A symbol
/// missing from a text counts as `n`. Line numbers are 0: the settings come from no single file.
pub fn diff(base: &str, edited: &str) -> Vec<Setting> {
    let old = value_map(base);
    let new = value_map(edited);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push =
        |symbol: &str, value: &str| out.push(Setting { symbol: symbol.into(), value: value.into(), line: 0 });
    for (symbol, _) in values(edited) {
        let value = new[symbol];
        if seen.insert(symbol) && old.get(symbol).copied().unwrap_or("n") != value {
            push(symbol, value);
        }
    }
    // Symbols the edit dropped entirely are off now; say so only if they were on before.
    for (symbol, _) in values(base) {
        if seen.insert(symbol) && old[symbol] != "n" {
            push(symbol, "n");
        }
    }
    out
}

/// Renders settings as fragment lines (`CONFIG_X=y` / `# CONFIG_X is not set`), one per line.
pub fn render(settings: &[Setting]) -> String {
    let mut out = String::new();
    for s in settings {
        push_line(&mut out, &s.symbol, &s.value);
    }
    out
}

/// A config file rewritten with new settings: its leading comment block (descriptions,
/// `#:` directives) is kept, the settings below it are replaced.
pub fn with_header(old: &str, settings: &[Setting]) -> String {
    let header: String = old
        .lines()
        .take_while(|l| {
            l.trim().is_empty() || l.trim_start().starts_with('#') && !matches!(classify(l), Line::Setting(..))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{}{}", header, render(settings))
}

/// Every requested setting whose value in the effective .config differs. A symbol absent from
/// `effective` counts as `n` (kconfig omits symbols whose dependencies are unmet).
pub fn check(requested: &[Setting], effective: &str) -> Vec<Mismatch> {
    let effective = value_map(effective);
    // A symbol requested twice is checked once, against its last request.
    let last: HashMap<&str, usize> = requested.iter().enumerate().map(|(i, s)| (s.symbol.as_str(), i)).collect();
    let mut out = Vec::new();
    for (i, s) in requested.iter().enumerate() {
        let got = effective.get(s.symbol.as_str()).copied().unwrap_or("n");
        if last[s.symbol.as_str()] == i && got != s.value {
            out.push(Mismatch { symbol: s.symbol.clone(), requested: s.value.clone(), effective: got.into() });
        }
    }
    out
}

/// Indentation width of a line, tabs counting to the next multiple of 8 as in kconfig's lexer.
fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| matches!(c, ' ' | '\t')).fold(0, |w, c| if c == '\t' { (w / 8 + 1) * 8 } else { w + 1 })
}

/// A Kconfig file's statements: backslash continuations joined, `#` comments and help texts
/// dropped (help prose can start with "if " or "config ", which would look like keywords).
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    // Some(None): just after `help`, indentation of the text not known yet.
    let mut help: Option<Option<usize>> = None;
    for line in text.lines() {
        if let Some(min) = help {
            if line.trim().is_empty() {
                continue;
            }
            // Like kconfig: help ends at an unindented line or one indented less than its first.
            let width = indentation(line);
            if width > 0 && min.is_none_or(|min| width >= min) {
                help = Some(min.or(Some(width)));
                continue;
            }
            help = None;
        }
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let statement = std::mem::take(&mut pending);
        let code = statement.split_once('#').map_or(statement.as_str(), |(code, _)| code);
        // Single spaces, so that continued and tab-indented expressions compare equal.
        let statement = code.split_whitespace().collect::<Vec<_>>().join(" ");
        if statement == "help" || statement == "---help---" {
            help = Some(None);
        }
        out.push(statement);
    }
    out
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !item.is_empty() && !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// The `depends on` expressions of `config SYM` / `menuconfig SYM` entries in one Kconfig file's
/// text, or None when the file does not define SYM. Enclosing `if EXPR` blocks count as
/// dependencies too (outermost first); every definition's dependencies are merged.
pub fn depends_in(kconfig_text: &str, symbol: &str) -> Option<Vec<String>> {
    let mut deps = Vec::new();
    let mut found = false;
    let mut ifs: Vec<String> = Vec::new();
    let mut in_entry = false;
    for statement in statements(kconfig_text) {
        let (keyword, rest) = statement.split_once(' ').unwrap_or((&statement, ""));
        match keyword {
            "config" | "menuconfig" | "choice" | "endchoice" | "menu" | "endmenu" | "if" | "endif" | "comment"
            | "source" => {
                // Each of these keywords ends the entry before it.
                in_entry = matches!(keyword, "config" | "menuconfig") && rest == symbol;
                if in_entry {
                    found = true;
                    ifs.iter().for_each(|e| push_unique(&mut deps, e));
                }
                match keyword {
                    "if" => ifs.push(rest.to_string()),
                    "endif" => {
                        ifs.pop();
                    }
                    _ => {}
                }
            }
            "depends" if in_entry => {
                if let Some(expr) = rest.strip_prefix("on ") {
                    push_unique(&mut deps, expr);
                }
            }
            // `bool "Support Hygon processors" if PROCESSOR_SELECT`: settable only when EXPR holds.
            "bool" | "tristate" | "string" | "int" | "hex" | "prompt" if in_entry => {
                if let Some((_, expr)) = rest.rsplit_once("\" if ") {
                    push_unique(&mut deps, &format!("{PROMPT_IF}{expr}"));
                }
            }
            _ => {}
        }
    }
    found.then_some(deps)
}

/// Searches every file named `Kconfig*` under `tree` (a kernel or busybox source tree; for busybox
/// also `Config.in` files) for `symbol`. None: no Kconfig defines it.
pub fn find_depends(tree: &Utf8Path, symbol: &str) -> Result<Option<Vec<String>>> {
    let mut found = None;
    search(tree.as_std_path(), symbol, &mut found)
        .with_context(|| format!("searching {tree} for the kconfig entry of {symbol}"))?;
    Ok(found)
}

fn search(dir: &Path, symbol: &str, found: &mut Option<Vec<String>>) -> Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    // Sorted so that the merged dependency list does not depend on directory order.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // file_type() does not follow symlinks, so linked trees are not searched twice.
        let kind = entry.file_type()?;
        if kind.is_dir() && name != ".git" {
            search(&entry.path(), symbol, found)?;
        } else if kind.is_file() && (name.starts_with("Kconfig") || name == "Config.in") {
            let bytes = fs::read(entry.path())?;
            let text = String::from_utf8_lossy(&bytes);
            // Cheap pre-filter: almost no file of a kernel tree mentions the symbol.
            if !text.contains(symbol) {
                continue;
            }
            if let Some(deps) = depends_in(&text, symbol) {
                let all = found.get_or_insert_default();
                deps.iter().for_each(|d| push_unique(all, d));
            }
        }
    }
    Ok(())
}

/// One line for a mismatch, e.g. `CONFIG_SERIAL_8250: requested y, got n (depends on HAS_IOMEM && TTY)`
/// or `CONFIG_FOO: requested y, but no Kconfig defines it in this source tree`.
pub fn explain(m: &Mismatch, depends: Option<&[String]>) -> String {
    let head = format!("CONFIG_{}: requested {}", m.symbol, m.requested);
    match depends {
        None => format!("{head}, but no Kconfig defines it in this source tree"),
        Some([]) => format!("{head}, got {} (no dependencies: it may be selected off or a choice)", m.effective),
        Some(deps) => {
            let (prompts, plain): (Vec<&String>, Vec<&String>) = deps.iter().partition(|d| d.starts_with(PROMPT_IF));
            let mut why = Vec::new();
            if !plain.is_empty() {
                why.push(format!("depends on {}", plain.iter().map(|d| d.as_str()).collect::<Vec<_>>().join("; ")));
            }
            for p in prompts {
                why.push(format!("settable only if {}", &p[PROMPT_IF.len()..]));
            }
            format!("{head}, got {} ({})", m.effective, why.join("; "))
        }
    }
}

/// Marks a prompt's condition among the dependencies `depends_in` returns.
const PROMPT_IF: &str = "prompt if ";

#[cfg(test)]
mod tests {
    use super::*;

    fn s(symbol: &str, value: &str) -> Setting {
        Setting { symbol: symbol.into(), value: value.into(), line: 0 }
    }

    fn map(text: &str) -> HashMap<String, String> {
        let settings = parse("t", text).unwrap();
        settings.into_iter().filter(|s| s.value != "n").map(|s| (s.symbol, s.value)).collect()
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
    fn diff_is_minimal_and_merges_back_to_the_edit() {
        let edited = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=m\nCONFIG_E=0x20\nCONFIG_F=y\n# CONFIG_G is not set\n";
        let d = diff(BASE, edited);
        assert_eq!(render(&d), "CONFIG_B=y\nCONFIG_E=0x20\nCONFIG_F=y\n# CONFIG_D is not set\n");
        assert!(diff(BASE, BASE).is_empty());

        let cases = [
            (BASE, edited),
            (edited, BASE),
            ("", BASE),
            (BASE, ""),
            ("CONFIG_X=y\nCONFIG_X=m\n", "# CONFIG_X is not set\nCONFIG_Y=1\nCONFIG_Y=2\n"),
        ];
        for (base, edited) in cases {
            let merged = merge(base, &diff(base, edited));
            assert_eq!(map(&merged), map(edited), "base:\n{base}\nedited:\n{edited}\nmerged:\n{merged}");
        }
    }

    #[test]
    fn check_treats_absent_symbols_as_n_and_uses_the_last_request() {
        // C is requested twice (the last one matches); B and NOPE are n, like an absent symbol.
        let requested = [s("A", "y"), s("C", "y"), s("C", "m"), s("B", "n"), s("GONE", "y"), s("NOPE", "n")];
        let want = Mismatch { symbol: "GONE".into(), requested: "y".into(), effective: "n".into() };
        assert_eq!(check(&requested, BASE), [want]);
        let m = check(&[s("E", "0x20")], BASE);
        assert_eq!((m[0].requested.as_str(), m[0].effective.as_str()), ("0x20", "0x10"));
    }

    const KCONFIG: &str = r#"
menu "Serial"
config OTHER
	bool "other"
	depends on HAS_DMA

if TTY

config SERIAL_8250
	tristate "8250/16550 and compatible serial support"
	depends on !S390 # no serial there
	depends on HAS_IOMEM && \
		   (ARM || X86)
	select SERIAL_CORE
	help
	  Say Y here.
	  if you have a modem, say Y.

	  config lines in help text are prose too.
	  endif
	depends on NOT_REALLY

if SERIAL_8250
menuconfig SERIAL_8250_EXTENDED
	bool "Extended"
endif
config AFTER
	depends on AFTER_DEP
endif # TTY

config SERIAL_8250
	bool
	depends on HAS_IOMEM && (ARM || X86)
	depends on PCI
config NODEPS
	bool
endmenu
"#;

    #[test]
    fn depends_in_collects_enclosing_ifs_continuations_and_every_definition() {
        let deps = depends_in(KCONFIG, "SERIAL_8250").unwrap();
        assert_eq!(deps, ["TTY", "!S390", "HAS_IOMEM && (ARM || X86)", "NOT_REALLY", "PCI"]);
        assert_eq!(depends_in(KCONFIG, "SERIAL_8250_EXTENDED").unwrap(), ["TTY", "SERIAL_8250"]);
        // The `if` stack survived the help text and the nested block.
        assert_eq!(depends_in(KCONFIG, "AFTER").unwrap(), ["TTY", "AFTER_DEP"]);
        assert_eq!(depends_in(KCONFIG, "OTHER").unwrap(), ["HAS_DMA"]);
        assert_eq!(depends_in(KCONFIG, "NODEPS").unwrap(), Vec::<String>::new());
        assert_eq!(depends_in(KCONFIG, "SERIAL"), None);
        assert_eq!(depends_in(KCONFIG, "SERIAL_CORE"), None);
    }

    #[test]
    fn find_depends_searches_kconfig_and_config_in_files() {
        let tree = std::env::temp_dir().join(format!("teeny-kconfig-test-{}", std::process::id()));
        let tree = camino::Utf8PathBuf::try_from(tree).unwrap();
        let _ = fs::remove_dir_all(&tree); // left over from a failed run
        let write = |rel: &str, text: &[u8]| {
            let path = tree.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("drivers/tty/Kconfig", b"if TTY\nconfig FOO\n\tdepends on A\nendif\n");
        write("arch/x86/Kconfig.debug", b"# \xff not utf-8\nconfig FOO\n\tdepends on B\n\tdepends on A\n");
        write("util-linux/Config.in", b"config FOO\n\tdepends on C\n");
        write(".git/Kconfig", b"config FOO\n\tdepends on GIT\n");
        write("drivers/tty/foo.c", b"config FOO\n\tdepends on SOURCE\n");
        write("other/Kconfig", b"config BAR\n");
        // Symlinks are not followed: this one would add SOURCE.
        std::os::unix::fs::symlink(tree.join("drivers/tty/foo.c"), tree.join("Kconfig.link")).unwrap();

        let deps = find_depends(&tree, "FOO").unwrap().unwrap();
        assert_eq!(deps, ["B", "A", "TTY", "C"]);
        assert_eq!(find_depends(&tree, "BAR").unwrap().unwrap(), Vec::<String>::new());
        assert_eq!(find_depends(&tree, "BAZ").unwrap(), None);
        let err = find_depends(&tree.join("missing"), "FOO").unwrap_err();
        assert!(format!("{err:#}").starts_with("searching "), "{err:#}");
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn explains_each_kind_of_mismatch() {
        let m = Mismatch { symbol: "FOO".into(), requested: "y".into(), effective: "n".into() };
        let deps = ["HAS_IOMEM && TTY".to_string(), "!S390".to_string()];
        assert_eq!(explain(&m, Some(&deps[..1])), "CONFIG_FOO: requested y, got n (depends on HAS_IOMEM && TTY)");
        assert_eq!(explain(&m, Some(&deps)), "CONFIG_FOO: requested y, got n (depends on HAS_IOMEM && TTY; !S390)");
        let none = "CONFIG_FOO: requested y, got n (no dependencies: it may be selected off or a choice)";
        assert_eq!(explain(&m, Some(&[])), none);
        assert_eq!(explain(&m, None), "CONFIG_FOO: requested y, but no Kconfig defines it in this source tree");
    }

    #[test]
    fn with_header_keeps_the_comment_block_and_replaces_settings() {
        let old = "# about\n#: base allnoconfig\n\nCONFIG_A=y\n# CONFIG_B is not set\n";
        let new = [Setting { symbol: "C".into(), value: "y".into(), line: 0 }];
        assert_eq!(with_header(old, &new), "# about\n#: base allnoconfig\n\nCONFIG_C=y\n");
    }

    #[test]
    fn a_prompt_condition_is_explained() {
        let text = "config CPU_SUP_HYGON\n\tdefault y\n\tbool \"Support Hygon processors\" if PROCESSOR_SELECT\n\tselect CPU_SUP_AMD\n";
        let deps = depends_in(text, "CPU_SUP_HYGON").unwrap();
        let m = Mismatch { symbol: "CPU_SUP_HYGON".into(), requested: "n".into(), effective: "y".into() };
        assert_eq!(
            explain(&m, Some(&deps)),
            "CONFIG_CPU_SUP_HYGON: requested n, got y (settable only if PROCESSOR_SELECT)"
        );
        let both = ["X86".to_owned(), format!("{PROMPT_IF}EXPERT")];
        assert!(explain(&m, Some(&both)).ends_with("(depends on X86; settable only if EXPERT)"));
    }
}
