//! The ELF header fields we check: what machine a binary runs on, and whether it is static.

use crate::arch::{ARCHES, Arch};
use anyhow::{Result, bail};
use camino::Utf8Path;

/// What we check of an executable.
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    /// e_machine: the architecture it runs on.
    pub machine: u16,
    /// Whether it asks for a program interpreter (PT_INTERP), i.e. needs a dynamic loader. A
    /// static-pie binary has none and is fine.
    pub interpreter: bool,
}

impl Elf {
    /// Reads a 64-bit little-endian ELF header and its program headers (every arch we build).
    pub fn parse(elf: &[u8]) -> Result<Elf> {
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

/// Whether the file starts as every ELF file does.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Parses `bytes` (the contents of `path`) and fails unless it is a binary for `arch`.
pub fn check(path: &Utf8Path, bytes: &[u8], arch: &Arch) -> Result<Elf> {
    let elf = match Elf::parse(bytes) {
        Ok(elf) => elf,
        Err(e) => bail!("{path} is not a binary for {}: {e}", arch.name),
    };
    if elf.machine != arch.elf_machine {
        let other = match ARCHES.iter().find(|a| a.elf_machine == elf.machine) {
            Some(a) => a.name.to_owned(),
            None => format!("ELF machine {}", elf.machine),
        };
        bail!("{path} is a binary for {other}, not {}", arch.name);
    }
    Ok(elf)
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
    fn a_binary_of_another_arch_is_named() {
        let (x86, arm64) = (crate::arch::parse("x86_64").unwrap(), crate::arch::parse("arm64").unwrap());
        let b = elf(&[1]);
        assert!(is_elf(&b) && check("bin/busybox".into(), &b, x86).is_ok());
        let err = check("bin/busybox".into(), &b, arm64).unwrap_err().to_string();
        assert_eq!(err, "bin/busybox is a binary for x86_64, not arm64");
        let err = check("init".into(), b"#!/bin/sh\n", arm64).unwrap_err().to_string();
        assert!(err.starts_with("init is not a binary for arm64"), "{err}");
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        assert!(Elf::parse(b"#!/bin/sh\n").is_err());
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 56 + 2);
        assert!(Elf::parse(&cut).is_err());
    }
}
