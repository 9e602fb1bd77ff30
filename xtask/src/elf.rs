//! The ELF header fields we check (what machine a binary runs on, and whether it is static),
//! and a kernel's function symbols (for the boot profiler), of 32- and 64-bit files in either
//! byte order.

mod reader;
mod symbols;

pub use symbols::{Symbol, code_symbols, symbol_at};

use crate::arch::{ARCHES, Arch};
use anyhow::{Result, bail};
use camino::Utf8Path;
use reader::{E_MACHINE, P_TYPE, Reader};

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
    /// Reads the ELF header and its program headers.
    pub fn parse(bytes: &[u8]) -> Result<Elf> {
        let elf = Reader::new(bytes)?;
        let l = elf.layout;
        let machine = elf.u16(E_MACHINE)?;
        let (phoff, phentsize, phnum) = (elf.word(l.e_phoff)?, elf.u16(l.e_phentsize)?, elf.u16(l.e_phnum)?);
        let mut interpreter = false;
        for i in 0..phnum.into() {
            const PT_INTERP: u32 = 3;
            interpreter |= elf.u32(elf.entry(phoff, i, phentsize.into())? + P_TYPE)? == PT_INTERP;
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

    /// `elf(&[])` with a symbol table of (name, STT type, section, value) and its string table.
    fn with_symbols(symbols: &[(&str, u8, u16, u64)]) -> Vec<u8> {
        let mut b = elf(&[]);
        let mut strings = vec![0u8];
        let mut table = vec![0u8; 24]; // symbol 0 is null
        for (name, kind, section, value) in symbols {
            let mut sym = vec![0u8; 24];
            sym[..4].copy_from_slice(&(strings.len() as u32).to_le_bytes());
            sym[4] = *kind;
            sym[6..8].copy_from_slice(&section.to_le_bytes());
            sym[8..16].copy_from_slice(&value.to_le_bytes());
            table.extend(sym);
            strings.extend(name.bytes().chain([0]));
        }
        let (symoff, stroff) = (b.len(), b.len() + table.len());
        b.extend(&table);
        b.extend(&strings);
        let shoff = b.len();
        // Sections: null, .symtab (linked to 2), .strtab.
        for (kind, offset, size, link) in
            [(0u32, 0, 0, 0u32), (2, symoff, table.len(), 2), (3, stroff, strings.len(), 0)]
        {
            let mut sh = vec![0u8; 64];
            sh[4..8].copy_from_slice(&kind.to_le_bytes());
            sh[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            sh[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            sh[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            b.extend(sh);
        }
        b[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        b
    }

    #[test]
    fn code_symbols_are_sorted_and_an_address_maps_to_its_function() {
        let b = with_symbols(&[
            ("memset", 2, 1, 0x3000),
            ("start_kernel", 2, 1, 0x1000),
            ("$x", 0, 1, 0x1000),
            ("secondary_startup_64", 0, 1, 0x100),
            ("jiffies", 1, 2, 0x2000), // STT_OBJECT: data, not code
            ("start_kernel_label", 0, 1, 0x1000),
            ("L4_START_KERNEL", 0, 0xfff1, 0x10), // SHN_ABS: a number, not code
            ("printk", 2, 0, 0x4000),             // undefined
        ]);
        let symbols = code_symbols(&b).unwrap();
        let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["secondary_startup_64", "start_kernel", "memset"]);
        let at = |a| symbol_at(&symbols, a).map(|s| s.name.as_str());
        assert_eq!(
            (at(0x1000), at(0x2fff), at(0x3004), at(0x50)),
            (Some("start_kernel"), Some("start_kernel"), Some("memset"), None)
        );
        assert!(code_symbols(&elf(&[1])).unwrap_err().to_string().contains("no symbol table"));
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        assert!(Elf::parse(b"#!/bin/sh\n").is_err());
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 56 + 2);
        assert!(Elf::parse(&cut).is_err());
    }
}
