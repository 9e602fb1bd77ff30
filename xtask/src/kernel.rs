//! Step 4: kernels from the saved configs in `kernel-configs/ARCH/`, each in its own `O=` folder.
//!
//! A config file names its base make target (`#: base allnoconfig`), the kernel's own fragments it
//! merges (`#: merge kvm_guest.config`) and its own `CONFIG_…` lines. After `olddefconfig` every
//! line of ours must have taken effect: Kconfig silently drops options with unmet dependencies.

use crate::ctx::{Ctx, sha256_hex, write_atomic};
use crate::sources::{self, Package, Tree};
use crate::stamp::Stamp;
use anyhow::{Context, Result};
use camino::Utf8Path;
use fs_err as fs;

mod build;
mod configure;
mod dry;
mod make;
mod profile;
mod record;
mod reproducer;
mod unsaved;
mod variant;
pub use build::Kernel;
use build::built;
use configure::{bundled, configure, save};
use make::{REPRODUCIBLE, args as make_args, obj_dir};
pub use make::{folder, make};
use profile::load;
pub use profile::{Profile, check_name, list};
pub use record::FILE as RECORD;
pub use variant::OptionSet;

/// Which configurator `--edit` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Configurator {
    Menuconfig,
    Nconfig,
}

impl Configurator {
    /// Its make target.
    fn target(self) -> &'static str {
        match self {
            Configurator::Menuconfig => "menuconfig",
            Configurator::Nconfig => "nconfig",
        }
    }
}

/// The `cargo xtask kernel` flags.
#[derive(clap::Args)]
pub struct Options {
    /// The config to build (see --list); ARCH/NAME sets --arch too.
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the configs with their base targets and descriptions.
    #[arg(long, conflicts_with_all = ["configure", "edit", "save"])]
    pub list: bool,
    /// Make .config from the config file (dropping unsaved hand edits, which it names) and verify; do not build.
    #[arg(long, conflicts_with_all = ["edit", "save"])]
    pub configure: bool,
    /// Run a configurator in the builder, then save the changes as kernel-configs/ARCH/NAME.config.
    #[arg(long, num_args = 0..=1, default_missing_value = "menuconfig", conflicts_with = "save")]
    pub edit: Option<Configurator>,
    /// Save the current .config of build/obj/linux-ARCH-NAME (after hand edits) as kernel-configs/ARCH/NAME.config.
    #[arg(long)]
    pub save: bool,
}

/// `cargo xtask kernel`: the list, or the action the flags ask for on the named config.
pub fn command(ctx: &Ctx, opts: &Options) -> Result<()> {
    let Some(name) = &opts.name else { return list(ctx) };
    let action = match (opts.configure, opts.edit, opts.save) {
        _ if opts.list => return list(ctx),
        (true, _, _) => Action::Configure,
        (_, Some(tool), _) => Action::Edit(tool),
        (_, _, true) => Action::Save,
        _ => Action::Build,
    };
    run(ctx, name, action).map(drop)
}

/// What `cargo xtask kernel` does with the named config.
pub enum Action {
    /// Configure, verify and build.
    Build,
    /// Configure and verify only.
    Configure,
    /// Configure, run a configurator, save the result as the config file.
    Edit(Configurator),
    /// Save the current .config of the object folder as the config file (after hand edits).
    Save,
}

/// Configures (and, for `Action::Build`, builds) the named kernel.
pub fn run(ctx: &Ctx, name: &str, action: Action) -> Result<Option<Kernel>> {
    let (path, text, profile) = load(ctx, name)?;
    run_profile(ctx, &Config { name, path: &path, text: &text, profile: &profile, variant_of: None }, action)
}

/// A kernel config as a build takes it: its name, file, text and parsed profile, and for a
/// variant the config it is a variant of.
pub(super) struct Config<'a> {
    pub name: &'a str,
    pub path: &'a Utf8Path,
    pub text: &'a str,
    pub profile: &'a Profile,
    pub variant_of: Option<&'a str>,
}

/// Configures and builds the named kernel: what `qemu` and `bench` boot.
pub fn build(ctx: &Ctx, name: &str) -> Result<Kernel> {
    Ok(run(ctx, name, Action::Build)?.expect("a build returns a kernel"))
}

