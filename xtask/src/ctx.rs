//! Where things live: the global settings every step shares, as plain data.

use crate::arch::Arch;
use crate::runner::{Runner, RunnerKind};
use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use std::cell::OnceCell;

/// The global flags, as clap parsed them.
pub struct Settings {
    pub arch: &'static Arch,
    pub build: Option<Utf8PathBuf>,
    pub jobs: usize,
    pub runner: RunnerKind,
    pub kernel: KernelChoice,
    pub toolchain: crate::toolchain::Toolchain,
    pub busybox_source: Option<Utf8PathBuf>,
    pub kernel_configs: Option<Utf8PathBuf>,
    pub ccache_dir: Option<Utf8PathBuf>,
    pub no_ccache: bool,
    pub distcc: Vec<crate::distcc::worker::Worker>,
    pub verbose: bool,
}

/// Settings shared by every command: the global flags after clap and the environment. Plain
/// data: what needs the container engine or the disk is done by `prepare`, when a command asks.
#[derive(Clone)]
pub struct Ctx {
    /// What is built and booted; it names the build folders and picks the kernel configs.
    pub arch: &'static Arch,
    pub root: Utf8PathBuf,
    pub build: Utf8PathBuf,
    pub jobs: usize,
    pub runner_kind: RunnerKind,
    /// The kernel source: `--kernel-source`'s or a pin of `sources.txt`, as `--kernel-version` chose.
    pub kernel: KernelChoice,
    /// The kernel's compiler (`--toolchain`).
    pub toolchain: crate::toolchain::Toolchain,
    pub busybox_source: Option<Utf8PathBuf>,
    pub kernel_configs: Option<Utf8PathBuf>,
    /// The compiler cache shared by every build, or None with --no-ccache.
    pub ccache: Option<Utf8PathBuf>,
    /// The distcc workers of `--distcc`, and those of them that passed the check (once run).
    pub distcc: Vec<crate::distcc::worker::Worker>,
    pub distcc_checked: OnceCell<Vec<crate::distcc::worker::Worker>>,
    pub verbose: bool,
    /// The runner, once `prepare::runner` made it.
    pub runner: RunnerSlot,
}

/// Where the prepared runner is kept; a copy of a Ctx (another arch) prepares its own.
#[derive(Default)]
pub struct RunnerSlot(pub OnceCell<Runner>);

impl Clone for RunnerSlot {
    fn clone(&self) -> RunnerSlot {
        RunnerSlot::default()
    }
}

impl Ctx {
    pub fn new(s: Settings) -> Result<Ctx> {
        let root = repo_root();
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
            kernel: s.kernel,
            toolchain: s.toolchain,
            busybox_source: s.busybox_source.map(absolute).transpose()?,
            kernel_configs: s.kernel_configs.map(absolute).transpose()?,
            ccache,
            distcc: s.distcc,
            distcc_checked: OnceCell::new(),
            verbose: s.verbose,
            runner: RunnerSlot::default(),
        })
    }

    /// The same settings for another architecture (bench measures several in one run).
    pub fn with_arch(&self, arch: &'static Arch) -> Ctx {
        Ctx { arch, ..self.clone() }
    }

    pub fn obj(&self, name: &str) -> Utf8PathBuf {
        self.build.join("obj").join(name)
    }

    /// Takes the lock of a build folder (see [`crate::lock::take`]).
    pub fn lock(&self, dir: &Utf8Path) -> Result<crate::lock::Lock> {
        crate::lock::take(self.runner_kind.engine(), dir)
    }
}

/// The checkout: xtask/ sits in the repository root, no need to search for it.
pub fn repo_root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Which kernel source this command builds (`sources::kernel::choose` makes it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelChoice {
    /// A tarball or tree of `--kernel-source`; None: a pin of `sources.txt`.
    pub local: Option<Utf8PathBuf>,
    /// The pin's version, when a pin was chosen.
    pub pin: Option<String>,
    /// What kernel folder names get after the config's name: None for the default source.
    pub suffix: Option<String>,
    /// `--kernel-version`, checked against the unpacked tree's Makefile.
    pub wanted: Option<String>,
}

/// Paths given by the user are relative to where they typed the command; containers need absolute ones.
pub fn absolute(p: Utf8PathBuf) -> Result<Utf8PathBuf> {
    if p.is_absolute() {
        return Ok(p);
    }
    let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)?;
    Ok(cwd.join(p))
}

pub use crate::disk::write_atomic;

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
