//! Where things live, and the runner every step shares.

use crate::runner::{Runner, RunnerKind};
use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use std::cell::OnceCell;

/// Settings shared by every command: the global flags after clap and the environment.
pub struct Ctx {
    pub root: Utf8PathBuf,
    pub build: Utf8PathBuf,
    pub jobs: usize,
    pub runner_kind: RunnerKind,
    pub kernel_source: Option<Utf8PathBuf>,
    pub busybox_source: Option<Utf8PathBuf>,
    pub kernel_configs: Option<Utf8PathBuf>,
    runner: OnceCell<Runner>,
}

impl Ctx {
    pub fn new(
        build: Option<Utf8PathBuf>,
        jobs: usize,
        runner_kind: RunnerKind,
        kernel_source: Option<Utf8PathBuf>,
        busybox_source: Option<Utf8PathBuf>,
        kernel_configs: Option<Utf8PathBuf>,
    ) -> Result<Ctx> {
        // xtask/ sits in the repository root: no need to search for it.
        let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
        let build = absolute(build.unwrap_or_else(|| root.join("build")))?;
        Ok(Ctx {
            root,
            build,
            jobs,
            runner_kind,
            kernel_source: kernel_source.map(absolute).transpose()?,
            busybox_source: busybox_source.map(absolute).transpose()?,
            kernel_configs: kernel_configs.map(absolute).transpose()?,
            runner: OnceCell::new(),
        })
    }

    pub fn obj(&self, name: &str) -> Utf8PathBuf {
        self.build.join("obj").join(name)
    }

    /// The runner, building the builder image on first use.
    pub fn runner(&self) -> Result<&Runner> {
        if let Some(r) = self.runner.get() {
            return Ok(r);
        }
        let runner = match self.runner_kind.engine() {
            None => Runner::host(),
            Some(engine) => {
                let image = crate::builder::ensure(self, engine)?;
                Runner::container(engine, &image, vec![self.root.clone(), self.build.clone()])
            }
        };
        Ok(self.runner.get_or_init(|| runner))
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

/// Writes `path` via a temporary sibling and a rename, so an interrupted run never leaves a
/// half-written file where a good one was.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_sibling(path);
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// `dir/.name.tmp-PID`: hidden, unique per process, on the same filesystem as `path`.
pub fn tmp_sibling(path: &Utf8Path) -> Utf8PathBuf {
    let name = path.file_name().unwrap_or("out");
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

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

/// Removes build outputs; the download cache survives unless `all`.
pub fn clean(ctx: &Ctx, all: bool) -> Result<()> {
    if !ctx.build.exists() {
        return Ok(());
    }
    for entry in fs_err::read_dir(&ctx.build)? {
        let path = Utf8PathBuf::try_from(entry?.path())?;
        if path.file_name() == Some("downloads") && !all {
            continue;
        }
        eprintln!("removing {path}");
        if path.is_dir() { fs_err::remove_dir_all(&path)? } else { fs_err::remove_file(&path)? }
    }
    Ok(())
}
