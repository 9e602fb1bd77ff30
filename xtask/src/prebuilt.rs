//! `qemu --kernel-image FILE`: boots a kernel that was not built here (Debian's, the host's
//! own, a colleague's) with our initramfs. The file's arch and release are read from the file
//! itself and checked against `--arch` before qemu starts. What the boot asks of the kernel
//! (`--share`: 9p and the board's virtio transport) comes from its modules, when it has them as
//! modules: they are taken from `--modules-dir` (default `/lib/modules/RELEASE`, where the
//! host's own kernel keeps them) with their dependencies, packed as a layer after the busybox
//! initramfs, and loaded by init (`teeny.modules=` on the kernel command line).

mod identify;
mod modules;

use crate::ctx::{Ctx, sha256_hex};
use crate::initramfs::Compression;
use crate::kernel::{Kernel, OptionSet};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
pub use identify::identify;

/// The prebuilt kernel at `image`, with the modules that `sets` need from `modules_dir`.
pub fn kernel(ctx: &Ctx, image: &Utf8Path, modules_dir: Option<&Utf8Path>, sets: &[OptionSet]) -> Result<Kernel> {
    let image = crate::ctx::absolute(image.to_owned())?;
    let bytes = fs::read(&image).context("--kernel-image")?;
    let id = identify(&bytes).map_err(|what| anyhow::anyhow!("{image} is not a kernel: it is {what}"))?;
    if id.arch != ctx.arch {
        bail!(
            "{image} is a kernel for {} ({}), not for {}: add --arch {}",
            id.arch.name,
            id.kind,
            ctx.arch.name,
            id.arch.name
        );
    }
    eprintln!("{image}: {} {}, release {}", id.arch.name, id.kind, id.release);
    let obj = ctx.build.join("prebuilt").join(&id.release);
    if !ctx.dry_run {
        fs::create_dir_all(&obj)?;
    }
    let wanted: Vec<&str> = sets.iter().flat_map(|s| s.modules.iter().copied()).collect();
    let (layer, load) = match wanted.is_empty() {
        true => (None, Vec::new()),
        false => {
            let dir = modules_folder(modules_dir, &id.release)?;
            let (layer, load) = modules_layer(&dir, &id.release, &wanted, &obj, ctx.dry_run)?;
            (Some(layer), load)
        }
    };
    let append = match load.is_empty() {
        true => Vec::new(),
        false => vec![format!("teeny.modules={}", load.join(","))],
    };
    Ok(Kernel {
        config: image.file_name().unwrap_or("kernel-image").to_owned(),
        arch: ctx.arch,
        obj,
        boot_image: image.clone(),
        vmlinux: image.clone(),
        release: id.release,
        image,
        qemu_args: Vec::new(),
        append,
        initramfs: Compression::Gzip,
        virtio: ctx.arch.virtio,
        modules: layer,
        unsaved: Vec::new(),
    })
}

/// The modules of `release`: `dir` itself, or `dir/RELEASE` (for `--modules-dir /lib/modules`);
/// by default `/lib/modules/RELEASE`.
fn modules_folder(dir: Option<&Utf8Path>, release: &str) -> Result<Utf8PathBuf> {
    let Some(dir) = dir else {
        let host = Utf8Path::new("/lib/modules").join(release);
        if !host.join("modules.dep").is_file() {
            bail!(
                "the kernel {release} needs modules for this boot, and {host} has none: give them with --modules-dir DIR"
            );
        }
        return Ok(host);
    };
    let dir = crate::ctx::absolute(dir.to_owned())?;
    for candidate in [dir.clone(), dir.join(release)] {
        if candidate.join("modules.dep").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "--modules-dir {dir}: no modules.dep there or in {dir}/{release} (the modules of {release}, after `make modules_install` or `depmod`)"
    )
}

/// Packs the module files `wanted` need (and `modules.dep` for them) from `dir` as a layer in
/// `obj`; returns it and the modules init is to load. A dry run writes nothing.
fn modules_layer(
    dir: &Utf8Path,
    release: &str,
    wanted: &[&str],
    obj: &Utf8Path,
    dry_run: bool,
) -> Result<(Utf8PathBuf, Vec<String>)> {
    let dep = fs::read_to_string(dir.join("modules.dep"))?;
    let builtin = fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let deps = modules::Deps::parse(&dep, &builtin);
    let (files, load) = deps.closure(wanted, release).with_context(|| format!("modules from {dir}"))?;
    let key = sha256_hex(&wanted.iter().map(|w| w.as_bytes()).collect::<Vec<_>>());
    let layer = obj.join(format!("teeny-modules-{}.cpio.gz", &key[..12]));
    if dry_run {
        eprintln!("dry run: would write {layer} ({} modules from {dir}; init loads {})", files.len(), load.join(", "));
        return Ok((layer, load));
    }
    // A staging tree of just these modules, packed as `make modules_install` output is.
    let root = obj.join("teeny-modules");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let modules = root.join("lib/modules").join(release);
    fs::create_dir_all(&modules)?;
    for file in &files {
        let dest = modules.join(file);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(dir.join(file), &dest)?;
    }
    fs::write(modules.join("modules.dep"), deps.subset(&files))?;
    let (count, bytes) = crate::initramfs::write_modules(&root, &layer, Compression::Gzip)?;
    eprintln!("{layer} ({bytes} bytes, {count} modules from {dir}; init loads {})", load.join(", "));
    Ok((layer, load))
}
