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
pub mod image;

#[cfg(test)]
mod tests {
    use super::image::{FORMS, Form, LE64, image};
    use super::*;

    /// An x86-64 ELF64 little-endian executable with program headers of the given types.
    fn elf(types: &[u32]) -> Vec<u8> {
        image(LE64, 62, types, &[])
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
            let b = image(LE64, arch.elf_machine, &[1], &[]);
            assert_eq!(Elf::parse(&b).unwrap(), Elf { machine: arch.elf_machine, interpreter: false }, "{}", arch.name);
        }
    }

    #[test]
    fn reads_the_machine_and_interpreter_in_every_class_and_byte_order() {
        for form in FORMS {
            // EM_AARCH64, 0x00b7: in the wrong byte order it is 0xb700.
            let dynamic = image(form, 183, &[6, 3, 1, 2], &[]);
            assert_eq!(Elf::parse(&dynamic).unwrap(), Elf { machine: 183, interpreter: true }, "{form:?}");
            let static_pie = image(form, 183, &[6, 1, 2], &[("_start", 2, 1, 0x1000)]);
            assert_eq!(Elf::parse(&static_pie).unwrap(), Elf { machine: 183, interpreter: false }, "{form:?}");
        }
    }

    #[test]
    fn a_binary_of_another_arch_is_named() {
        let (x86, arm64) = (crate::arch::parse("x86_64").unwrap(), crate::arch::parse("arm64").unwrap());
        let b = elf(&[1]);
        assert!(is_elf(&b) && check("bin/busybox".into(), &b, x86).is_ok());
        let err = check("bin/busybox".into(), &b, arm64).unwrap_err().to_string();
        assert_eq!(err, "bin/busybox is a binary for x86_64, not arm64");
        // EM_386 in a 32-bit file, EM_SPARCV9 in a big-endian one: machines we do not build for.
        let i386 = image(Form { bits: 32, big_endian: false }, 3, &[1], &[]);
        let err = check("bin/busybox".into(), &i386, x86).unwrap_err().to_string();
        assert_eq!(err, "bin/busybox is a binary for ELF machine 3, not x86_64");
        let sparc64 = image(Form { bits: 64, big_endian: true }, 43, &[1], &[]);
        let err = check("bin/busybox".into(), &sparc64, arm64).unwrap_err().to_string();
        assert_eq!(err, "bin/busybox is a binary for ELF machine 43, not arm64");
        let err = check("init".into(), b"#!/bin/sh\n", arm64).unwrap_err().to_string();
        assert_eq!(err, "init is not a binary for arm64: not an ELF file");
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        let err = |b: &[u8]| Elf::parse(b).unwrap_err().to_string();
        assert_eq!(err(b"#!/bin/sh\n"), "not an ELF file");
        assert_eq!(err(b"\x7fELF"), "truncated ELF header");
        assert_eq!(err(b"\x7fELF\x03\x01"), "unknown ELF class 3 (neither 32- nor 64-bit)");
        assert_eq!(err(b"\x7fELF\x01\x00"), "unknown ELF byte order 0 (neither little- nor big-endian)");
        assert_eq!(err(&elf(&[1])[..63]), "truncated ELF header");
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 56 + 2);
        assert_eq!(err(&cut), "truncated ELF file: it ends at 0x7a, before the 56 bytes at 0x78");
    }

    /// An image of every kind of table we read, and where its program headers end.
    fn full(form: Form) -> (Vec<u8>, usize) {
        let b = image(form, 183, &[6, 3, 1], &[("start_kernel", 2, 1, 0x1000), ("memset", 2, 1, 0x3000)]);
        (b, if form.bits == 64 { 64 + 3 * 56 } else { 52 + 3 * 32 })
    }

    #[test]
    fn a_cut_file_is_an_error_never_a_panic() {
        for form in FORMS {
            let (b, program_headers_end) = full(form);
            assert!(code_symbols(&b).is_ok(), "{form:?}");
            for n in 0..b.len() {
                let cut = &b[..n];
                assert_eq!(Elf::parse(cut).is_ok(), n >= program_headers_end, "{form:?} cut at {n}");
                // The section headers come last: every cut loses some of them.
                assert!(code_symbols(cut).is_err(), "{form:?} cut at {n}");
            }
        }
    }

    #[test]
    fn garbage_in_any_field_is_never_a_panic() {
        for form in FORMS {
            let (b, _) = full(form);
            for i in 0..b.len() {
                for garbage in [0, 0x80, 0xff] {
                    let mut g = b.clone();
                    g[i] = garbage;
                    let (_, _) = (Elf::parse(&g), code_symbols(&g));
                }
            }
            // Every header field after e_version (offsets, sizes, counts) at its largest.
            let mut g = b.clone();
            g[0x18..(if form.bits == 64 { 64 } else { 52 })].fill(0xff);
            assert!(Elf::parse(&g).unwrap_err().to_string().starts_with("truncated ELF file"), "{form:?}");
            assert!(code_symbols(&g).unwrap_err().to_string().starts_with("truncated ELF file"), "{form:?}");
        }
    }
}
