//! Configuring a kernel: the base target, our settings and the kernel's fragments merged,
//! `olddefconfig`, every setting of ours checked (and explained when kconfig dropped it), and
//! `--save`/`--edit` writing an edited .config back into the config file.

use super::make::make;
use super::profile::{KCONFIG_TARGETS, Profile, read};
use crate::ctx::Ctx;
use crate::ctx::write_atomic;
use crate::kconfig::{self, Setting};
use crate::sources::Tree;
use crate::stamp::Stamp;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// The kernel's own fragments named by `#: merge`, as settings.
pub(super) fn bundled(ctx: &Ctx, tree: &Tree, profile: &Profile) -> Result<(Vec<Setting>, Vec<String>)> {
    let (mut settings, mut texts) = (Vec::new(), Vec::new());
    let arch_configs = format!("arch/{}/configs", ctx.arch.srcarch);
    for f in &profile.merge {
        let path = [arch_configs.as_str(), "kernel/configs"]
            .iter()
            .map(|d| tree.dir.join(d).join(f))
            .find(|p| p.is_file())
            .with_context(|| {
                format!("fragment {f} is in neither {arch_configs}/ nor kernel/configs/ of {}", tree.dir)
            })?;
        let text = fs::read_to_string(&path)?;
        settings.extend(kconfig::parse(path.as_str(), &text)?);
        texts.push(text);
    }
    Ok((settings, texts))
}

/// Fails unless the config's base target is one this kernel knows: kconfig's own, or a file
/// of its arch's configs.
pub(super) fn check_base(ctx: &Ctx, tree: &Tree, profile: &Profile) -> Result<()> {
    let arch_configs = tree.dir.join("arch").join(ctx.arch.srcarch).join("configs");
    let known = KCONFIG_TARGETS.contains(&profile.base.as_str()) || arch_configs.join(&profile.base).is_file();
    if !known {
        bail!(
            "base target `{}` is unknown to this kernel: use one of {} or a file in {arch_configs}/",
            profile.base,
            KCONFIG_TARGETS.join(", "),
        );
    }
    Ok(())
}

/// `make BASE`, merge the fragments, `make olddefconfig` in `obj`; returns the resulting .config.
pub(super) fn base_config(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    profile: &Profile,
    ours: &[Setting],
) -> Result<String> {
    check_base(ctx, tree, profile)?;
    fs::create_dir_all(obj)?;
    let runner = crate::prepare::runner(ctx)?;
    runner.run(&make(ctx, tree, obj, &[&profile.base]))?;
    let config = obj.join(".config");
    let (mut settings, _) = bundled(ctx, tree, profile)?;
    settings.extend_from_slice(ours);
    write_atomic(&config, kconfig::merge(&fs::read_to_string(&config)?, &settings).as_bytes())?;
    runner.run(&make(ctx, tree, obj, &["olddefconfig"]))?;
    Ok(fs::read_to_string(&config)?)
}

/// The stamp of an `obj/.config` made from the config file's `text`: it, the tree, the bundled
/// fragments, the configs of ours it merges and make's ARCH= and CROSS_COMPILE=.
pub(super) fn stamp(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, text: &str, profile: &Profile) -> Result<Stamp> {
    let (_, bundled_texts) = bundled(ctx, tree, profile)?;
    let args = super::make::args(ctx);
    let mut inputs: Vec<&[u8]> = vec![text.as_bytes(), tree.dir.as_str().as_bytes(), tree.version.as_bytes()];
    inputs.extend(bundled_texts.iter().map(|t| t.as_bytes()));
    inputs.extend(profile.included.iter().map(|t| t.as_bytes()));
    // ARCH= decides what the base target makes (x86's allnoconfig is 32-bit or 64-bit by it).
    inputs.extend(args.iter().map(|a| a.as_bytes()));
    Ok(Stamp::new(obj.join(".teeny-config-stamp"), &inputs))
}

/// Where `--save` configures the file as it is, to compare the edited `obj/.config` with.
pub(super) fn reference(obj: &Utf8Path) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{obj}.base"))
}

