//! Where things live, and the runner every step shares.

use crate::arch::Arch;
use crate::runner::{Runner, RunnerKind};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::cell::OnceCell;

/// The global flags, as clap parsed them.
pub struct Settings {
    pub arch: &'static Arch,
    pub build: Option<Utf8PathBuf>,
    pub jobs: usize,
    pub runner: RunnerKind,
    pub kernel_source: Option<Utf8PathBuf>,
    pub busybox_source: Option<Utf8PathBuf>,
    pub kernel_configs: Option<Utf8PathBuf>,
    pub ccache_dir: Option<Utf8PathBuf>,
    pub no_ccache: bool,
    pub distcc: Vec<crate::distcc::Worker>,
    pub verbose: bool,
}

/// Settings shared by every command: the global flags after clap and the environment.
pub struct Ctx {
    /// What is built and booted; it names the build folders and picks the kernel configs.
    pub arch: &'static Arch,
    pub root: Utf8PathBuf,
    pub build: Utf8PathBuf,
    pub jobs: usize,
    pub runner_kind: RunnerKind,
    pub kernel_source: Option<Utf8PathBuf>,
    pub busybox_source: Option<Utf8PathBuf>,
    pub kernel_configs: Option<Utf8PathBuf>,
    /// The compiler cache shared by every build, or None with --no-ccache.
    pub ccache: Option<Utf8PathBuf>,
    /// The distcc workers of `--distcc`, and those of them that passed the check (once run).
    pub distcc: Vec<crate::distcc::Worker>,
    pub distcc_checked: OnceCell<Vec<crate::distcc::Worker>>,
    pub verbose: bool,
    runner: OnceCell<Runner>,
}

impl Ctx {
    pub fn new(s: Settings) -> Result<Ctx> {
        // xtask/ sits in the repository root: no need to search for it.
        let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
        let build = absolute(s.build.unwrap_or_else(|| root.join("build")))?;
        let ccache = match (s.no_ccache, s.ccache_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(absolute(dir)?),
            (false, None) => Some(build.join("ccache")),
        };
        Ok(Ctx {
            arch: s.arch,
            root,
            build,
            jobs: s.jobs,
            runner_kind: s.runner,
            kernel_source: s.kernel_source.map(absolute).transpose()?,
            busybox_source: s.busybox_source.map(absolute).transpose()?,
            kernel_configs: s.kernel_configs.map(absolute).transpose()?,
            ccache,
            distcc: s.distcc,
            distcc_checked: OnceCell::new(),
            verbose: s.verbose,
            runner: OnceCell::new(),
        })
    }

    /// The same settings for another architecture (bench measures several in one run).
    pub fn with_arch(&self, arch: &'static Arch) -> Ctx {
        Ctx {
            arch,
            root: self.root.clone(),
            build: self.build.clone(),
            jobs: self.jobs,
            runner_kind: self.runner_kind,
            kernel_source: self.kernel_source.clone(),
            busybox_source: self.busybox_source.clone(),
            kernel_configs: self.kernel_configs.clone(),
            ccache: self.ccache.clone(),
            distcc: self.distcc.clone(),
            distcc_checked: self.distcc_checked.clone(),
            verbose: self.verbose,
            runner: OnceCell::new(),
        }
    }

    pub fn obj(&self, name: &str) -> Utf8PathBuf {
        self.build.join("obj").join(name)
    }

