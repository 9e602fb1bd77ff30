//! Step 1b: the Debian builder image, built from `docker/Dockerfile`.
//!
//! The tag carries a hash of the docker/ folder (the Dockerfile and the files it copies), so an
//! unchanged image is never rebuilt and an edited one is rebuilt on the next command that needs it.

use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::step::Step;
use anyhow::{Context, Result};
use fs_err as fs;

/// The builder image's tag for docker/ as it is now (no engine needed): names and contents of
/// its files, in name order.
pub fn tag(ctx: &Ctx) -> Result<String> {
    let mut files: Vec<_> =
        fs::read_dir(ctx.root.join("docker"))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    let mut parts = Vec::new();
    for path in files {
        parts.push(path.file_name().unwrap_or_default().as_encoded_bytes().to_vec());
        parts.push(fs::read(&path)?);
    }
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(format!("teeny-linux-builder:{}", &crate::ctx::sha256_hex(&parts)[..12]))
}

/// What builds run in, for up-to-date checks: the image tag, or `host` with --runner host.
pub fn identity(ctx: &Ctx) -> Result<String> {
    match ctx.runner_kind.engine() {
        Some(_) => tag(ctx),
        None => Ok("host".to_owned()),
    }
}

/// Makes sure the builder image exists for this Dockerfile; returns its tag. The build is a
/// step like the others: its command, one live status line, the full output in
/// build/logs/builder-image.log (`-v` streams it).
pub fn ensure(ctx: &Ctx, engine: Engine) -> Result<String> {
    engine.check()?;
    let dockerfile = ctx.root.join("docker/Dockerfile");
    let tag = tag(ctx)?;
    if engine.has_image(&tag)? {
        return Ok(tag);
    }
    // The image knows its own tag, so that distcc workers can say which one they run.
    let argv = engine.build_argv(&tag, &[("TEENY_TAG", &tag)], &dockerfile, &ctx.root.join("docker"));
    let step = Step { argv, ..Step::new(&ctx.root, &[]) }.log("builder-image");
    crate::runner::Runner::new(None, ctx.build.join("logs"), ctx.verbose, ctx.dry_run)
        .run(&step)
        .with_context(|| format!("building the builder image from {dockerfile} failed"))?;
    Ok(tag)
}