/// The kernel NAME with the option sets added (none: NAME itself), built; with `no_build`, the
/// one last built, without building or checking anything (`qemu --no-build`).
pub fn variant(ctx: &Ctx, name: &str, sets: &[OptionSet], no_build: bool) -> Result<Kernel> {
    let (path, text, profile) = load(ctx, name)?;
    let variant_name = variant::name(name, sets);
    // The base serves when its .config already has every line of the sets.
    let base_holds = !sets.is_empty() && {
        if !no_build {
            configured(ctx, name, &path, &text, &profile)?;
        }
        fs::read_to_string(obj_dir(ctx, name).join(".config")).is_ok_and(|c| variant::holds(sets, &c))
    };
    if base_holds {
        eprintln!("kernel {name} already has what `{variant_name}` adds: it is the variant");
    }
    let no_build_hint = "--no-build: build it first (the same command without --no-build)";
    if sets.is_empty() || base_holds {
        return match no_build {
            true => built(ctx, name, &obj_dir(ctx, name), &profile)
                .context(no_build_hint)
                .inspect(|k| unsaved::warn("built", &k.unsaved)),
            false => {
                let config = Config { name, path: &path, text: &text, profile: &profile, variant_of: None };
                Ok(run_profile(ctx, &config, Action::Build)?.expect("a build returns a kernel"))
            }
        };
    }
    let path = ctx.build.join("kernel-configs").join(ctx.arch.name).join(format!("{variant_name}.config"));
    if no_build {
        let text = fs::read_to_string(&path).with_context(|| format!("--no-build: {variant_name} was never built"))?;
        let kernel = built(ctx, &variant_name, &obj_dir(ctx, &variant_name), &profile::read(ctx, &path, &text)?)
            .context(no_build_hint)?;
        unsaved::warn("built", &kernel.unsaved);
        return Ok(kernel);
    }
    let text = variant::compose(&text, sets);
    if !ctx.dry_run {
        fs::create_dir_all(path.parent().unwrap())?;
        write_atomic(&path, text.as_bytes())?;
    }
    let profile = profile::read(ctx, &path, &text)?;
    let config = Config { name: &variant_name, path: &path, text: &text, profile: &profile, variant_of: Some(name) };
    Ok(run_profile(ctx, &config, Action::Build)?.expect("a build returns a kernel"))
}

/// The config NAME, parsed.
pub fn profile(ctx: &Ctx, name: &str) -> Result<Profile> {
    Ok(load(ctx, name)?.2)
}

/// Configures NAME in its `O=` folder (nothing to do when its inputs are unchanged).
fn configured(ctx: &Ctx, name: &str, path: &Utf8Path, text: &str, profile: &Profile) -> Result<()> {
    let tree = sources::fetch(ctx, Package::Linux)?;
    let obj = obj_dir(ctx, name);
    let _lock = ctx.lock(&obj)?;
    if ctx.dry_run {
        let config = Config { name, path, text, profile, variant_of: None };
        return match dry::configure(ctx, &tree, &obj, &config, false)? {
            true => Ok(()),
            // What the variant is depends on the .config this run did not make.
            false => Err(crate::dry::needs(&obj.join(".config"))),
        };
    }
    configure(ctx, &tree, &obj, path, text, profile, false)
}

