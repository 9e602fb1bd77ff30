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
    pub dry_run: bool,
    /// This run's command line without the global options (see [`crate::cli::command_words`]).
    pub command: Vec<String>,
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
    /// `--dry-run`: commands are printed, not run; nothing is written (see [`crate::dry`]).
    pub dry_run: bool,
    /// This run's command and its arguments, without the global options: a variant's
    /// `reproducer` repeats it.
    pub command: Vec<String>,
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
            dry_run: s.dry_run,
            command: s.command,
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

    /// The global options that change what a kernel build makes, as words, for a `reproducer`
    /// run in a fresh clone: `--arch`, and `--runner`, `--kernel-source`, `--kernel-configs`
    /// when they are not the defaults (from an option or the environment alike). A path inside
    /// this repository is given relative to it: the clone has it there.
    pub fn build_flags(&self) -> Vec<String> {
        let mut words = vec!["--arch".to_owned(), self.arch.name.to_owned()];
        if self.runner_kind != RunnerKind::Docker {
            let name = clap::ValueEnum::to_possible_value(&self.runner_kind).map(|v| v.get_name().to_owned());
            words.extend(["--runner".to_owned(), name.unwrap_or_default()]);
        }
        if let Some(suffix) = self.toolchain.suffix() {
            words.extend(["--toolchain".to_owned(), suffix.to_owned()]);
        }
        if let Some(version) = &self.kernel.wanted {
            words.extend(["--kernel-version".to_owned(), version.clone()]);
        }
        let paths = [("--kernel-source", &self.kernel.local), ("--kernel-configs", &self.kernel_configs)];
        for (flag, path) in paths {
            if let Some(path) = path {
                let path = path.strip_prefix(&self.root).map_or(path.as_path(), |p| p);
                words.extend([flag.to_owned(), path.to_string()]);
            }
        }
        words
    }

    /// Takes the lock of a build folder (see [`crate::lock::take`]); none in a dry run, which
    /// writes nothing and builds nothing there.
    pub fn lock(&self, dir: &Utf8Path) -> Result<Option<crate::lock::Lock>> {
        match self.dry_run {
            true => Ok(None),
            false => crate::lock::take(self.runner_kind.engine(), dir).map(Some),
        }
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
        if ctx.dry_run {
            eprintln!("dry run: would remove {path}");
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

    fn ctx(runner: RunnerKind, kernel_source: Option<&str>, kernel_configs: Option<&str>) -> Ctx {
        Ctx::new(Settings {
            arch: crate::arch::parse("arm64").unwrap(),
            build: Some("/b".into()),
            jobs: 2,
            runner,
            kernel: KernelChoice { local: kernel_source.map(Utf8PathBuf::from), ..KernelChoice::default() },
            toolchain: crate::toolchain::Toolchain::Gcc,
            busybox_source: Some("/src/busybox".into()),
            kernel_configs: kernel_configs.map(Utf8PathBuf::from),
            ccache_dir: None,
            no_ccache: true,
            distcc: Vec::new(),
            verbose: true,
            dry_run: false,
            command: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn the_build_flags_are_those_that_change_what_a_kernel_build_makes() {
        assert_eq!(ctx(RunnerKind::Docker, None, None).build_flags(), ["--arch", "arm64"]);
        let c = ctx(RunnerKind::Podman, Some("/usr/src/linux.tar.xz"), None);
        assert_eq!(
            c.build_flags(),
            ["--arch", "arm64", "--runner", "podman", "--kernel-source", "/usr/src/linux.tar.xz"]
        );
        // A folder of the repository is where the clone has it.
        let inside = ctx(RunnerKind::Host, None, None).root.join("my-configs");
        let c = ctx(RunnerKind::Host, None, Some(inside.as_str()));
        assert_eq!(c.build_flags(), ["--arch", "arm64", "--runner", "host", "--kernel-configs", "my-configs"]);
        let mut clang = ctx(RunnerKind::Docker, None, None);
        clang.toolchain = crate::toolchain::Toolchain::Clang;
        clang.kernel.wanted = Some("6.12".into());
        assert_eq!(clang.build_flags(), ["--arch", "arm64", "--toolchain", "clang", "--kernel-version", "6.12"]);
    }
}
