//! `--dry-run`: print the exact commands a run would run, run none of them, write nothing.
//!
//! The runner prints each step (`$ make …`, then its `docker run …` line) instead of running
//! it ([`crate::runner::Runner::run`]), and qemu's command line is printed where it would start.
//! Up-to-date checks, hashes and the engine's read-only queries (`image inspect`) run as usual,
//! so what is up to date says so and prints nothing more. Nothing is written under the build
//! folder: no stamps, logs, locks, records or temporary files; what xtask would write itself
//! (an initramfs) is named with [`would_write`].
//!
//! A step whose output a later one reads and that is not there (a kernel never built) ends the
//! run with [`Stop`]: `main` prints its line and exits 0. An output an earlier run left is used
//! as it is, since a later step needs only its path (the boot image qemu would boot).

use camino::{Utf8Path, Utf8PathBuf};

/// A dry run cannot go on: the next steps read `needs`, which it did not make.
#[derive(Debug)]
pub struct Stop {
    pub needs: Utf8PathBuf,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "dry run: the next steps need {}, which this run did not make", self.needs)
    }
}

impl std::error::Error for Stop {}

/// The error that stops a dry run before a step that reads `path`, which it did not make.
pub fn needs(path: &Utf8Path) -> anyhow::Error {
    anyhow::Error::new(Stop { needs: path.to_owned() })
}

/// The dry run's [`Stop`] that `e` is (also under context): never a failure.
pub fn stop(e: &anyhow::Error) -> Option<&Stop> {
    e.downcast_ref::<Stop>()
}

/// Whether `e` is a dry run's [`Stop`].
pub fn is_stop(e: &anyhow::Error) -> bool {
    stop(e).is_some()
}

/// Says what a real run would write here itself (no command shows it).
pub fn would_write(path: &Utf8Path, what: &str) {
    eprintln!("dry run: would write {path} ({what})");
}

/// Ok if an earlier run left `path`; else a [`Stop`] naming it.
pub fn existing(path: &Utf8Path) -> anyhow::Result<()> {
    if path.exists() { Ok(()) } else { Err(self::needs(path)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_stop_names_what_is_missing_and_is_found_under_context() {
        let e = existing("/nonexistent/bzImage".into()).context("booting").unwrap_err();
        assert!(is_stop(&e));
        let stop = super::stop(&e).unwrap().to_string();
        assert_eq!(stop, "dry run: the next steps need /nonexistent/bzImage, which this run did not make");
        assert!(!is_stop(&anyhow::anyhow!("a real failure")));
        assert!(existing("/".into()).is_ok());
    }
}
