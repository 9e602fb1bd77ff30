//! Step 4: kernels from the saved configs in `kernel-configs/ARCH/`, each in its own `O=` folder.
//!
//! A config file names its base make target (`#: base allnoconfig`), the kernel's own fragments it
//! merges (`#: merge kvm_guest.config`) and its own `CONFIG_…` lines. After `olddefconfig` every
//! line of ours must have taken effect: Kconfig silently drops options with unmet dependencies.

use crate::arch::Virtio;
use crate::ctx::{Ctx, sha256_hex, write_atomic};
use crate::initramfs::Compression;
use crate::kconfig::{self, Setting};
use crate::runner::Step;
use crate::sources::{self, Package, Tree};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

mod record;
pub use record::FILE as RECORD;

/// Which configurator `--edit` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Configurator {
    Menuconfig,
    Nconfig,
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

/// A built kernel, with how its config wants to be booted.
pub struct Kernel {
    /// What it was built for, and so how qemu boots it.
    pub arch: &'static crate::arch::Arch,
    /// Its `O=` folder, which also holds its build record (`teeny-build.json`).
    pub obj: Utf8PathBuf,
    /// The arch's boot image: bzImage on x86, Image on arm64 and riscv64.
    pub boot_image: Utf8PathBuf,
    pub vmlinux: Utf8PathBuf,
    pub release: String,
    /// What qemu's `-kernel` gets: the boot image, or vmlinux for an x86 PVH direct boot.
    pub image: Utf8PathBuf,
    pub qemu_args: Vec<String>,
    pub append: Vec<String>,
    pub initramfs: Compression,
    /// How its virtio devices are attached.
    pub virtio: Virtio,
    /// Its modules' archive (`lib/modules/RELEASE/`), booted after the busybox initramfs.
    pub modules: Option<Utf8PathBuf>,
}

impl Kernel {
    /// The initramfs this kernel boots (see [`crate::initramfs::boot_archive`]).
    pub fn initrd(&self, ctx: &Ctx, no_build: bool) -> Result<Utf8PathBuf> {
        crate::initramfs::boot_archive(ctx, self.initramfs, self.modules.as_deref(), &self.obj, no_build)
    }

    /// Sizes and release, for people.
    fn report(&self) -> Result<()> {
        for f in [&self.vmlinux, &self.boot_image] {
            eprintln!("{f} ({} bytes)", fs::metadata(f)?.len());
        }
        eprintln!("kernel release {}", self.release);
        Ok(())
    }
}

/// A parsed `kernel-configs/ARCH/NAME.config`.
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub base: String,
    pub merge: Vec<String>,
    pub description: String,
    /// `#: boot vmlinux`: boot the uncompressed ELF through its PVH entry instead of bzImage.
    pub boot_vmlinux: bool,
    /// `#: qemu ARGS`: qemu arguments this kernel is meant to run with.
    pub qemu: Vec<String>,
    /// `#: append ARGS`: kernel command line arguments it is meant to run with.
    pub append: Vec<String>,
    /// `#: initramfs gzip|none`: the initramfs compression it boots with.
    pub initramfs: Compression,
    /// `#: virtio pci|mmio`: the virtio transport of the board it boots on, if not the arch's.
    pub virtio: Option<Virtio>,
    pub settings: Vec<Setting>,
}

/// Kconfig's own whole-config targets; any other base must be a file in arch/SRCARCH/configs/.
const KCONFIG_TARGETS: &[&str] =
    &["allnoconfig", "allyesconfig", "allmodconfig", "alldefconfig", "defconfig", "tinyconfig", "randconfig"];

