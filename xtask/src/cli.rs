//! Command-line helpers the steps' option structs and `main` share: value parsers, and the
//! one-line hints that replace clap's guesses. They take the command tree as an argument.

/// Whole seconds; a negative number is a value here, not an option (clap would suggest `-- -1`).
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("seconds as a whole number, 0 or more, not `{s}`"))
}

/// A memory size as qemu's `-m` takes it: a positive number, maybe with a fraction, and maybe
/// one unit letter (K, M, G, T, either case); a number alone is MiB. Kept as given.
pub fn parse_memory(s: &str) -> Result<String, String> {
    let number = s.strip_suffix(|c: char| "KMGTkmgt".contains(c)).unwrap_or(s);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let positive = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if digits(whole) && digits(fraction) && positive {
        Ok(s.to_owned())
    } else {
        Err(format!("a memory size as qemu's -m takes it (512M, 2G; a number alone is MiB), not `{s}`"))
    }
}

/// The words of a command line without the global options and their values (`args` without
/// the program's name): what a `reproducer` repeats after writing the global options that
/// matter itself. Everything after `--` is kept.
pub fn command_words(cmd: &clap::Command, args: &[String]) -> Vec<String> {
    let globals: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).collect();
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let (mut words, mut rest) = (Vec::new(), args.iter());
    while let Some(word) = rest.next() {
        if word == "--" {
            words.push(word.clone());
            words.extend(rest.by_ref().cloned());
            break;
        }
        let long = word.strip_prefix("--").map(|w| w.split_once('=').map_or((w, false), |(n, _)| (n, true)));
        let short = word.strip_prefix('-').filter(|w| !w.starts_with('-')).and_then(|w| w.chars().next());
        let global = globals.iter().find(|a| match (long, short) {
            (Some((name, _)), _) => a.get_long() == Some(name),
            (None, Some(c)) => a.get_short() == Some(c),
            _ => false,
        });
        match global {
            None => words.push(word.clone()),
            // `--arch arm64`, `-j 4`: the value is the next word; `--arch=arm64`, `-j4`: this one.
            Some(a) if takes_value(a) && long.is_some_and(|(_, eq)| !eq) => drop(rest.next()),
            Some(a) if takes_value(a) && long.is_none() && word.len() == 2 => drop(rest.next()),
            Some(_) => {}
        }
    }
    words
}

/// The environment variable behind an invalid value, when it came from there: clap names only
/// the option (`--arch`) although the user never typed it. clap checks a global option's
/// variable even when the option is typed too (`TEENY_TOOLCHAIN=icc … --toolchain clang`): the
/// refused value says where it came from.
pub fn from_environment(cmd: &clap::Command, err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else { return None };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let opt = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let var = opt.get_env()?.to_str()?;
    let value = std::env::var(var).ok()?;
    if !refused_from_environment(err, &value, long, &std::env::args().collect::<Vec<_>>()) {
        return None;
    }
    let why = match choices(err) {
        Some(choices) => choices,
        None => {
            let text = err.to_string();
            text.lines().next().unwrap_or("").rsplit_once("': ").map_or(text.as_str(), |(_, w)| w).to_owned()
        }
    };
    Some(format!("{var}={value} (from the environment, for --{long}): {why}"))
}

/// Whether the value clap refused for `--LONG` is the variable's `value` and not one typed.
fn refused_from_environment(err: &clap::Error, value: &str, long: &str, args: &[String]) -> bool {
    use clap::error::{ContextKind, ContextValue};
    let (flag, joined) = (format!("--{long}"), format!("--{long}="));
    let typed: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix(&joined))
        .chain(args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()))
        .collect();
    match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(refused)) => refused == value && !typed.contains(&refused.as_str()),
        _ => typed.is_empty(),
    }
}