/// Makes `obj/.config` from the config file, unless it did so from the same inputs before and
/// `force` is off (`--configure` forces it: it drops hand edits).
pub(super) fn configure(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    path: &Utf8Path,
    text: &str,
    profile: &Profile,
    force: bool,
) -> Result<()> {
    let (bundled, _) = bundled(ctx, tree, profile)?;
    let stamp = stamp(ctx, tree, obj, text, profile)?;
    // Nothing changed: leave .config alone, so make rebuilds nothing.
    if !force && stamp.fresh(&[&obj.join(".config")]) {
        return Ok(());
    }
    stamp.clear();
    let effective = base_config(ctx, tree, obj, profile, &profile.settings)?;
    // Ours must all hold; the kernel's bundled fragments are not ours to fix: what an arch drops
    // from them (e.g. S390_GUEST from kvm_guest.config) is a warning. One explain.py run for both.
    let mut suspects = kconfig::check(&profile.settings, &effective);
    suspects.extend(kconfig::unmentioned_offs(&profile.settings, &effective));
    let ours_count = suspects.len();
    let ours: Vec<&str> = profile.settings.iter().map(|s| s.symbol.as_str()).collect();
    let theirs: Vec<Setting> = bundled.into_iter().filter(|s| !ours.contains(&s.symbol.as_str())).collect();
    suspects.extend(kconfig::check(&theirs, &effective));
    if !suspects.is_empty() {
        let lines = explain(ctx, tree, obj, &effective, &suspects)?;
        let (errors, warnings) = lines.split_at(ours_count);
        let errors: Vec<String> = errors.iter().filter(|l| !l.is_empty()).map(|l| format!("  {l}")).collect();
        if !errors.is_empty() {
            bail!("{path}: settings that did not take effect after olddefconfig:\n{}", errors.join("\n"));
        }
        for w in warnings.iter().filter(|l| !l.is_empty()) {
            eprintln!("warning: {w} (from {})", profile.merge.join(", "));
        }
    }
    super::unsaved::remember(obj)?;
    stamp.write()?;
    eprintln!("configured {obj}/.config from {path}: all {} settings took effect", profile.settings.len());
    Ok(())
}

/// What kbuild exports that the kernel's Kconfig files read (`source "arch/$(SRCARCH)/Kconfig"`,
/// `$(CC)` in compiler tests): explain.py runs outside make, so it gets them here. The tools
/// get the arch's CROSS_COMPILE prefix, as in kbuild.
fn kbuild_env(arch: &crate::arch::Arch, toolchain: crate::toolchain::Toolchain) -> Vec<(&'static str, String)> {
    let mut env = vec![("ARCH", arch.kernel_arch.to_owned()), ("SRCARCH", arch.srcarch.to_owned())];
    env.extend(toolchain.kbuild_tools(arch.cross_compile()));
    if toolchain.make_args().contains(&"LLVM=1") {
        env.push(("LLVM", "1".to_owned()));
    }
    // The arch's triple, as kbuild derives it from CROSS_COMPILE or SRCARCH: the same for ours.
    if let Some(flags) = toolchain.clang_flags(arch.cross_prefix.trim_end_matches('-')) {
        env.push(("CLANG_FLAGS", flags));
    }
    env.extend([("PAHOLE", "pahole"), ("RUSTC", "rustc"), ("BINDGEN", "bindgen")].map(|(k, v)| (k, v.to_owned())));
    env
}

/// [`kconfig::explain`] for requests on the kernel configured in `obj` (`effective` is its .config).
pub(super) fn explain(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    effective: &str,
    requests: &[Setting],
) -> Result<Vec<String>> {
    // kbuild computes it with `$(CC) --version`; conf wrote the result into .config.
    let cc_version = kconfig::value_of(effective, "CC_VERSION_TEXT").unwrap_or_default();
    let env = kbuild_env(ctx.arch, ctx.toolchain)
        .iter()
        .fold(tree.step(&[]), |s, (k, v)| s.env(k, v))
        .env("KERNELVERSION", &tree.version)
        .env("CC_VERSION_TEXT", cc_version.trim_matches('"'));
    kconfig::explain(ctx, env, "Kconfig", &tree.dir, obj, requests)
}

