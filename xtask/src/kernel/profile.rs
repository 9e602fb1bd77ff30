//! The config-file format: `kernel-configs/ARCH/NAME.config`, its `#:` directives and
//! `CONFIG_…` lines, and which configs there are.

use crate::arch::Virtio;
use crate::ctx::Ctx;
use crate::initramfs::Compression;
use crate::kconfig::{self, Setting};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// A parsed `kernel-configs/ARCH/NAME.config`.
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub base: String,
    /// `#: merge`: the kernel's fragments (`NAME.config`, from the source tree) and configs of
    /// ours (`NAME`); once [`read`] has resolved the latter, only fragments, theirs included.
    pub merge: Vec<String>,
    /// The texts of the configs of ours that `#: merge NAME` names, resolved by [`read`]
    /// (their settings come first in `settings`): inputs of the build.
    pub included: Vec<String>,
    pub description: String,
    /// `#: boot vmlinux`: boot the uncompressed ELF (x86: through its PVH entry) instead of the
    /// arch's boot image (`#: boot image`, the default).
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
pub(super) const KCONFIG_TARGETS: &[&str] =
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
            // `image`: the arch's boot image, also by its file name (bzImage, Image).
            "boot" => match value {
                "vmlinux" => boot_vmlinux = true,
                "image" => boot_vmlinux = false,
                _ if crate::arch::ARCHES.iter().any(|a| a.image_name() == value) => boot_vmlinux = false,
                _ => bail!("{origin}:{}: `#: boot` is vmlinux or image (the arch's boot image), not {value}", i + 1),
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
        included: Vec::new(),
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

pub(super) fn load(ctx: &Ctx, name: &str) -> Result<(Utf8PathBuf, String, Profile)> {
    let path = check_name(ctx, name)?;
    let text = fs::read_to_string(&path)?;
    // A variant's own lines may override its base's (a variant's sets); a user's file may not.
    kconfig::check_conflicts(path.as_str(), &parse_profile(path.as_str(), &text)?.settings)?;
    let profile = read(ctx, &path, &text)?;
    Ok((path, text, profile))
}

/// Parses a config file and resolves its `#: merge NAME` of our configs (a name without
/// `.config`, as `--kernel` takes it, from the same folder): their settings come first and the
/// file's own override them; their kernel fragments are merged too. A circle is an error.
/// The arch's console driver lines come first of all (`console_options` in arch.rs).
pub fn read(ctx: &Ctx, path: &Utf8Path, text: &str) -> Result<Profile> {
    let mut profile = resolve(ctx, path, text, &mut Vec::new())?;
    let console: String = ctx.arch.console_options.iter().map(|l| format!("{l}\n")).collect();
    let mut settings = kconfig::parse(&format!("the {} console (arch.rs)", ctx.arch.name), &console)?;
    settings.retain(|s| !profile.settings.iter().any(|o| o.symbol == s.symbol));
    settings.append(&mut profile.settings);
    profile.settings = settings;
    profile.included.insert(0, console);
    Ok(profile)
}

fn resolve(ctx: &Ctx, path: &Utf8Path, text: &str, chain: &mut Vec<String>) -> Result<Profile> {
    let mut profile = parse_profile(path.as_str(), text)?;
    let (ours, fragments): (Vec<String>, Vec<String>) =
        std::mem::take(&mut profile.merge).into_iter().partition(|m| !m.ends_with(".config"));
    let (mut settings, mut merge, mut included) = (Vec::new(), Vec::new(), Vec::new());
    chain.push(path.to_string());
    for name in ours {
        let other = configs_dir(ctx).join(format!("{name}.config"));
        if chain.contains(&other.to_string()) {
            bail!("{path}: `#: merge {name}` makes a circle: {} -> {other}", chain.join(" -> "));
        }
        let other = check_name(ctx, &name).with_context(|| format!("{path}: `#: merge {name}`"))?;
        let other_text = fs::read_to_string(&other)?;
        kconfig::check_conflicts(other.as_str(), &parse_profile(other.as_str(), &other_text)?.settings)?;
        let p = resolve(ctx, &other, &other_text, chain)?;
        settings.extend(p.settings);
        merge.extend(p.merge);
        included.extend(p.included);
        included.push(other_text);
    }
    chain.pop();
    // The file's own lines override what it merges: drop the merged line of each symbol it sets.
    settings.retain(|s: &Setting| !profile.settings.iter().any(|o| o.symbol == s.symbol));
    settings.append(&mut profile.settings);
    merge.extend(fragments);
    let mut seen = std::collections::HashSet::new();
    merge.retain(|m| seen.insert(m.clone()));
    Ok(Profile { settings, merge, included, ..profile })
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
            // The kernel's fragments end in .config; a config of ours is marked as such.
            let merged = p.merge.iter().map(|m| if m.ends_with(".config") { m.clone() } else { format!("{m} (ours)") });
            let base = std::iter::once(p.base.clone()).chain(merged).collect::<Vec<_>>().join(" + ");
            println!("  {name:<14} {base:<40} {}", p.description);
        }
    }
    Ok(())
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
        assert!(err("#: base a\n#: boot uImage\n").starts_with("k/x.config:2: `#: boot` is vmlinux or image"));
        for image in ["image", crate::arch::ARCHES[0].image_name()] {
            assert!(!parse_profile("f", &format!("#: base a\n#: boot {image}\n")).unwrap().boot_vmlinux);
        }
        assert!(err("CONFIG_TTY=y\n").contains("no `#: base TARGET` line"));
        assert!(err("#: base a\nCONFIG_TTY y\n").starts_with("k/x.config:2:"));
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