/// One line for a value refused that is not in an option's list (`--toolchain icc`). clap's
/// own takes four lines and may offer the nearest spelling (`gcc` for `icc`), another thing.
pub fn invalid_value(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else { return None };
    let Some(ContextValue::String(value)) = err.get(ContextKind::InvalidValue) else { return None };
    let option = arg.split_whitespace().next().unwrap_or(arg);
    Some(format!("invalid value `{value}` for {option}: {}", choices(err)?))
}

/// `choose one of gcc, clang`: the values of the option a value was refused for, if it has a list.
fn choices(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    match err.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) if err.kind() == clap::error::ErrorKind::InvalidValue => {
            Some(format!("choose one of {}", valid.join(", ")))
        }
        _ => None,
    }
}

/// `--kvm is an option of `cargo xtask qemu --kvm` and …`, if some command takes `arg`.
pub fn misplaced_option(cmd: &clap::Command, arg: &str) -> Option<String> {
    let long = arg.split('=').next()?.strip_prefix("--")?;
    let owners: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
        .map(|c| format!("`cargo xtask {} --{long}`", c.get_name()))
        .collect();
    (!owners.is_empty())
        .then(|| format!("--{long} is an option of {}: put it after the command's name", owners.join(" and ")))
}

/// A guest command typed without `--` (`qemu --kernel fast uname -r`): say where it goes.
pub fn forgotten_dashes(arg: &str, args: &[String]) -> Option<String> {
    if arg.starts_with('-') || !args.iter().any(|a| a == "qemu") || args.iter().any(|a| a == "--") {
        return None;
    }
    let at = args.iter().position(|a| a == arg)?;
    let fixed: Vec<&str> =
        args[1..at].iter().map(String::as_str).chain(["--"]).chain(args[at..].iter().map(String::as_str)).collect();
    Some(format!(
        "`{arg}` is not an option of cargo xtask qemu: a command for the guest goes after `--` (`cargo xtask {}`)",
        fixed.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_qemus() {
        for ok in ["512M", "2G", "1.5G", "256", "64m", "1t", "4096K"] {
            assert_eq!(parse_memory(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "M", "0", "0M", "0.0G", "-1G", "2GB", "2 G", "1.G", ".5G", "two", "1e3"] {
            let err = parse_memory(bad).unwrap_err();
            assert!(err.ends_with(&format!("not `{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn a_refused_value_came_from_the_environment_unless_it_was_typed() {
        let cmd = || {
            clap::Command::new("x").arg(clap::Arg::new("toolchain").long("toolchain").value_parser(["gcc", "clang"]))
        };
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = cmd().try_get_matches_from(["x", "--toolchain", "icc"]).unwrap_err();
        assert!(!refused_from_environment(&err, "icc", "toolchain", &args(&["x", "--toolchain", "icc"])));
        assert!(!refused_from_environment(&err, "icc", "toolchain", &args(&["x", "--toolchain=icc"])));
        assert!(refused_from_environment(&err, "icc", "toolchain", &args(&["x", "--toolchain", "clang"])));
        assert!(refused_from_environment(&err, "icc", "toolchain", &args(&["x"])));
        assert!(!refused_from_environment(&err, "gcc", "toolchain", &args(&["x"])), "the variable holds another");
        assert_eq!(invalid_value(&err).unwrap(), "invalid value `icc` for --toolchain: choose one of gcc, clang");
    }

    #[test]
    fn a_guest_command_without_dashes_is_shown_with_them() {
        let args: Vec<String> = ["xtask", "qemu", "--kernel", "fast", "uname", "-r"].map(String::from).into();
        let hint = forgotten_dashes("uname", &args).unwrap();
        assert!(hint.contains("(`cargo xtask qemu --kernel fast -- uname -r`)"), "{hint}");
        assert_eq!(forgotten_dashes("--bogus", &args), None);
        let bench: Vec<String> = ["xtask", "bench", "x"].map(String::from).into();
        assert_eq!(forgotten_dashes("x", &bench), None);
    }
}