/// Parses the directives (`#: key value`) and settings of a config file.
pub fn parse_profile(origin: &str, text: &str) -> Result<Profile> {
    let (mut base, mut merge, mut description) = (None, Vec::new(), String::new());
    let (mut boot_vmlinux, mut qemu, mut append, mut initramfs) = (false, Vec::new(), Vec::new(), Compression::Gzip);
    let mut virtio = None;
    let words = |v: &str| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    for (i, line) in text.lines().enumerate() {
        let Some(directive) = line.strip_prefix("#:") else { continue };
        let (key, value) = directive.trim().split_once(char::is_whitespace).unwrap_or((directive.trim(), ""));
        let value = value.trim();
        if value.is_empty() {
            bail!("{origin}:{}: `#: {key}` needs a value", i + 1);
        }
        match key {
            "base" if base.is_none() => base = Some(value.to_owned()),
            "base" => bail!("{origin}:{}: a second `#: base`", i + 1),
            "merge" => merge.extend(words(value)),
            "description" => description = value.to_owned(),
            "boot" => match value {
                "vmlinux" => boot_vmlinux = true,
                "bzImage" => boot_vmlinux = false,
                _ => bail!("{origin}:{}: `#: boot` is vmlinux or bzImage, not {value}", i + 1),
            },
            "qemu" => qemu.extend(words(value)),
            "append" => append.extend(words(value)),
            "initramfs" => {
                initramfs = clap::ValueEnum::from_str(value, false)
                    .map_err(|_| anyhow::anyhow!("{origin}:{}: `#: initramfs` is gzip or none, not {value}", i + 1))?
            }
            "virtio" => {
                virtio = Some(
                    clap::ValueEnum::from_str(value, false)
                        .map_err(|_| anyhow::anyhow!("{origin}:{}: `#: virtio` is pci or mmio, not {value}", i + 1))?,
                )
            }
            _ => bail!(
                "{origin}:{}: unknown directive `#: {key}` (known: base, merge, description, boot, qemu, append, initramfs, virtio)",
                i + 1
            ),
        }
    }
    let base = base.with_context(|| format!("{origin}: no `#: base TARGET` line (e.g. `#: base allnoconfig`)"))?;
    Ok(Profile {
        base,
        merge,
        description,
        boot_vmlinux,
        qemu,
        append,
        initramfs,
        virtio,
        settings: kconfig::parse(origin, text)?,
    })
}

/// The configs of the chosen arch: `--kernel-configs`, else `kernel-configs/ARCH/`.
fn configs_dir(ctx: &Ctx) -> Utf8PathBuf {
    ctx.kernel_configs.clone().unwrap_or_else(|| shipped_dir(ctx, ctx.arch))
}

fn shipped_dir(ctx: &Ctx, arch: &crate::arch::Arch) -> Utf8PathBuf {
    ctx.root.join("kernel-configs").join(arch.name)
}

/// The config names available for the chosen arch, sorted.
pub fn names(ctx: &Ctx) -> Result<Vec<String>> {
    names_in(&configs_dir(ctx))
}

