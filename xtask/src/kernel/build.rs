//! A kernel's build: its make steps, configuring and compiling (make through ccache and
//! distcc), modules installed and packed as a layer of their own, the build record written
//! before and after; and the kernel a build left, as it boots.

use super::Config;
use super::configure::configure;
use super::make::make;
use super::profile::Profile;
use super::record;
use crate::arch::Virtio;
use crate::ctx::{Ctx, sha256_hex};
use crate::initramfs::Compression;
use crate::kconfig;
use crate::sources::Tree;
use crate::step::Step;
use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// A built kernel, with how its config wants to be booted.
pub struct Kernel {
    /// The config it was built from: a variant's (`fast-kunit`), or its base's when that
    /// already had every option; for a kernel not built here, its file's name.
    pub config: String,
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
    /// Hand edits of its `.config` that its config file does not hold (`kernel/unsaved.rs`).
    pub unsaved: Vec<String>,
}

impl Kernel {
    /// The initramfs this kernel boots (see [`crate::initramfs::boot_archive`]).
    pub fn initrd(&self, ctx: &Ctx, no_build: bool) -> Result<Utf8PathBuf> {
        let out = self.obj.join(format!("initramfs-with-modules.{}", self.initramfs.suffix()));
        crate::initramfs::boot_archive(ctx, self.initramfs, self.modules.as_deref().as_slice(), &out, no_build)
    }

    /// The initramfs this kernel boots with one more layer after its modules' (`layer`, stored
    /// as [`Kernel::initramfs`] says), written into its `obj` folder as
    /// `initramfs-with-NAME.cpio[.gz]`.
    pub fn initrd_with(&self, ctx: &Ctx, name: &str, layer: &Utf8Path) -> Result<Utf8PathBuf> {
        let out = self.obj.join(format!("initramfs-with-{name}.{}", self.initramfs.suffix()));
        let layers: Vec<&Utf8Path> = self.modules.as_deref().into_iter().chain([layer]).collect();
        crate::initramfs::boot_archive(ctx, self.initramfs, &layers, &out, false)
    }

    /// Sizes and release, for people.
    pub(super) fn report(&self) -> Result<()> {
        for f in [&self.vmlinux, &self.boot_image] {
            eprintln!("{f} ({} bytes)", fs::metadata(f)?.len());
        }
        eprintln!("kernel release {}", self.release);
        Ok(())
    }
}

/// The make steps of a build, in order: the base target, olddefconfig, and the compile with
/// its `-j` (this machine's jobs and the distcc workers' slots), as the user would type them.
pub(super) fn recipe(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, profile: &Profile) -> Result<[Step; 3]> {
    let jobs = crate::distcc::jobs(ctx)?;
    Ok([
        make(ctx, tree, obj, &[&profile.base]),
        make(ctx, tree, obj, &["olddefconfig"]),
        make(ctx, tree, obj, &[&format!("-j{jobs}")]),
    ])
}

/// Configures and compiles `config` in `obj`, its build record written first as `running`
/// (with its `reproducer`), then as `pass` or `fail`.
pub(super) fn build(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    config: &Config,
    start: std::time::Instant,
) -> Result<Kernel> {
    let recipe = recipe(ctx, tree, obj, config.profile)?;
    let mut record = record::Record::running(record::Start {
        started: crate::clock::iso8601(crate::clock::now_unix()),
        config: config.name.to_owned(),
        arch: ctx.arch.name.to_owned(),
        config_sha256: sha256_hex(&[config.text.as_bytes()]),
        base: config.profile.base.clone(),
        merge: config.profile.merge.clone(),
        source: record::Source { version: tree.version.clone(), sha256: tree.id.clone(), dir: tree.dir.clone() },
        builder_image: crate::prepare::runner(ctx)?.image().unwrap_or("host").to_owned(),
        toolchain: ctx.toolchain.name().to_owned(),
        make: recipe.iter().map(|s| crate::runner::display(&s.argv)).collect(),
    });
    fs::create_dir_all(obj)?;
    record.write(obj)?;
    super::reproducer::write(ctx, obj, config, tree)?;
    let log = crate::prepare::runner(ctx)?.log_path(&recipe[2]);
    let warnings = || fs::read_to_string(&log).ok().map(|l| record::warnings(&l));
    let result = configure(ctx, tree, obj, config.path, config.text, config.profile, false)
        .and_then(|()| compile(ctx, tree, obj, config.name, config.profile, recipe));
    let (kernel, ccache) = match result {
        Ok(built) => built,
        Err(e) => {
            record.fail(&e, start.elapsed().as_secs_f64());
            record.warnings = warnings();
            record.unsaved_changes = super::unsaved::changes(obj);
            if let Err(w) = record.write(obj) {
                eprintln!("warning: {w:#}");
            }
            return Err(e);
        }
    };
    record.status = record::Status::Pass;
    record.compiler = kconfig::value_of(&fs::read_to_string(obj.join(".config"))?, "CC_VERSION_TEXT")
        .map(|v| v.trim_matches('"').to_owned());
    record.duration_s = Some(start.elapsed().as_secs_f64());
    record.vmlinux = Some(record::Artifact::of(&kernel.vmlinux)?);
    record.bzimage = Some(record::Artifact::of(&kernel.boot_image)?);
    record.ccache = ccache;
    record.unsaved_changes = kernel.unsaved.clone();
    record.warnings = warnings();
    record.write(obj)?;
    Ok(kernel)
}