/// Saves the changes of `obj/.config` into the config file: the user's lines are updated in
/// place and the options changed since are appended, and the result must configure back to
/// exactly `obj/.config`, else the file is left as it was.
pub(super) fn save(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    path: &Utf8Path,
    text: &str,
    profile: &Profile,
) -> Result<()> {
    let config = obj.join(".config");
    let edited = fs::read_to_string(&config).with_context(|| format!("nothing to save: {obj} is not configured"))?;
    // The reference is what the file gives now, configured in a folder of its own so that the
    // edited .config stays as it is.
    let reference = reference(obj);
    eprintln!("saving: 1/3 configuring what {path} gives now, in {reference}, to compare the edit with");
    let configured = base_config(ctx, tree, &reference, profile, &profile.settings)?;
    let mut new_text = text.to_owned();
    if !kconfig::differences(&configured, &edited).is_empty() {
        eprintln!("saving: 2/3 savedefconfig of both, so that only what you changed is saved");
        // savedefconfig writes only the options one can set whose value is not their default:
        // where the two differ is what the user changed, not what follows from it.
        let runner = crate::prepare::runner(ctx)?;
        let mut defconfigs = Vec::new();
        for o in [&reference, obj] {
            runner.run(&make(ctx, tree, o, &["savedefconfig"]))?;
            defconfigs.push(fs::read_to_string(o.join("defconfig"))?);
        }
        new_text = kconfig::update(text, &kconfig::changed(&defconfigs[0], &defconfigs[1]), &edited);
    }
    let result = if new_text == text {
        configured
    } else {
        eprintln!("saving: 3/3 checking that the updated file configures to your .config");
        let profile = read(ctx, path, &new_text)?;
        base_config(ctx, tree, &reference, &profile, &profile.settings)?
    };
    let differ = kconfig::differences(&edited, &result);
    if !differ.is_empty() {
        // Values kconfig does not allow (e.g. a hand edit against a dependency): say why.
        let why = explain(ctx, tree, &reference, &result, &differ)?;
        bail!(
            "{path} not saved: the updated file would not configure to {config}: kconfig does not keep these values:\n  {}",
            why.join("\n  ")
        );
    }
    if new_text == text {
        eprintln!("{path} already gives {config}: nothing to save");
        return super::unsaved::remember(obj);
    }
    write_atomic(path, new_text.as_bytes())?;
    // The file now gives this .config: nothing in it is unsaved.
    super::unsaved::remember(obj)?;
    let changed = kconfig::changed(text, &new_text).len();
    eprintln!("saved {changed} changed setting(s) to {path}, checked: it configures to {config}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::Toolchain;

    #[test]
    fn explain_sees_the_toolchains_compiler_for_the_arch() {
        let riscv = crate::arch::parse("riscv64").unwrap();
        let get = |env: &[(&str, String)], k: &str| env.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
        let gcc = kbuild_env(riscv, Toolchain::Gcc);
        assert_eq!(get(&gcc, "CC"), Some(format!("{}gcc", riscv.cross_compile())));
        assert_eq!((get(&gcc, "LLVM"), get(&gcc, "CLANG_FLAGS")), (None, None));
        let clang = kbuild_env(riscv, Toolchain::Clang);
        assert_eq!((get(&clang, "CC").unwrap(), get(&clang, "LD").unwrap()), ("clang".into(), "ld.lld".into()));
        assert_eq!(get(&clang, "LLVM").as_deref(), Some("1"));
        assert!(get(&clang, "CLANG_FLAGS").unwrap().starts_with("--target=riscv64-linux-gnu "), "{clang:?}");
        assert_eq!(get(&clang, "SRCARCH").as_deref(), Some("riscv"));
    }
}
