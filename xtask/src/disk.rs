//! Files on disk: written whole or not at all, temporary names cleaned up (after a failure, and
//! those a killed run left), and free space checked before a step that needs much of it.

use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// `dir/.name.tmp-PID`: hidden, unique per process, on the same filesystem as `path`.
pub fn tmp_sibling(path: &Utf8Path) -> Utf8PathBuf {
    let name = path.file_name().unwrap_or("out");
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// A temporary file or folder, removed on drop unless [`Tmp::keep`] was called.
pub struct Tmp {
    path: Utf8PathBuf,
    kept: bool,
}

impl Tmp {
    /// The temporary sibling of `path` (see [`tmp_sibling`]), removed now if a run of this pid left it.
    pub fn beside(path: &Utf8Path) -> Tmp {
        let tmp = Tmp { path: tmp_sibling(path), kept: false };
        tmp.remove();
        tmp
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// It was renamed into place (or is wanted): do not remove it.
    pub fn keep(mut self) {
        self.kept = true;
    }

    fn remove(&self) {
        let _ = if self.path.is_dir() { std::fs::remove_dir_all(&self.path) } else { std::fs::remove_file(&self.path) };
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if !self.kept {
            self.remove();
        }
    }
}

/// Writes `path` via a temporary sibling and a rename, so an interrupted or failed run never
/// leaves a half-written file where a good one was, nor the temporary file.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, None)
}

/// [`write_atomic`] for a script: executable by everyone, writable by its owner (0755).
pub fn write_executable(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    write_with_mode(path, bytes, Some(0o755))
}

fn write_with_mode(path: &Utf8Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        remove_stale(dir);
    }
    let tmp = Tmp::beside(path);
    fs::write(tmp.path(), bytes)?;
    if let Some(mode) = mode {
        fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    fs::rename(tmp.path(), path)?;
    tmp.keep();
    Ok(())
}

/// The pid of a temporary name `.NAME.tmp-PID`.
fn tmp_pid(name: &str) -> Option<u32> {
    let (_, pid) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    pid.parse().ok()
}

/// Removes the temporary files and folders in `dir` that runs which no longer run left behind
/// (killed, or out of space before they could clean up).
pub fn remove_stale(dir: &Utf8Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(tmp_pid) else { continue };
        if pid == std::process::id() || crate::proc::live_comm(pid).is_some() {
            continue;
        }
        let path = entry.path();
        eprintln!("removing {}, left by a run that ended (pid {pid})", path.display());
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}

/// Bytes free for this user on the filesystem of `dir` (or of its nearest existing parent).
pub fn free_bytes(dir: &Utf8Path) -> Result<u64> {
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(Utf8Path::new("/"));
    let c = std::ffi::CString::new(existing.as_str()).context("a path with a NUL byte")?;
    // SAFETY: statvfs fills the struct we own from a NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("statvfs {existing}"));
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

/// Fails, with the figures, when `dir` has less than `needed` bytes free for `what`.
pub fn require_space(dir: &Utf8Path, needed: u64, what: &str) -> Result<()> {
    let free = free_bytes(dir)?;
    check_space(dir, free, needed, what)
}

fn check_space(dir: &Utf8Path, free: u64, needed: u64, what: &str) -> Result<()> {
    if free < needed {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        bail!(
            "not enough free space for {what}: {dir} has {:.2} GiB free, about {:.1} GiB needed (free some, or use another --build-dir)",
            gib(free),
            gib(needed)
        );
    }
    Ok(())
}

pub const GIB: u64 = 1 << 30;
pub const MIB: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> Utf8PathBuf {
        let dir =
            std::env::temp_dir().join(format!("teeny-disk-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap();
        Utf8PathBuf::try_from(dir).unwrap()
    }

    #[test]
    fn a_failed_write_leaves_neither_the_temporary_nor_a_partial_file() {
        let dir = temp();
        let path = dir.join("sub/missing/out.txt");
        assert!(write_atomic(&path, b"x").is_err());
        write_atomic(&dir.join("good"), b"one").unwrap();
        // Writing a folder's name fails at the rename: the old folder stays, the temporary goes.
        std::fs::create_dir_all(dir.join("taken/inner")).unwrap();
        assert!(write_atomic(&dir.join("taken"), b"two").is_err());
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
        assert_eq!(std::fs::read(dir.join("good")).unwrap(), b"one");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_script_is_written_executable_and_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp();
        let script = dir.join("reproducer");
        write_executable(&script, b"#!/bin/sh\n").unwrap();
        assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o755);
        write_atomic(&dir.join("data"), b"x").unwrap();
        assert_eq!(std::fs::metadata(dir.join("data")).unwrap().permissions().mode() & 0o111, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_runs_are_removed_and_live_ones_kept() {
        let dir = temp();
        // pid 0 is never a process's; our own pid runs.
        let dead = dir.join(".linux-6.1.tmp-0");
        let ours = tmp_sibling(&dir.join("x"));
        let other = dir.join(".notes.tmp");
        std::fs::create_dir_all(dead.join("inner")).unwrap();
        std::fs::write(&ours, "").unwrap();
        std::fs::write(&other, "").unwrap();
        remove_stale(&dir);
        assert!(!dead.exists() && ours.exists() && other.exists());
        drop(Tmp::beside(&dir.join("x")));
        assert!(!ours.exists(), "a Tmp not kept is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_of_temporaries() {
        assert_eq!(tmp_pid(".allnoconfig.config.tmp-1234"), Some(1234));
        assert_eq!(tmp_pid(".busybox-1.37.0.tmp-7"), Some(7));
        assert_eq!(tmp_pid("allnoconfig.config"), None);
        assert_eq!(tmp_pid(".x.tmp-abc"), None);
    }

    #[test]
    fn too_little_space_is_named_with_the_figures() {
        let err = check_space("/b".into(), GIB / 2, 2 * GIB, "unpacking linux").unwrap_err().to_string();
        assert!(err.contains("for unpacking linux: /b has 0.50 GiB free, about 2.0 GiB needed"), "{err}");
        check_space("/b".into(), 3 * GIB, 2 * GIB, "x").unwrap();
        assert!(free_bytes(&temp()).unwrap() > 0);
        assert!(free_bytes("/nonexistent/deeper".into()).unwrap() > 0, "the nearest existing parent");
    }
}
