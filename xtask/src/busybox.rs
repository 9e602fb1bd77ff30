//! Step 2: a statically linked busybox, from `make defconfig` plus `busybox-configs/busybox.config`
//! (one file for every architecture: what we change is not architecture-specific).

use crate::ctx::{Ctx, write_atomic};
use crate::kconfig;
use crate::sources::{self, Package};
use crate::stamp::Stamp;
use crate::step::Step;
use anyhow::{Context, Result, bail};
use camino::Utf8PathBuf;
use fs_err as fs;

/// Builds and installs busybox unless it is up to date; with `edit`, runs menuconfig first and
/// saves the result back to busybox-configs/. Returns the `_install` folder.
pub fn build(ctx: &Ctx, edit: bool) -> Result<Utf8PathBuf> {
    let fragment_path = ctx.root.join("busybox-configs/busybox.config");
    let fragment_text = fs::read_to_string(&fragment_path)?;
    let mut fragment = kconfig::parse(fragment_path.as_str(), &fragment_text)?;
    // The arch's own lines win over the shared file's.
    fragment.extend(kconfig::parse(&format!("the {} entry of arch.rs", ctx.arch.name), ctx.arch.busybox)?);
    let tree = sources::fetch(ctx, Package::Busybox)?;
    // Per architecture, as in the walk-through (`make O=../obj/busybox-x86`).
    let name = format!("busybox-{}", ctx.arch.dir);
    let obj = ctx.obj(&name);
    let _lock = ctx.lock(&obj)?;
    let install = obj.join("_install");

    let image = crate::builder::identity(ctx)?;
    let cross = ctx.arch.cross_compile_arg();
    // A user's tree changes under us: only make knows whether it is up to date.
    let stamp = tree.id.as_ref().map(|id| {
        let inputs = [&fragment_text, ctx.arch.busybox, id, &image, &cross];
        Stamp::new(obj.join(".teeny-stamp"), &inputs.map(str::as_bytes))
    });
    if !edit
        && let Some(stamp) = &stamp
        && stamp.fresh(&[&install.join("bin/busybox")])
    {
        eprintln!("busybox {} is up to date in {install}", tree.version);
        return Ok(install);
    }
    let runner = crate::prepare::runner(ctx)?;
    let o = format!("O={obj}");
    let step = |args: &[&str]| {
        let argv: Vec<&str> = ["make", o.as_str(), cross.as_str()].into_iter().chain(args.iter().copied()).collect();
        tree.step(&argv).log(&name)
    };
    let merged = obj.join(".teeny-merged.config");
    let stats_log = obj.join(".teeny-ccache-stats.log");
    let compile = || -> Result<Step> { Ok(step(&[&format!("-j{}", crate::distcc::jobs(ctx)?)])) };
    if ctx.dry_run {
        // The steps in order; what runs between them reads what they make, which a dry run does not.
        runner.run(&step(&["defconfig"]))?;
        runner.run(&step(&[&format!("KBUILD_DEFCONFIG={merged}"), "defconfig"]))?;
        if edit {
            runner.run(&step(&["menuconfig"]).interactive())?;
        }
        crate::distcc::compile(ctx, &stats_log, compile()?)?;
        runner.run(&step(&["install"]))?;
        crate::dry::existing(&install.join("bin/busybox"))?;
        return Ok(install);
    }
    if let Some(stamp) = &stamp {
        stamp.clear();
    }
    // busybox's make does not delete what a failed rule half wrote (a generated header cut short
    // by a full disk compiles as a syntax error next time): a build that did not finish is
    // started again from an empty folder (the compiler cache keeps that cheap).
    let unfinished = obj.join(".teeny-unfinished");
    if unfinished.exists() {
        eprintln!("busybox: the last build in {obj} did not finish: building it again from a clean folder");
        fs::remove_dir_all(&obj)?;
    }
    fs::create_dir_all(&obj)?;
    crate::disk::require_space(&obj, 200 * crate::disk::MIB, &format!("building busybox in {obj}"))?;
    fs::write(&unfinished, "")?;
    runner.run(&step(&["defconfig"]))?;
    let base = fs::read_to_string(obj.join(".config"))?;
    // busybox's kconfig has no olddefconfig, but `defconfig` with KBUILD_DEFCONFIG runs
    // `conf -D FILE`: our merged file, with defaults for anything it does not mention.
    write_atomic(&merged, kconfig::merge(&base, &fragment).as_bytes())?;
    runner.run(&step(&[&format!("KBUILD_DEFCONFIG={merged}"), "defconfig"]))?;
    let config = obj.join(".config");
    let configured = fs::read_to_string(&config)?;
    let mismatches = kconfig::check(&fragment, &configured);
    if !mismatches.is_empty() {
        // The top Config.in is in the tree, the ones it sources are generated into obj.
        let top = tree.dir.join("Config.in");
        let lines = kconfig::explain(ctx, tree.step(&[]), top.as_str(), &obj, &obj, &mismatches)?;
        let lines: Vec<String> = lines.iter().filter(|l| !l.is_empty()).map(|l| format!("  {l}")).collect();
        bail!("{fragment_path} asks for settings busybox did not take:\n{}", lines.join("\n"));
    }
    if edit {
        runner.run(&step(&["menuconfig"]).interactive())?;
        // busybox has no savedefconfig: what menuconfig changed against defconfig + fragment.
        let edited = fs::read_to_string(&config)?;
        let text = kconfig::update(&fragment_text, &kconfig::changed(&configured, &edited), &edited);
        if text != fragment_text {
            write_atomic(&fragment_path, text.as_bytes())?;
        }
        eprintln!("saved {} changed setting(s) to {fragment_path}", kconfig::changed(&fragment_text, &text).len());
    }
    crate::distcc::compile(ctx, &stats_log, compile()?)?;
    crate::ccache::stats(&stats_log);
    let binary = obj.join("busybox");
    let bytes = fs::read(&binary)?;
    let elf = crate::elf::check(&binary, &bytes, ctx.arch).context("check CROSS_COMPILE")?;
    if elf.interpreter {
        bail!("{binary} is dynamically linked: set CONFIG_STATIC=y in {fragment_path} (the initramfs has no libc)");
    }
    runner.run(&step(&["install"]))?;
    fs::remove_file(&unfinished)?;
    // Written last: an interrupted build is redone next time.
    if let Some(stamp) = stamp {
        stamp.write()?;
    }
    eprintln!("busybox {} (static) installed in {install}", tree.version);
    Ok(install)
}
