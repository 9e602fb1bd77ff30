//! Step 1b: the Debian builder image, built from `docker/Dockerfile`.
//!
//! The tag carries a hash of the Dockerfile, so an unchanged file is never rebuilt and an edited
//! one is rebuilt on the next command that needs it.

use crate::ctx::Ctx;
use anyhow::{Context, Result, bail};
use fs_err as fs;

/// The builder image's tag for the Dockerfile as it is now (no engine needed).
pub fn tag(ctx: &Ctx) -> Result<String> {
    let text = fs::read(ctx.root.join("docker/Dockerfile"))?;
    Ok(format!("teeny-linux-builder:{}", &crate::ctx::sha256_hex(&[&text])[..12]))
}

/// What builds run in, for up-to-date checks: the image tag, or `host` with --runner host.
pub fn identity(ctx: &Ctx) -> Result<String> {
    match ctx.runner_kind.engine() {
        Some(_) => tag(ctx),
        None => Ok("host".to_owned()),
    }
}

/// Makes sure the builder image exists for this Dockerfile; returns its tag.
pub fn ensure(ctx: &Ctx, engine: &str) -> Result<String> {
    check_engine(engine)?;
    let dockerfile = ctx.root.join("docker/Dockerfile");
    let tag = tag(ctx)?;
    let sh = xshell::Shell::new()?;
    let id = "{{.Id}}";
    if xshell::cmd!(sh, "{engine} image inspect --format {id} {tag}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        return Ok(tag);
    }
    let context = ctx.root.join("docker");
    eprintln!("$ {engine} build --tag {tag} --file {dockerfile} {context}");
    xshell::cmd!(sh, "{engine} build --tag {tag} --file {dockerfile} {context}")
        .quiet()
        .run()
        .with_context(|| format!("building the builder image from {dockerfile} failed"))?;
    Ok(tag)
}

/// One line saying why the container engine cannot be used, and what to do.
fn check_engine(engine: &str) -> Result<()> {
    let out = match std::process::Command::new(engine).args(["version", "--format", "{{.Server.Version}}"]).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{engine} not found on PATH: install it, or build with your own tools using --runner host")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot run {engine}")),
    };
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("permission denied") {
        bail!(
            "{engine} daemon refuses this user (permission denied): add yourself to the `{engine}` group and log in again, or use --runner host"
        )
    }
    bail!(
        "{engine} daemon is not running ({}): start it (e.g. `sudo systemctl start {engine}`), or use --runner host",
        err.lines().last().unwrap_or("no answer").trim()
    )
}