/// Compiles the configured kernel in `obj` (the last step of `recipe`), installs its modules;
/// the kernel and the compile's ccache counts.
fn compile(
    ctx: &Ctx,
    tree: &Tree,
    obj: &Utf8Path,
    name: &str,
    profile: &Profile,
    recipe: [Step; 3],
) -> Result<(Kernel, Option<crate::ccache::Stats>)> {
    super::unsaved::warn("building", &super::unsaved::changes(obj));
    // kbuild deletes the target a failed rule was writing (.DELETE_ON_ERROR), so a build that
    // ran out of space resumes cleanly once there is room; say so before it starts, not deep in it.
    crate::disk::require_space(obj, crate::disk::GIB, &format!("building the kernel in {obj}"))?;
    let stats_log = obj.join(".teeny-ccache-stats.log");
    let [_, _, build] = recipe;
    crate::distcc::compile(ctx, &stats_log, build)?;
    install_modules(ctx, tree, obj, profile)?;
    let kernel = built(ctx, name, obj, profile)?;
    kernel.report()?;
    Ok((kernel, crate::ccache::stats(&stats_log)))
}

/// The modules layer of the kernel in `obj`, stored as its initramfs is.
pub(super) fn modules_layer(obj: &Utf8Path, profile: &Profile) -> Utf8PathBuf {
    obj.join(format!("teeny-modules.{}", profile.initramfs.suffix()))
}

/// With CONFIG_MODULES, `make modules_install` into `obj` (stripped: debug sections would be
/// most of the bytes) and packs the modules as a layer of their own; without, removes a layer
/// left by an earlier build.
pub(super) fn install_modules(ctx: &Ctx, tree: &Tree, obj: &Utf8Path, profile: &Profile) -> Result<()> {
    let layer = modules_layer(obj, profile);
    let _ = fs::remove_file(&layer);
    if !has_modules(obj)? {
        return Ok(());
    }
    let root = modules_root(obj);
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    crate::prepare::runner(ctx)?.run(&modules_install(ctx, tree, obj))?;
    let (count, bytes) = crate::initramfs::write_modules(&root, &layer, profile.initramfs)?;
    eprintln!("{layer} ({bytes} bytes, {count} module{})", if count == 1 { "" } else { "s" });
    Ok(())
}

/// Whether the kernel configured in `obj` has modules (CONFIG_MODULES=y).
pub(super) fn has_modules(obj: &Utf8Path) -> Result<bool> {
    Ok(kconfig::value_of(&fs::read_to_string(obj.join(".config"))?, "MODULES") == Some("y"))
}

fn modules_root(obj: &Utf8Path) -> Utf8PathBuf {
    obj.join("teeny-modules")
}

/// `make modules_install` into `obj/teeny-modules`, stripped.
pub(super) fn modules_install(ctx: &Ctx, tree: &Tree, obj: &Utf8Path) -> Step {
    let root = modules_root(obj);
    make(ctx, tree, obj, &["modules_install", &format!("INSTALL_MOD_PATH={root}"), "INSTALL_MOD_STRIP=1"])
}

/// The kernel of config NAME already built in `obj`, booted as `profile` says.
pub(super) fn built(ctx: &Ctx, name: &str, obj: &Utf8Path, profile: &Profile) -> Result<Kernel> {
    let (boot_image, vmlinux) = (obj.join(ctx.arch.image), obj.join("vmlinux"));
    for f in [&boot_image, &vmlinux] {
        anyhow::ensure!(f.is_file(), "{f} is missing: the kernel in {obj} is not built");
    }
    let release = obj.join("include/config/kernel.release");
    Ok(Kernel {
        config: name.to_owned(),
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
        unsaved: super::unsaved::changes(obj),
    })
}
