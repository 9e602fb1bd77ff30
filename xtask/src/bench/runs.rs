//! A folder per bench run, `build/bench/YYYYMMDD-HHMMSS` (UTC, when it started), for its charts
//! and logs, so that a run never replaces another's; and `build/bench/latest`, a symlink to the
//! newest run that finished.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// The link to the newest finished run.
pub const LATEST: &str = "latest";

/// `YYYYMMDD-HHMMSS` of `unix_s` seconds since 1970 (UTC): sortable as text.
pub fn stamp(unix_s: u64) -> String {
    let [y, mo, d, h, mi, s] = crate::clock::civil(unix_s);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// The stamp of now.
pub fn now() -> String {
    stamp(crate::clock::now_unix())
}

/// Makes a new folder for a run in `bench`: `STAMP`, or `STAMP-2`, `STAMP-3` … when a run that
/// started in the same second has it (made, not just looked for: two runs cannot both get one).
pub fn create(bench: &Utf8Path, stamp: &str) -> Result<Utf8PathBuf> {
    fs::create_dir_all(bench)?;
    for n in 1.. {
        let dir = bench.join(if n == 1 { stamp.to_owned() } else { format!("{stamp}-{n}") });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {dir}")),
        }
    }
    unreachable!()
}

/// Points `bench/latest` at `run`, a folder in `bench`: a new link under a temporary name,
/// renamed over the old one, so that `latest` is always a whole run.
pub fn link_latest(bench: &Utf8Path, run: &Utf8Path) -> Result<Utf8PathBuf> {
    let latest = bench.join(LATEST);
    let target = run.file_name().with_context(|| format!("{run} has no file name"))?;
    crate::disk::remove_stale(bench);
    let tmp = crate::disk::Tmp::beside(&latest);
    std::os::unix::fs::symlink(target, tmp.path())
        .with_context(|| format!("cannot make a symlink {} to {target}", tmp.path()))?;
    fs::rename(tmp.path(), &latest).with_context(|| format!("cannot replace {latest} (a folder, not a link?)"))?;
    tmp.keep();
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_utc_date_and_time() {
        assert_eq!(stamp(0), "19700101-000000");
        // date -u -d @1700000000: Tue Nov 14 22:13:20 UTC 2023
        assert_eq!(stamp(1_700_000_000), "20231114-221320");
        // A leap day, and the last second of a year.
        assert_eq!(stamp(951_782_400), "20000229-000000");
        assert_eq!(stamp(1_735_689_599), "20241231-235959");
        assert!(stamp(1_700_000_000) < stamp(1_700_000_001) && stamp(1_699_999_999) < stamp(1_700_000_000));
    }

    #[test]
    fn each_run_gets_a_folder_and_latest_moves_to_the_newest() {
        let bench =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-runs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&bench);
        let first = create(&bench, "20240101-000000").unwrap();
        fs::write(first.join("bench.svg"), "first").unwrap();
        // A second run in the same second: a folder of its own; the first one's chart stays.
        let second = create(&bench, "20240101-000000").unwrap();
        assert_eq!(second.file_name(), Some("20240101-000000-2"));
        fs::write(second.join("bench.svg"), "second").unwrap();
        assert_eq!(fs::read_to_string(first.join("bench.svg")).unwrap(), "first");
        let latest = link_latest(&bench, &first).unwrap();
        assert_eq!(fs::read_to_string(latest.join("bench.svg")).unwrap(), "first");
        link_latest(&bench, &second).unwrap();
        // A relative link, so that the build folder can move; no temporary name left.
        assert_eq!(fs::read_link(&latest).unwrap().to_str(), Some("20240101-000000-2"));
        assert_eq!(fs::read_to_string(latest.join("bench.svg")).unwrap(), "second");
        let names: Vec<String> =
            fs::read_dir(&bench).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        // A folder where the link goes is not removed, and the error names it.
        fs::remove_file(&latest).unwrap();
        fs::create_dir(&latest).unwrap();
        let err = link_latest(&bench, &second).unwrap_err();
        assert!(format!("{err:#}").contains(&format!("cannot replace {latest}")), "{err:#}");
        assert!(latest.is_dir());
        fs::remove_dir_all(&bench).unwrap();
    }
}
