//! `.kunitconfig` files: the Kconfig lines a KUnit run needs, as kunit.py takes them (a file,
//! or a folder holding one), merged into the `kunit` option set of the test kernel's variant.

use crate::kconfig::{self, Setting, line_of};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// A config fragment as read (a `.kunitconfig`, a selftest target's `config`): where it is,
/// and its settings.
pub struct Fragment {
    pub path: Utf8PathBuf,
    pub settings: Vec<Setting>,
}

/// Where `--kunitconfig ARG` is: ARG itself or ARG/.kunitconfig, as given (from the current
/// folder) or else in the kernel source tree (`lib/kunit` names the tree's own).
pub fn find(arg: &Utf8Path, tree: &Utf8Path) -> Result<Utf8PathBuf> {
    let candidates = [arg.to_owned(), tree.join(arg)];
    for c in &candidates {
        let file = if c.is_dir() { c.join(".kunitconfig") } else { c.clone() };
        if file.is_file() {
            return Ok(file);
        }
    }
    bail!("--kunitconfig {arg}: neither {arg} nor {} is a .kunitconfig or a folder holding one", tree.join(arg))
}

pub fn read(path: &Utf8Path) -> Result<Fragment> {
    let text = fs::read_to_string(path)?;
    let settings = kconfig::parse(path.as_str(), &text)?;
    kconfig::check_conflicts(path.as_str(), &settings)?;
    Ok(Fragment { path: path.to_owned(), settings })
}

/// The lines of every file, each symbol once; a symbol two files set differently is an error
/// naming both lines.
pub fn merge(configs: &[Fragment]) -> Result<Vec<String>> {
    let mut seen: Vec<(&Utf8Path, &Setting)> = Vec::new();
    for c in configs {
        for s in &c.settings {
            match seen.iter().find(|(_, o)| o.symbol == s.symbol) {
                Some((p, o)) if o.value != s.value => bail!(
                    "{}:{}: {} contradicts {p}:{}: {}: keep one of them",
                    c.path,
                    s.line,
                    line_of(s),
                    o.line,
                    line_of(o)
                ),
                Some(_) => {}
                None => seen.push((&c.path, s)),
            }
        }
    }
    Ok(seen.iter().map(|(_, s)| line_of(s)).collect())
}

/// `kunit.filter_glob` for a glob: kunit's own syntax, `SUITE[.TEST]` with `*` and `?`; a space
/// would end the kernel argument.
pub fn check_glob(glob: &str) -> Result<()> {
    if glob.is_empty() || glob.contains(char::is_whitespace) || glob.contains('"') {
        bail!(
            "test glob `{glob}`: a SUITE or SUITE.TEST pattern without spaces or quotes (e.g. `kunit*` or `example.example_simple_test`)"
        );
    }
    Ok(())
}

/// Reads every `--kunitconfig` (the tree's `lib/kunit/.kunitconfig` when none is given).
pub fn load(args: &[Utf8PathBuf], tree: &Utf8Path) -> Result<(Vec<Utf8PathBuf>, Vec<String>)> {
    let default = [Utf8PathBuf::from("lib/kunit")];
    let args = if args.is_empty() { &default[..] } else { args };
    let mut configs = Vec::new();
    for a in args {
        let path = find(a, tree)?;
        configs.push(read(&path).with_context(|| format!("--kunitconfig {a}"))?);
    }
    // KUNIT first.
    let mut lines = vec!["CONFIG_KUNIT=y".to_owned()];
    lines.extend(merge(&configs)?.into_iter().filter(|l| l != "CONFIG_KUNIT=y"));
    Ok((configs.into_iter().map(|c| c.path).collect(), lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &str, text: &str) -> Fragment {
        Fragment { path: path.into(), settings: kconfig::parse(path, text).unwrap() }
    }

    #[test]
    fn files_merge_and_a_conflict_names_both_lines() {
        let a = config("a/.kunitconfig", "CONFIG_KUNIT=y\nCONFIG_KUNIT_TEST=y\n");
        let b = config("b.kunitconfig", "# comment\nCONFIG_KUNIT_EXAMPLE_TEST=y\nCONFIG_KUNIT_TEST=y\n");
        assert_eq!(merge(&[a, b]).unwrap(), ["CONFIG_KUNIT=y", "CONFIG_KUNIT_TEST=y", "CONFIG_KUNIT_EXAMPLE_TEST=y"]);
        let a = config("a/.kunitconfig", "CONFIG_KUNIT=y\nCONFIG_KUNIT_TEST=y\n");
        let c = config("c.kunitconfig", "\n# CONFIG_KUNIT_TEST is not set\n");
        let err = merge(&[a, c]).unwrap_err().to_string();
        assert_eq!(
            err,
            "c.kunitconfig:2: # CONFIG_KUNIT_TEST is not set contradicts a/.kunitconfig:2: CONFIG_KUNIT_TEST=y: keep one of them"
        );
    }

    #[test]
    fn a_kunitconfig_is_a_file_or_a_folder_here_or_in_the_tree() {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-kunit-{}", std::process::id()));
        let tree = dir.join("linux");
        fs::create_dir_all(tree.join("lib/kunit")).unwrap();
        fs::write(tree.join("lib/kunit/.kunitconfig"), "CONFIG_KUNIT=y\n").unwrap();
        fs::write(dir.join("mine"), "CONFIG_KUNIT=y\n").unwrap();
        assert_eq!(find("lib/kunit".into(), &tree).unwrap(), tree.join("lib/kunit/.kunitconfig"));
        assert_eq!(find(&dir.join("mine"), &tree).unwrap(), dir.join("mine"));
        let err = find("lib/nothing".into(), &tree).unwrap_err().to_string();
        assert!(err.starts_with("--kunitconfig lib/nothing: neither lib/nothing nor"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn globs_are_one_kernel_argument() {
        assert!(check_glob("kunit*").is_ok() && check_glob("example.example_simple_test").is_ok());
        assert!(check_glob("a b").is_err() && check_glob("").is_err() && check_glob("a\"").is_err());
    }
}
