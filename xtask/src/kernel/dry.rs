//! `--dry-run` of a kernel: the make steps that a build, `--configure`, `--edit` or `--save`
//! would run, in their order and from the same step builders, printed by the dry runner. What
//! runs between them in-process (merging our settings into `.config`, verifying them) reads
//! what they make, so it does not run. A build goes on to the kernel an earlier build left
//! when a later step (qemu) needs only its paths; else it stops, naming what is missing.

use super::build::{built, has_modules, modules_install, recipe};
use super::configure::{check_base, reference, stamp};
use super::make::make;
use super::{Action, Config, Kernel};
use crate::ctx::Ctx;
use crate::dry::needs;
use crate::sources::Tree;
use anyhow::Result;
use camino::Utf8Path;

/// Prints the configure steps of `config` in `obj`, unless its `.config` is made from these
/// inputs already and `force` is off; whether it is.
pub(super) fn configure(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, config: &Config, force: bool) -> Result<bool> {
    if !force && stamp(ctx, tree, obj, config.text, config.profile)?.fresh(&[&obj.join(".config")]) {
        return Ok(true);
    }
    check_base(ctx, tree, config.profile)?;
    let runner = crate::prepare::runner(ctx)?;
    runner.run(&make(ctx, tree, obj, &[&config.profile.base]))?;
    runner.run(&make(ctx, tree, obj, &["olddefconfig"]))?;
    Ok(false)
}

/// What `action` on `config` in `obj` would run, printed; for a build, the kernel to boot.
pub(super) fn run(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, config: &Config, action: Action) -> Result<Option<Kernel>> {
    let dot_config = obj.join(".config");
    match action {
        Action::Configure => configure(ctx, tree, obj, config, true).map(|_| None),
        Action::Save => {
            // --save first configures the file as it is, in a folder of its own, to compare with.
            let reference = reference(obj);
            configure(ctx, tree, &reference, config, true)?;
            Err(needs(&reference.join(".config")))
        }
        Action::Edit(tool) => {
            configure(ctx, tree, obj, config, false)?;
            crate::prepare::runner(ctx)?.run(&make(ctx, tree, obj, &[tool.target()]).interactive())?;
            Err(needs(&dot_config))
        }
        Action::Build => {
            let current = configure(ctx, tree, obj, config, false)?;
            let [_, _, compile] = recipe(ctx, tree, obj, config.profile)?;
            crate::distcc::compile(ctx, &obj.join(".teeny-ccache-stats.log"), compile)?;
            // Whether `modules_install` runs is in the .config this run did not make.
            if !current {
                return Err(needs(&dot_config));
            }
            if has_modules(obj)? {
                crate::prepare::runner(ctx)?.run(&modules_install(ctx, tree, obj))?;
            }
            for path in [obj.join(ctx.arch.image), obj.join("vmlinux")] {
                crate::dry::existing(&path)?;
            }
            built(ctx, config.name, obj, config.profile).map(Some)
        }
    }
}