    /// The runner, building the builder image on first use.
    pub fn runner(&self) -> Result<&Runner> {
        if let Some(r) = self.runner.get() {
            return Ok(r);
        }
        // Kbuild splits paths at spaces: say so now rather than fail deep inside make.
        let paths = [
            ("build folder", Some(&self.build)),
            ("kernel source", self.kernel_source.as_ref()),
            ("busybox source", self.busybox_source.as_ref()),
        ];
        for (what, path) in paths {
            if let Some(path) = path.filter(|p| p.as_str().contains(char::is_whitespace)) {
                bail!(
                    "the {what} {path} contains a space, which the kernel's and busybox's make cannot handle: choose a path without one (e.g. --build-dir)"
                );
            }
        }
        crate::ccache::check(self.ccache.as_deref())?;
        let container = match self.runner_kind.engine() {
            None => None,
            Some(engine) => {
                let image = crate::builder::ensure(self, engine)?;
                let mut workdirs = vec![self.root.clone(), self.build.clone()];
                workdirs.extend(self.ccache.iter().filter(|c| !c.starts_with(&self.build)).cloned());
                Some(Runner::container(engine, &image, workdirs))
            }
        };
        Ok(self.runner.get_or_init(|| Runner::new(container, self.build.join("logs"), self.verbose)))
    }

    /// Takes the lock of a build folder (`DIR.lock` beside it), waiting while another
    /// `cargo xtask` holds it. The kernel drops a lock whose holder died; its containers are
    /// stopped here, so that they cannot race with this build.
    pub fn lock(&self, dir: &Utf8Path) -> Result<Lock> {
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
            if let (Some(engine), Some(pid)) = (self.runner_kind.engine(), stale.split_whitespace().nth(1)) {
                crate::runner::stop_containers_of(engine, pid);
            }
        }
        let me = format!("pid {} {}", std::process::id(), std::env::args().collect::<Vec<_>>().join(" "));
        file.set_len(0)?;
        std::os::unix::fs::FileExt::write_all_at(file.file(), me.as_bytes(), 0)?;
        held().push(std::os::fd::AsRawFd::as_raw_fd(file.file()));
        Ok(Lock { file })
    }
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

/// Paths given by the user are relative to where they typed the command; containers need absolute ones.
pub fn absolute(p: Utf8PathBuf) -> Result<Utf8PathBuf> {
    if p.is_absolute() {
        return Ok(p);
    }
    let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)?;
    Ok(cwd.join(p))
}

pub use crate::disk::{tmp_sibling, write_atomic};

/// Hex sha256 of some bytes, for stamps and image tags.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes build outputs; the download cache and the compiler cache survive unless `all`.
pub fn clean(ctx: &Ctx, all: bool) -> Result<()> {
    if !ctx.build.exists() {
        return Ok(());
    }
    for entry in fs_err::read_dir(&ctx.build)? {
        let path = Utf8PathBuf::try_from(entry?.path())?;
        if matches!(path.file_name(), Some("downloads" | "ccache")) && !all {
            continue;
        }
        eprintln!("removing {path}");
        if path.is_dir() { fs_err::remove_dir_all(&path)? } else { fs_err::remove_file(&path)? }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_lock_file_is_emptied_by_its_drop_and_by_release_locks() {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-lock-{}", std::process::id()));
        let ctx = Ctx::new(Settings {
            arch: crate::arch::host().unwrap(),
            build: Some(dir.clone()),
            jobs: 1,
            runner: RunnerKind::Host,
            kernel_source: None,
            busybox_source: None,
            kernel_configs: None,
            ccache_dir: None,
            no_ccache: true,
            distcc: Vec::new(),
            verbose: false,
        })
        .unwrap();
        let obj = dir.join("obj/linux-x");
        let holder = || fs_err::read_to_string(format!("{obj}.lock")).unwrap();
        let lock = ctx.lock(&obj).unwrap();
        assert!(holder().starts_with(&format!("pid {} ", std::process::id())), "{}", holder());
        let fd = lock.file.file().as_raw_fd();
        assert!(held().contains(&fd));
        // What the signal handler does before it exits: the lock is still held, its file empty.
        release_locks();
        assert_eq!(holder(), "");
        drop(lock);
        assert!(!held().contains(&fd), "a dropped lock stays in the registry");
        let lock = ctx.lock(&obj).unwrap();
        assert!(!holder().is_empty());
        drop(lock);
        assert_eq!(holder(), "");
        fs_err::remove_dir_all(&dir).unwrap();
    }
}
