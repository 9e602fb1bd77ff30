//! Compiling a configured kernel: make through ccache and distcc, modules installed and packed
//! as a layer of their own, the build record; and the kernel a build left, as it boots.

use super::make::make;
use super::profile::Profile;
use super::record;
use crate::arch::Virtio;
use crate::ctx::Ctx;
use crate::ctx::{sha256_hex, write_atomic};
use crate::initramfs::Compression;
use crate::kconfig;
use crate::sources::Tree;
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

pub(super) fn compile(
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
    let kernel = built(ctx, name, obj, profile)?;
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
        toolchain: ctx.toolchain.name().to_owned(),
        compiler: kconfig::value_of(&fs::read_to_string(obj.join(".config"))?, "CC_VERSION_TEXT")
            .map(|v| v.trim_matches('"').to_owned()),
        make: recipe.iter().map(|s| crate::runner::display(&s.argv)).collect(),
        duration_s: start.elapsed().as_secs_f64(),
        vmlinux: record::Artifact::of(&kernel.vmlinux)?,
        bzimage: record::Artifact::of(&kernel.boot_image)?,
        ccache,
        unsaved_changes: kernel.unsaved.clone(),
        warnings: record::warnings(&fs::read_to_string(crate::prepare::runner(ctx)?.log_path(&recipe[2]))?),
    };
    write_atomic(&obj.join(record::FILE), serde_json::to_string_pretty(&record)?.as_bytes())?;
    Ok(kernel)
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
