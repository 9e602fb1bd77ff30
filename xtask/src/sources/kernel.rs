//! Which kernel source a command builds. `sources.txt` may pin several kernels and
//! `--kernel-source` may name several tarballs or trees; the first is the default (the
//! walk-through's), and `--kernel-version` picks another by its version. A kernel of another
//! source than the default is built in folders of its own (`linux-ARCH-NAME-VERSION`), so that
//! switching between two sources never rebuilds either from scratch.

use super::{Package, Pin, check_tree};
pub use crate::ctx::KernelChoice as Choice;
use anyhow::{Result, bail};
use camino::{Utf8Path, Utf8PathBuf};

/// Does `version` (`6.12.16`, `6.12`, `6.13.0-rc3`) answer `--kernel-version wanted`? Equal, or
/// `wanted` is its start up to a dot or a dash: `6.12` takes 6.12.16 but not 6.120.
pub fn matches(version: &str, wanted: &str) -> bool {
    version == wanted || version.strip_prefix(wanted).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// A kernel tarball's version from its name: `linux-6.1.127.tar.xz` (kernel.org's) and
/// `linux-source-6.12.tar.xz` (Debian's) both say it; other names do not.
pub fn version_from_name(path: &Utf8Path) -> Option<String> {
    let name = path.file_name()?;
    let stem = name.split(".tar").next()?;
    let version = stem.strip_prefix("linux-source-").or_else(|| stem.strip_prefix("linux-"))?;
    version.starts_with(|c: char| c.is_ascii_digit()).then(|| version.to_owned())
}

/// Picks among `(version, …)` candidates, the first being the default: with `wanted`, the one
/// whose version matches (the first such). `what` names the list in messages.
fn pick(versions: &[Option<String>], wanted: Option<&str>, what: &str) -> Result<usize> {
    let Some(wanted) = wanted else { return Ok(0) };
    if let Some(i) = versions.iter().position(|v| v.as_deref().is_some_and(|v| matches(v, wanted))) {
        return Ok(i);
    }
    let known: Vec<&str> = versions.iter().map(|v| v.as_deref().unwrap_or("(unknown)")).collect();
    bail!("--kernel-version {wanted}: {what} has no such kernel; it has {}", known.join(", "))
}

/// Chooses the kernel source: among `local` (`--kernel-source`'s tarballs and trees) when any
/// are given, else among the `linux` pins of `sources.txt`.
pub fn choose(pins: &[Pin], local: &[Utf8PathBuf], wanted: Option<&str>) -> Result<Choice> {
    let (index, versions) = if local.is_empty() {
        let versions: Vec<Option<String>> =
            pins.iter().filter(|p| p.name == "linux").map(|p| Some(p.version.clone())).collect();
        if versions.is_empty() {
            bail!("sources.txt has no `linux` line");
        }
        (pick(&versions, wanted, "sources.txt")?, versions)
    } else {
        let versions: Vec<Option<String>> = local
            .iter()
            .map(|p| if p.is_dir() { check_tree(Package::Linux, p).ok() } else { version_from_name(p) })
            .collect();
        if let (Some(_), true) = (wanted, local.len() > 1)
            && let Some(i) = versions.iter().position(Option::is_none)
        {
            bail!(
                "--kernel-version: the version of {} does not show in its name (linux-VERSION.tar.xz or linux-source-VERSION.tar.xz): rename it or give it alone",
                local[i]
            );
        }
        let i = if local.len() == 1 { 0 } else { pick(&versions, wanted, "--kernel-source")? };
        (i, versions)
    };
    let suffix = (index > 0).then(|| versions[index].clone().unwrap_or_default());
    let wanted = wanted.map(str::to_owned);
    Ok(match local.get(index) {
        Some(path) => Choice { local: Some(path.clone()), pin: None, suffix, wanted },
        None => Choice { local: None, pin: versions[index].clone(), suffix, wanted },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(version: &str) -> Pin {
        Pin {
            name: "linux".into(),
            version: version.into(),
            url: format!("https://x/linux-{version}.tar.xz"),
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn a_version_matches_itself_and_its_prefixes_at_a_dot() {
        assert!(matches("6.12.16", "6.12.16"));
        assert!(matches("6.12.16", "6.12"));
        assert!(matches("6.12.16", "6"));
        assert!(matches("6.13.0-rc3", "6.13.0"));
        assert!(!matches("6.120.1", "6.12"));
        assert!(!matches("6.1.127", "6.12"));
    }

    #[test]
    fn tarball_names_tell_their_version() {
        assert_eq!(version_from_name("/d/linux-6.1.127.tar.xz".into()).as_deref(), Some("6.1.127"));
        assert_eq!(version_from_name("/usr/src/linux-source-6.12.tar.xz".into()).as_deref(), Some("6.12"));
        assert_eq!(version_from_name("/d/kernel.tar.xz".into()), None);
        assert_eq!(version_from_name("/d/linux-next.tar.xz".into()), None);
    }

    #[test]
    fn the_first_pin_is_the_default_and_others_get_folders_of_their_own() {
        let pins = [pin("6.1.127"), Pin { name: "busybox".into(), ..pin("1.37.0") }, pin("6.12.16")];
        assert_eq!(choose(&pins, &[], None).unwrap(), Choice { pin: Some("6.1.127".into()), ..Choice::default() });
        assert_eq!(choose(&pins, &[], Some("6.1")).unwrap().suffix, None);
        let newer = choose(&pins, &[], Some("6.12")).unwrap();
        assert_eq!((newer.pin.as_deref(), newer.suffix.as_deref()), (Some("6.12.16"), Some("6.12.16")));
        let err = choose(&pins, &[], Some("5.15")).unwrap_err().to_string();
        assert_eq!(err, "--kernel-version 5.15: sources.txt has no such kernel; it has 6.1.127, 6.12.16");
    }

    #[test]
    fn local_sources_are_picked_by_the_version_in_their_names() {
        let local: Vec<Utf8PathBuf> =
            vec!["/nonexistent/linux-source-6.1.tar.xz".into(), "/nonexistent/linux-source-6.12.tar.xz".into()];
        let first = choose(&[], &local, None).unwrap();
        assert_eq!((first.local, first.suffix), (Some(local[0].clone()), None));
        let second = choose(&[], &local, Some("6.12")).unwrap();
        assert_eq!((second.local, second.suffix), (Some(local[1].clone()), Some("6.12".into())));
        assert!(choose(&[], &local, Some("6.6")).unwrap_err().to_string().contains("it has 6.1, 6.12"));
        // One source alone is what the user asked for, whatever its name.
        let alone = choose(&[], &["/nonexistent/k.tar.xz".into()], Some("6.12")).unwrap();
        assert_eq!(alone.suffix, None);
        let unnamed: Vec<Utf8PathBuf> = vec![local[0].clone(), "/nonexistent/k.tar.xz".into()];
        let err = choose(&[], &unnamed, Some("6.12")).unwrap_err().to_string();
        assert!(err.contains("the version of /nonexistent/k.tar.xz does not show in its name"), "{err}");
    }
}
