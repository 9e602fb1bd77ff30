//! What a command prepares before its first build step, explicitly: paths make can handle, a
//! writable compiler cache, the builder image, and the runner that uses them. `Ctx` stays plain
//! data; a command that runs steps asks for [`runner`] and so says that it may build the image.

use crate::ctx::Ctx;
use crate::engine::Container;
use crate::runner::Runner;
use anyhow::{Result, bail};

/// Fails on a path that kbuild cannot handle (it splits paths at spaces), before anything is
/// written: every command checks this first.
pub fn check_paths(ctx: &Ctx) -> Result<()> {
    let paths = [
        ("build folder", Some(&ctx.build)),
        ("kernel source", ctx.kernel.local.as_ref()),
        ("busybox source", ctx.busybox_source.as_ref()),
    ];
    for (what, path) in paths {
        if let Some(path) = path.filter(|p| p.as_str().contains(char::is_whitespace)) {
            bail!(
                "the {what} {path} contains a space, which the kernel's and busybox's make cannot handle: choose a path without one (e.g. --build-dir)"
            );
        }
    }
    Ok(())
}

/// The runner for build steps: on first use, checks the paths and the compiler cache and makes
/// sure the builder image exists (building it if docker/ changed).
pub fn runner(ctx: &Ctx) -> Result<&Runner> {
    if let Some(r) = ctx.runner.0.get() {
        return Ok(r);
    }
    check_paths(ctx)?;
    // The check writes a probe file; a dry run writes nothing.
    if !ctx.dry_run {
        crate::ccache::check(ctx.ccache.as_deref())?;
    }
    let container = match ctx.runner_kind.engine() {
        None => None,
        Some(engine) => {
            let image = crate::builder::ensure(ctx, engine)?;
            let mut workdirs = vec![ctx.root.clone(), ctx.build.clone()];
            workdirs.extend(ctx.ccache.iter().filter(|c| !c.starts_with(&ctx.build)).cloned());
            Some(Container::new(engine, &image, workdirs))
        }
    };
    Ok(ctx.runner.0.get_or_init(|| Runner::new(container, ctx.build.join("logs"), ctx.verbose, ctx.dry_run)))
}