fn names_in(dir: &Utf8Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_suffix(".config") {
            names.push(n.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Fails unless NAME is one of the configs, listing them.
pub fn check_name(ctx: &Ctx, name: &str) -> Result<Utf8PathBuf> {
    let path = configs_dir(ctx).join(format!("{name}.config"));
    if !path.is_file() {
        let elsewhere: Vec<&str> = crate::arch::ARCHES
            .iter()
            .filter(|a| shipped_dir(ctx, a).join(format!("{name}.config")).is_file())
            .map(|a| a.name)
            .collect();
        let hint = match elsewhere[..] {
            [] => String::new(),
            _ => format!("; `{name}` exists for --arch {}", elsewhere.join(", ")),
        };
        bail!(
            "unknown kernel config `{name}`: choose one of {} (the {} configs in {}){hint}",
            names(ctx)?.join(", "),
            ctx.arch.name,
            configs_dir(ctx)
        );
    }
    Ok(path)
}

fn load(ctx: &Ctx, name: &str) -> Result<(Utf8PathBuf, String, Profile)> {
    let path = check_name(ctx, name)?;
    let text = fs::read_to_string(&path)?;
    let profile = parse_profile(path.as_str(), &text)?;
    // A variant's own lines may override its base's (build_variant); a user's file may not.
    kconfig::check_conflicts(path.as_str(), &profile.settings)?;
    Ok((path, text, profile))
}

/// `cargo xtask kernel --list`: name, base and description of each config, by arch (the chosen
/// one first); with `--kernel-configs`, that folder's only.
pub fn list(ctx: &Ctx) -> Result<()> {
    let others = crate::arch::ARCHES.iter().filter(|a| *a != ctx.arch && ctx.kernel_configs.is_none());
    for (arch, dir) in std::iter::once((ctx.arch, configs_dir(ctx))).chain(others.map(|a| (a, shipped_dir(ctx, a)))) {
        println!("{} ({dir}):", arch.name);
        for name in names_in(&dir)? {
            let path = dir.join(format!("{name}.config"));
            let p = parse_profile(path.as_str(), &fs::read_to_string(&path)?)?;
            let base = std::iter::once(p.base.as_str())
                .chain(p.merge.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" + ");
            println!("  {name:<14} {base:<40} {}", p.description);
        }
    }
    Ok(())
}

/// The kernel's environment for reproducible builds: same inputs, same bzImage.
const REPRODUCIBLE: &[(&str, &str)] = &[
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 1970"),
    ("KBUILD_BUILD_USER", "teeny"),
    ("KBUILD_BUILD_HOST", "teeny-linux"),
    ("KBUILD_BUILD_VERSION", "1"),
];

/// Configures (and, for `Action::Build`, builds) the named kernel.
pub fn run(ctx: &Ctx, name: &str, action: Action) -> Result<Option<Kernel>> {
    let (path, text, profile) = load(ctx, name)?;
    run_profile(ctx, name, &path, &text, &profile, action)
}

/// Configures and builds the named kernel: what `qemu` and `bench` boot.
pub fn build(ctx: &Ctx, name: &str) -> Result<Kernel> {
    Ok(run(ctx, name, Action::Build)?.expect("a build returns a kernel"))
}

/// The kernel last built for NAME (or its variant NAME-VARIANT), without building or checking
/// anything (`qemu --no-build`).
pub fn existing(ctx: &Ctx, name: &str, variant: Option<&str>) -> Result<Kernel> {
    let (name, profile) = match variant {
        None => (name.to_owned(), load(ctx, name)?.2),
        Some(v) => {
            check_name(ctx, name)?;
            let name = format!("{name}-{v}");
            let path = variant_path(ctx, &name);
            let text = fs::read_to_string(&path).with_context(|| format!("--no-build: {name} was never built"))?;
            (name, parse_profile(path.as_str(), &text)?)
        }
    };
    built(ctx, &obj_dir(ctx, &name), &profile)
        .context("--no-build: build it first (the same command without --no-build)")
}

/// The config file of variant NAME-VARIANT, written by [`build_variant`].
fn variant_path(ctx: &Ctx, variant: &str) -> Utf8PathBuf {
    ctx.build.join("kernel-configs").join(ctx.arch.name).join(format!("{variant}.config"))
}

/// The config NAME, parsed.
pub fn profile(ctx: &Ctx, name: &str) -> Result<Profile> {
    Ok(load(ctx, name)?.2)
}

/// Builds NAME with `extra` settings appended, as config `NAME-VARIANT` in its own `O=` folder
/// (the saved config stays as it is): for `qemu --share` and `qemu --gdb`.
pub fn build_variant(ctx: &Ctx, name: &str, variant: &str, extra: &[&str]) -> Result<Kernel> {
    let (_, text, _) = load(ctx, name)?;
    let variant = format!("{name}-{variant}");
    let path = variant_path(ctx, &variant);
    fs::create_dir_all(path.parent().unwrap())?;
    let text = format!("{text}\n# added for this variant\n{}\n", extra.join("\n"));
    write_atomic(&path, text.as_bytes())?;
    let profile = parse_profile(path.as_str(), &text)?;
    Ok(run_profile(ctx, &variant, &path, &text, &profile, Action::Build)?.expect("a build returns a kernel"))
}

fn run_profile(
    ctx: &Ctx,
    name: &str,
    path: &Utf8Path,
    text: &str,
    profile: &Profile,
    action: Action,
) -> Result<Option<Kernel>> {
    let start = std::time::Instant::now();
    let tree = sources::fetch(ctx, Package::Linux)?;
    let obj = obj_dir(ctx, name);
    let _lock = ctx.lock(&obj)?;
    if let Action::Save = action {
        save(ctx, &tree, &obj, path, text, profile)?;
        return Ok(None);
    }
    let inputs = inputs(ctx, &tree, text, profile)?;
    let stamp = obj.join(".teeny-build-stamp");
    // The .config as built goes into the stamp too: a hand edit (scripts/config) not yet saved
    // to the config file is built by make, as before.
    let built_from = |inputs: &str| -> String {
        let config = fs::read(obj.join(".config")).unwrap_or_default();
        format!("{inputs} {}", sha256_hex(&[&config]))
    };
    if let (Action::Build, Some(inputs)) = (&action, &inputs)
        && fs::read_to_string(&stamp).is_ok_and(|s| s == built_from(inputs))
    {
        // An immutable source and unchanged inputs: the kernel in obj is this build's, no make needed.
        let kernel = built(ctx, &obj, profile)?;
        eprintln!("kernel {name} is up to date in {obj}");
        kernel.report()?;
        return Ok(Some(kernel));
    }
    let _ = fs::remove_file(&stamp);
    configure(ctx, &tree, &obj, path, text, profile)?;
    match action {
        Action::Build => {
            let kernel = compile(ctx, &tree, &obj, name, text, profile, start)?;
            if let Some(inputs) = inputs {
                write_atomic(&stamp, built_from(&inputs).as_bytes())?;
            }
            Ok(Some(kernel))
        }
        Action::Configure => Ok(None),
        Action::Edit(tool) => {
            let tool = format!("{tool:?}").to_lowercase();
            let step = make(ctx, &tree, &obj, &[&tool]).interactive();
            crate::prepare::runner(ctx)?.run(&step)?;
            save(ctx, &tree, &obj, path, text, profile)?;
            Ok(None)
        }
        Action::Save => unreachable!("handled above"),
    }
}

/// Everything that goes into a build of an immutable source, hashed (see [`inputs_hash`]).
/// None for a user's source tree, where only make knows what changed.
fn inputs(ctx: &Ctx, tree: &Tree, text: &str, profile: &Profile) -> Result<Option<String>> {
    let Some(source) = &tree.id else { return Ok(None) };
    let (_, fragments) = bundled(ctx, tree, profile)?;
    let image = crate::builder::identity(ctx)?;
    Ok(Some(inputs_hash(text, &fragments, source, &image, &ctx.arch.make_args())))
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

/// The `O=` folder of config NAME for the chosen arch.
fn obj_dir(ctx: &Ctx, name: &str) -> Utf8PathBuf {
    ctx.obj(&format!("linux-{}-{name}", ctx.arch.dir))
}

fn make(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, args: &[&str]) -> Step {
    let o = format!("O={obj}");
    let [arch, cross] = ctx.arch.make_args();
    let argv: Vec<&str> =
        ["make", o.as_str(), arch.as_str(), cross.as_str()].into_iter().chain(args.iter().copied()).collect();
    let step = tree.step(&argv).log(obj.file_name().unwrap_or("linux"));
    REPRODUCIBLE.iter().fold(step, |s, (k, v)| s.env(k, v))
}

/// The kernel's own fragments named by `#: merge`, as settings.
fn bundled(ctx: &Ctx, tree: &Tree, profile: &Profile) -> Result<(Vec<Setting>, Vec<String>)> {
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

/// `make BASE`, merge the fragments, `make olddefconfig` in `obj`; returns the resulting .config.
fn base_config(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, profile: &Profile, ours: &[Setting]) -> Result<String> {
    let arch_configs = tree.dir.join("arch").join(ctx.arch.srcarch).join("configs");
    let known = KCONFIG_TARGETS.contains(&profile.base.as_str()) || arch_configs.join(&profile.base).is_file();
    if !known {
        bail!(
            "base target `{}` is unknown to this kernel: use one of {} or a file in {arch_configs}/",
            profile.base,
            KCONFIG_TARGETS.join(", "),
        );
    }
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

fn configure(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, path: &Utf8Path, text: &str, profile: &Profile) -> Result<()> {
    let (bundled, bundled_texts) = bundled(ctx, tree, profile)?;
    let args = ctx.arch.make_args();
    let mut inputs: Vec<&[u8]> = vec![text.as_bytes(), tree.dir.as_str().as_bytes(), tree.version.as_bytes()];
    inputs.extend(bundled_texts.iter().map(|t| t.as_bytes()));
    // ARCH= decides what the base target makes (x86's allnoconfig is 32-bit or 64-bit by it).
    inputs.extend(args.iter().map(|a| a.as_bytes()));
    let stamp = sha256_hex(&inputs);
    let stamp_path = obj.join(".teeny-config-stamp");
    // Nothing changed: leave .config alone, so make rebuilds nothing.
    if obj.join(".config").is_file() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let _ = fs::remove_file(&stamp_path);
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
    write_atomic(&stamp_path, stamp.as_bytes())?;
    eprintln!("configured {obj}/.config from {path}: all {} settings took effect", profile.settings.len());
    Ok(())
}

/// What kbuild exports that the kernel's Kconfig files read (`source "arch/$(SRCARCH)/Kconfig"`,
/// `$(CC)` in compiler tests): explain.py runs outside make, so it gets them here. The tools
/// get the arch's CROSS_COMPILE prefix, as in kbuild.
fn kbuild_env(arch: &crate::arch::Arch) -> Vec<(&'static str, String)> {
    let cross = arch.cross_compile();
    let mut env = vec![("ARCH", arch.kernel_arch.to_owned()), ("SRCARCH", arch.srcarch.to_owned())];
    env.extend(
        [("CC", "gcc"), ("LD", "ld"), ("NM", "nm"), ("OBJCOPY", "objcopy")].map(|(k, v)| (k, format!("{cross}{v}"))),
    );
    env.extend([("PAHOLE", "pahole"), ("RUSTC", "rustc"), ("BINDGEN", "bindgen")].map(|(k, v)| (k, v.to_owned())));
    env
}

/// [`kconfig::explain`] for requests on the kernel configured in `obj` (`effective` is its .config).
fn explain(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, effective: &str, requests: &[Setting]) -> Result<Vec<String>> {
    // kbuild computes it with `$(CC) --version`; conf wrote the result into .config.
    let cc_version = kconfig::value_of(effective, "CC_VERSION_TEXT").unwrap_or_default();
    let env = kbuild_env(ctx.arch)
        .iter()
        .fold(tree.step(&[]), |s, (k, v)| s.env(k, v))
        .env("KERNELVERSION", &tree.version)
        .env("CC_VERSION_TEXT", cc_version.trim_matches('"'));
    kconfig::explain(ctx, env, "Kconfig", &tree.dir, obj, requests)
}

/// Saves the changes of `obj/.config` into the config file: the user's lines are updated in
/// place and the options changed since are appended, and the result must configure back to
/// exactly `obj/.config`, else the file is left as it was.
fn save(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, path: &Utf8Path, text: &str, profile: &Profile) -> Result<()> {
    let config = obj.join(".config");
    let edited = fs::read_to_string(&config).with_context(|| format!("nothing to save: {obj} is not configured"))?;
    // The reference is what the file gives now, configured in a folder of its own so that the
    // edited .config stays as it is.
    let reference = Utf8PathBuf::from(format!("{obj}.base"));
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
        let profile = parse_profile(path.as_str(), &new_text)?;
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
        return Ok(());
    }
    write_atomic(path, new_text.as_bytes())?;
    let changed = kconfig::changed(text, &new_text).len();
    eprintln!("saved {changed} changed setting(s) to {path}, checked: it configures to {config}");
    Ok(())
}

fn compile(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    name: &str,
    text: &str,
    profile: &Profile,
    start: std::time::Instant,
) -> Result<Kernel> {
    // kbuild deletes the target a failed rule was writing (.DELETE_ON_ERROR), so a build that
    // ran out of space resumes cleanly once there is room; say so before it starts, not deep in it.
    crate::disk::require_space(obj, crate::disk::GIB, &format!("building the kernel in {obj}"))?;
    let stats_log = obj.join(".teeny-ccache-stats.log");
    let build = crate::distcc::compile(ctx, &stats_log, |jobs| make(ctx, tree, obj, &[&format!("-j{jobs}")]))?;
    install_modules(ctx, tree, obj, profile)?;
    let kernel = built(ctx, obj, profile)?;
    kernel.report()?;
    let ccache = crate::ccache::stats(&stats_log);
    let recipe = [make(ctx, tree, obj, &[&profile.base]), make(ctx, tree, obj, &["olddefconfig"]), build];
    let record = record::Record {
        config: name.to_owned(),
        arch: ctx.arch.name.to_owned(),
        config_sha256: sha256_hex(&[text.as_bytes()]),
        base: profile.base.clone(),
        merge: profile.merge.clone(),
        source: record::Source { version: tree.version.clone(), sha256: tree.id.clone(), dir: tree.dir.clone() },
        builder_image: crate::prepare::runner(ctx)?.image().unwrap_or("host").to_owned(),
        gcc: kconfig::value_of(&fs::read_to_string(obj.join(".config"))?, "CC_VERSION_TEXT")
            .map(|v| v.trim_matches('"').to_owned()),
        make: recipe.iter().map(|s| crate::runner::display(&s.argv)).collect(),
        duration_s: start.elapsed().as_secs_f64(),
        vmlinux: record::Artifact::of(&kernel.vmlinux)?,
        bzimage: record::Artifact::of(&kernel.boot_image)?,
        ccache,
        warnings: record::warnings(&fs::read_to_string(crate::prepare::runner(ctx)?.log_path(&recipe[2]))?),
    };
    write_atomic(&obj.join(record::FILE), serde_json::to_string_pretty(&record)?.as_bytes())?;
    Ok(kernel)
}

/// The modules layer of the kernel in `obj`, stored as its initramfs is.
fn modules_layer(obj: &Utf8Path, profile: &Profile) -> Utf8PathBuf {
    obj.join(format!("teeny-modules.{}", profile.initramfs.suffix()))
}

/// With CONFIG_MODULES, `make modules_install` into `obj` (stripped: debug sections would be
/// most of the bytes) and packs the modules as a layer of their own; without, removes a layer
/// left by an earlier build.
fn install_modules(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, profile: &Profile) -> Result<()> {
    let layer = modules_layer(obj, profile);
    let _ = fs::remove_file(&layer);
    if kconfig::value_of(&fs::read_to_string(obj.join(".config"))?, "MODULES") != Some("y") {
        return Ok(());
    }
    let root = obj.join("teeny-modules");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let install = ["modules_install", &format!("INSTALL_MOD_PATH={root}"), "INSTALL_MOD_STRIP=1"];
    crate::prepare::runner(ctx)?.run(&make(ctx, tree, obj, &install))?;
    let (count, bytes) = crate::initramfs::write_modules(&root, &layer, profile.initramfs)?;
    eprintln!("{layer} ({bytes} bytes, {count} module{})", if count == 1 { "" } else { "s" });
    Ok(())
}

/// The kernel already built in `obj`, booted as `profile` says.
fn built(ctx: &Ctx, obj: &Utf8Path, profile: &Profile) -> Result<Kernel> {
    let (boot_image, vmlinux) = (obj.join(ctx.arch.image), obj.join("vmlinux"));
    for f in [&boot_image, &vmlinux] {
        anyhow::ensure!(f.is_file(), "{f} is missing: the kernel in {obj} is not built");
    }
    let release = obj.join("include/config/kernel.release");
    Ok(Kernel {
        arch: ctx.arch,
        obj: obj.to_owned(),
        image: if profile.boot_vmlinux { vmlinux.clone() } else { boot_image.clone() },
        boot_image,
        vmlinux,
        release: fs::read_to_string(&release)?.trim().to_owned(),
        qemu_args: profile.qemu.clone(),
        append: profile.append.clone(),
        initramfs: profile.initramfs,
        virtio: profile.virtio.unwrap_or(ctx.arch.virtio),
        modules: Some(modules_layer(obj, profile)).filter(|l| l.is_file()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_and_settings() {
        let text = "# comment\n#: description small\n#: base alldefconfig\n#: merge kvm_guest.config\nCONFIG_TTY=y\n# CONFIG_NET is not set\n";
        let p = parse_profile("f", text).unwrap();
        assert_eq!(p.base, "alldefconfig");
        assert!(!p.boot_vmlinux && p.qemu.is_empty() && p.append.is_empty());
        let fast = parse_profile(
            "f",
            "#: base tinyconfig\n#: boot vmlinux\n#: qemu -M microvm\n#: append quiet\n#: initramfs none\n",
        )
        .unwrap();
        assert!(fast.boot_vmlinux && fast.initramfs == Compression::None);
        assert_eq!((fast.qemu, fast.append), (vec!["-M".to_owned(), "microvm".to_owned()], vec!["quiet".to_owned()]));
        assert_eq!(p.merge, ["kvm_guest.config"]);
        assert_eq!(p.description, "small");
        let got: Vec<_> = p.settings.iter().map(|s| (s.symbol.as_str(), s.value.as_str())).collect();
        assert_eq!(got, [("TTY", "y"), ("NET", "n")]);
    }

    #[test]
    fn directive_errors_name_file_and_line() {
        let err = |t: &str| parse_profile("k/x.config", t).unwrap_err().to_string();
        assert!(err("#: base a\n#: bsae b\n").starts_with("k/x.config:2: unknown directive `#: bsae`"));
        assert!(err("#: base a\n#: base b\n").starts_with("k/x.config:2: a second"));
        assert!(err("#: base\n").starts_with("k/x.config:1: `#: base` needs a value"));
        assert!(err("#: base a\n#: boot zImage\n").starts_with("k/x.config:2: `#: boot` is vmlinux or bzImage"));
        assert!(err("CONFIG_TTY=y\n").contains("no `#: base TARGET` line"));
        assert!(err("#: base a\nCONFIG_TTY y\n").starts_with("k/x.config:2:"));
    }

    #[test]
    fn every_input_of_a_build_changes_its_hash() {
        let x86 = ["ARCH=x86".to_owned(), "CROSS_COMPILE=".to_owned()];
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
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_shipped_configs_parse() {
        let root = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-configs");
        for arch in crate::arch::ARCHES {
            let dir = root.join(arch.name);
            let names = names_in(&dir).unwrap();
            assert!(names.contains(&"allnoconfig".to_owned()), "{}: {names:?}", arch.name);
            for name in names {
                let path = dir.join(format!("{name}.config"));
                let p = parse_profile(path.as_str(), &std::fs::read_to_string(&path).unwrap()).unwrap();
                assert!(!p.description.is_empty(), "{}/{name}", arch.name);
            }
        }
    }
}