fn run_profile(ctx: &Ctx, config: &Config, action: Action) -> Result<Option<Kernel>> {
    let start = std::time::Instant::now();
    let (name, path, text, profile) = (config.name, config.path, config.text, config.profile);
    let tree = sources::fetch(ctx, Package::Linux)?;
    let obj = obj_dir(ctx, name);
    let _lock = ctx.lock(&obj)?;
    if let Action::Save = action {
        if ctx.dry_run {
            return dry::run(ctx, &tree, &obj, config, action);
        }
        save(ctx, &tree, &obj, path, text, profile)?;
        return Ok(None);
    }
    let inputs = inputs(ctx, &tree, text, profile)?;
    // The .config as built goes into the stamp too: a hand edit (scripts/config) not yet saved
    // to the config file is built by make, as before.
    let stamp = |inputs: &str| {
        let config = fs::read(obj.join(".config")).unwrap_or_default();
        Stamp::new(obj.join(".teeny-build-stamp"), &[inputs.as_bytes(), &config])
    };
    if let (Action::Build, Some(inputs)) = (&action, &inputs)
        && stamp(inputs).fresh(&[])
    {
        // An immutable source and unchanged inputs: the kernel in obj is this build's, no make needed.
        let kernel = built(ctx, name, &obj, profile)?;
        eprintln!("kernel {name} is up to date in {obj}");
        unsaved::warn("built", &kernel.unsaved);
        kernel.report()?;
        return Ok(Some(kernel));
    }
    if ctx.dry_run {
        return dry::run(ctx, &tree, &obj, config, action);
    }
    if let Action::Build = action {
        // Until this build succeeds, nothing is up to date (its record says it failed).
        stamp("").clear();
        let kernel = build::build(ctx, &tree, &obj, config, start)?;
        if let Some(inputs) = inputs {
            stamp(&inputs).write()?;
        }
        return Ok(Some(kernel));
    }
    // --configure makes .config from the file, whatever was edited since.
    let force = matches!(action, Action::Configure);
    let dropped = if force { unsaved::changes(&obj) } else { Vec::new() };
    configure(ctx, &tree, &obj, path, text, profile, force)?;
    if !dropped.is_empty() {
        eprintln!("dropped unsaved changes to .config: {}", dropped.join(", "));
    }
    match action {
        Action::Configure => Ok(None),
        Action::Edit(tool) => {
            let step = make(ctx, &tree, &obj, &[tool.target()]).interactive();
            crate::prepare::runner(ctx)?.run(&step)?;
            save(ctx, &tree, &obj, path, text, profile)?;
            Ok(None)
        }
        Action::Build | Action::Save => unreachable!("handled above"),
    }
}

/// Everything that goes into a build of an immutable source, hashed (see [`inputs_hash`]).
/// None for a user's source tree, where only make knows what changed.
fn inputs(ctx: &Ctx, tree: &Tree, text: &str, profile: &Profile) -> Result<Option<String>> {
    let Some(source) = &tree.id else { return Ok(None) };
    let (_, fragments) = bundled(ctx, tree, profile)?;
    let image = crate::builder::identity(ctx)?;
    let fragments: Vec<String> = fragments.into_iter().chain(profile.included.iter().cloned()).collect();
    Ok(Some(inputs_hash(text, &fragments, source, &image, &make_args(ctx))))
}

/// The config file, the bundled fragments it merges, the source tarball's sha256, the builder
/// image, make's arguments (ARCH, CROSS_COMPILE) and make's environment.
fn inputs_hash(text: &str, fragments: &[String], source: &str, image: &str, args: &[String]) -> String {
    let env: Vec<String> = REPRODUCIBLE.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut parts: Vec<&[u8]> = vec![text.as_bytes(), source.as_bytes(), image.as_bytes()];
    parts.extend(args.iter().map(|a| a.as_bytes()));
    parts.extend(fragments.iter().map(|t| t.as_bytes()));
    parts.extend(env.iter().map(|e| e.as_bytes()));
    sha256_hex(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_of_a_build_changes_its_hash() {
        let arch = crate::arch::parse("x86_64").unwrap();
        let x86 = make::fixed_args(arch, crate::toolchain::Toolchain::Gcc);
        let clang = make::fixed_args(arch, crate::toolchain::Toolchain::Clang);
        let base = inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-a", "builder:1", &x86);
        assert_eq!(base, inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-a", "builder:1", &x86));
        for other in [
            inputs_hash(
                "CONFIG_TTY=y\nCONFIG_PRINTK_TIME=y\n",
                &["CONFIG_VIRTIO=y\n".into()],
                "sha-a",
                "builder:1",
                &x86,
            ),
            inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=m\n".into()], "sha-a", "builder:1", &x86),
            inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-b", "builder:1", &x86),
            inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-a", "builder:2", &x86),
            inputs_hash("CONFIG_TTY=y\n", &[], "sha-a", "builder:1", &x86),
            inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-a", "builder:1", &[]),
            // Another toolchain is never up to date with gcc's build.
            inputs_hash("CONFIG_TTY=y\n", &["CONFIG_VIRTIO=y\n".into()], "sha-a", "builder:1", &clang),
        ] {
            assert_ne!(base, other);
        }
    }
}
