//! The compiler cache: ccache in front of gcc for kernel and busybox builds, shared by every
//! config and `O=` folder (build/ccache, or TEENY_CCACHE_DIR to share one between checkouts).
//!
//! ccache comes in through its masquerade folder at the front of PATH, so make's `CC=gcc` and
//! every recorded command line stay the same with and without it: turning it off rebuilds
//! nothing, and the objects are the compiler's own bytes either way.

use crate::ctx::Ctx;
use crate::step::Step;
use anyhow::{Context, Result};
use camino::Utf8Path;
use fs_err as fs;

/// Where Debian's ccache keeps its `gcc` → ccache links.
const MASQUERADE: &str = "/usr/lib/ccache";
/// PATH in the builder image, with the masquerade folder first.
const CONTAINER_PATH: &str = "/usr/lib/ccache:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Hits and misses of one build, from its stats log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
}

/// Fails, naming the folder, if the cache is on and cannot be written: checked before any step
/// runs rather than deep inside a build.
pub fn check(dir: Option<&Utf8Path>) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    let probe = dir.join(format!(".teeny-probe-{}", std::process::id()));
    fs::create_dir_all(dir)
        .and_then(|()| fs::write(&probe, b""))
        .and_then(|()| fs::remove_file(&probe))
        .with_context(|| format!("the ccache folder {dir} is not writable (set TEENY_CCACHE_DIR or use --no-ccache)"))
}

/// A compile step with the cache turned on (when it is), logging its counts to `stats_log`.
pub fn apply(ctx: &Ctx, step: Step, stats_log: &Utf8Path) -> Result<Step> {
    // A log left by an earlier build would be reported as this one's.
    if !ctx.dry_run {
        let _ = fs::remove_file(stats_log);
    }
    let Some(dir) = &ctx.ccache else { return Ok(step) };
    let path = match ctx.runner_kind.engine() {
        Some(_) => CONTAINER_PATH.to_owned(),
        None => format!("{MASQUERADE}:{}", std::env::var("PATH").unwrap_or_default()),
    };
    Ok(step
        .env("PATH", &path)
        .env("CCACHE_DIR", dir.as_str())
        // The working directory (each O= folder) is hashed only for -g builds; never, so that
        // the same compile in two O= folders hits. No base_dir: it would rewrite the paths the
        // compiler sees, and so the objects.
        .env("CCACHE_NOHASHDIR", "1")
        .env("CCACHE_STATSLOG", stats_log.as_str()))
}

/// The counts of a build's stats log, also printed for people; none when the cache was off or
/// nothing compiled.
pub fn stats(stats_log: &Utf8Path) -> Option<Stats> {
    let stats = parse_stats(&fs::read_to_string(stats_log).ok()?);
    eprintln!("ccache: {} hits, {} misses", stats.hits, stats.misses);
    Some(stats)
}

/// ccache's stats log: `# file` then one counter name a line, per compiler call.
fn parse_stats(text: &str) -> Stats {
    let count = |names: &[&str]| text.lines().filter(|l| names.contains(&l.trim())).count() as u64;
    Stats { hits: count(&["direct_cache_hit", "preprocessed_cache_hit"]), misses: count(&["cache_miss"]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hits_and_misses_of_a_stats_log() {
        let log = "# a.c\ncache_miss\ndirect_cache_miss\nlocal_storage_miss\npreprocessed_cache_miss\n\
                   # a.c\ndirect_cache_hit\nlocal_storage_hit\n# b.c\npreprocessed_cache_hit\n";
        assert_eq!(parse_stats(log), Stats { hits: 2, misses: 1 });
    }
}
