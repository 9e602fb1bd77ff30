//! Step 2: a statically linked busybox, from `make defconfig` plus `busybox-configs/busybox.config`
//! (one file for every architecture: what we change is not architecture-specific).

use crate::ctx::{Ctx, sha256_hex, write_atomic};
use crate::kconfig;
use crate::sources::{self, Package};
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
    let stamp_path = obj.join(".teeny-stamp");
    let image = crate::builder::identity(ctx)?;
    // A user's tree changes under us: only make knows whether it is up to date.
    let stamp = tree.id.as_ref().map(|id| {
        sha256_hex(&[fragment_text.as_bytes(), ctx.arch.busybox.as_bytes(), id.as_bytes(), image.as_bytes()])
    });
    if !edit
        && install.join("bin/busybox").exists()
        && let Some(stamp) = &stamp
        && fs::read_to_string(&stamp_path).is_ok_and(|s| s == *stamp)
    {
        eprintln!("busybox {} is up to date in {install}", tree.version);
        return Ok(install);
    }
    let _ = fs::remove_file(&stamp_path);
    fs::create_dir_all(&obj)?;
    let runner = ctx.runner()?;
    let o = format!("O={obj}");
    let [arch, cross] = ctx.arch.make_args();
    let step = |args: &[&str]| {
        let argv: Vec<&str> =
            ["make", o.as_str(), arch.as_str(), cross.as_str()].into_iter().chain(args.iter().copied()).collect();
        tree.step(&argv).log(&name)
    };
    runner.run(&step(&["defconfig"]))?;
    let base = fs::read_to_string(obj.join(".config"))?;
    // busybox's kconfig has no olddefconfig, but `defconfig` with KBUILD_DEFCONFIG runs
    // `conf -D FILE`: our merged file, with defaults for anything it does not mention.
    let merged = obj.join(".teeny-merged.config");
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
    let stats_log = obj.join(".teeny-ccache-stats.log");
    runner.run(&crate::ccache::apply(ctx, step(&[&format!("-j{}", ctx.jobs)]), &stats_log)?)?;
    crate::ccache::stats(&stats_log);
    let binary = obj.join("busybox");
    let bytes = fs::read(&binary)?;
    let elf = Elf::parse(&bytes).with_context(|| format!("{binary} is not a 64-bit little-endian ELF file"))?;
    if elf.machine != ctx.arch.elf_machine {
        bail!(
            "{binary} is built for ELF machine {}, not {} ({}): check CROSS_COMPILE",
            elf.machine,
            ctx.arch.name,
            ctx.arch.elf_machine
        );
    }
    if elf.interpreter {
        bail!("{binary} is dynamically linked: set CONFIG_STATIC=y in {fragment_path} (the initramfs has no libc)");
    }
    runner.run(&step(&["install"]))?;
    // Written last: an interrupted build is redone next time.
    if let Some(stamp) = stamp {
        write_atomic(&stamp_path, stamp.as_bytes())?;
    }
    eprintln!("busybox {} (static) installed in {install}", tree.version);
    Ok(install)
}

/// What we check of an executable.
#[derive(Debug, PartialEq, Eq)]
struct Elf {
    /// e_machine: the architecture it runs on.
    machine: u16,
    /// Whether it asks for a program interpreter (PT_INTERP), i.e. needs a dynamic loader. A
    /// static-pie binary has none and is fine.
    interpreter: bool,
}

impl Elf {
    /// Reads a 64-bit little-endian ELF header and its program headers (every arch we build).
    fn parse(elf: &[u8]) -> Result<Elf> {
        let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        // ELFCLASS64, ELFDATA2LSB.
        if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
            bail!("no 64-bit little-endian ELF header");
        }
        let truncated = || anyhow::anyhow!("truncated ELF header");
        let phoff = u64_at(0x20).ok_or_else(truncated)? as usize;
        let phentsize = u16_at(0x36).ok_or_else(truncated)? as usize;
        let phnum = u16_at(0x38).ok_or_else(truncated)? as usize;
        let machine = u16_at(0x12).ok_or_else(truncated)?;
        let mut interpreter = false;
        for i in 0..phnum {
            const PT_INTERP: u32 = 3;
            interpreter |= u32_at(phoff + i * phentsize).ok_or_else(truncated)? == PT_INTERP;
        }
        Ok(Elf { machine, interpreter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal x86-64 ELF64 header followed by program headers of the given types.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn static_and_static_pie_have_no_interpreter() {
        assert!(!Elf::parse(&elf(&[1, 1, 4])).unwrap().interpreter); // LOAD, LOAD, NOTE
        assert!(!Elf::parse(&elf(&[6, 1, 2])).unwrap().interpreter); // static-pie: PHDR, LOAD, DYNAMIC
    }

    #[test]
    fn dynamic_binary_has_an_interpreter() {
        assert!(Elf::parse(&elf(&[6, 3, 1, 2])).unwrap().interpreter);
    }

    #[test]
    fn reads_the_machine_of_every_arch() {
        for arch in crate::arch::ARCHES {
            let mut b = elf(&[1]);
            b[0x12..0x14].copy_from_slice(&arch.elf_machine.to_le_bytes());
            assert_eq!(Elf::parse(&b).unwrap(), Elf { machine: arch.elf_machine, interpreter: false }, "{}", arch.name);
        }
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        assert!(Elf::parse(b"#!/bin/sh\n").is_err());
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 56 + 2);
        assert!(Elf::parse(&cut).is_err());
    }
}
