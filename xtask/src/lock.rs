//! Build-folder locks: one `cargo xtask` builds in a folder at a time; a lock whose holder died
//! is taken over, and one held when a signal ends the run is released.

use crate::engine::Engine;
use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// Takes the lock of a build folder (`DIR.lock` beside it), waiting while another `cargo xtask`
/// holds it. The kernel drops a lock whose holder died; its containers (of `engine`) are
/// stopped here, so that they cannot race with this build.
pub fn take(engine: Option<Engine>, dir: &Utf8Path) -> Result<Lock> {
    let path = Utf8PathBuf::from(format!("{dir}.lock"));
    fs_err::create_dir_all(path.parent().unwrap())?;
    let file = fs_err::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    let holder = || fs_err::read_to_string(&path).unwrap_or_default().trim().to_owned();
    // SAFETY: flock on a descriptor we own.
    let flock = |op| unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(file.file()), op) };
    if flock(libc::LOCK_EX | libc::LOCK_NB) != 0 {
        eprintln!("waiting for {dir}: another cargo xtask builds there ({})", holder());
        if flock(libc::LOCK_EX) != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {path}"));
        }
    }
    // A holder that let go empties the file; text left behind means it died holding the lock.
    let stale = holder();
    if !stale.is_empty() {
        eprintln!("note: taking over the lock of {dir} from a process that ended without releasing it ({stale})");
        if let (Some(engine), Some(pid)) = (engine, stale.split_whitespace().nth(1)) {
            engine.stop_containers_of(pid);
        }
    }
    let me = format!("pid {} {}", std::process::id(), std::env::args().collect::<Vec<_>>().join(" "));
    file.set_len(0)?;
    std::os::unix::fs::FileExt::write_all_at(file.file(), me.as_bytes(), 0)?;
    held().push(std::os::fd::AsRawFd::as_raw_fd(file.file()));
    Ok(Lock { file })
}

/// A held build-folder lock; released (and its file emptied) on drop.
pub struct Lock {
    file: fs_err::File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Under the registry's lock, so that `release_locks` never empties a closed descriptor.
        let mut held = held();
        held.retain(|&fd| fd != std::os::fd::AsRawFd::as_raw_fd(self.file.file()));
        let _ = self.file.set_len(0);
    }
}

/// The descriptors of the locks this process holds.
fn held() -> std::sync::MutexGuard<'static, Vec<std::os::fd::RawFd>> {
    static HELD: std::sync::Mutex<Vec<std::os::fd::RawFd>> = std::sync::Mutex::new(Vec::new());
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Empties the files of every lock this process holds, as their drops would: for the signal
/// handler, which exits without running them. A lock file left with its holder's line would
/// make the next build take it for one of a process that died, and stop containers for it.
pub fn release_locks() {
    for &fd in held().iter() {
        // SAFETY: ftruncate on a descriptor that a live `Lock` owns (its drop removes it first).
        unsafe { libc::ftruncate(fd, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_lock_file_is_emptied_by_its_drop_and_by_release_locks() {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-lock-{}", std::process::id()));
        let obj = dir.join("obj/linux-x");
        let holder = || fs_err::read_to_string(format!("{obj}.lock")).unwrap();
        let lock = take(None, &obj).unwrap();
        assert!(holder().starts_with(&format!("pid {} ", std::process::id())), "{}", holder());
        let fd = lock.file.file().as_raw_fd();
        assert!(held().contains(&fd));
        // What the signal handler does before it exits: the lock is still held, its file empty.
        release_locks();
        assert_eq!(holder(), "");
        drop(lock);
        assert!(!held().contains(&fd), "a dropped lock stays in the registry");
        let lock = take(None, &obj).unwrap();
        assert!(!holder().is_empty());
        drop(lock);
        assert_eq!(holder(), "");
        fs_err::remove_dir_all(&dir).unwrap();
    }
}
