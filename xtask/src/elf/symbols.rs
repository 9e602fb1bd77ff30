//! A kernel's code symbols, from its symbol table (for the boot profiler).

use super::reader::{Reader, SH_TYPE, ST_NAME};
use anyhow::{Result, bail};

/// A function (or assembly entry point) of the symbol table: where it starts, and its name.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Symbol {
    pub addr: u64,
    pub name: String,
}

/// The code symbols of an ELF file (STT_FUNC, and the STT_NOTYPE labels assembly entry points
/// have), sorted by address; at one address, a function wins.
pub fn code_symbols(bytes: &[u8]) -> Result<Vec<Symbol>> {
    let elf = Reader::new(bytes)?;
    let l = elf.layout;
    let (shoff, shentsize, shnum) = (elf.word(l.e_shoff)?, elf.u16(l.e_shentsize)?, elf.u16(l.e_shnum)?);
    // Section header i: (type, offset, size, link).
    let section = |i: u64| -> Result<(u32, u64, u64, u64)> {
        let h = elf.entry(shoff, i, shentsize.into())?;
        Ok((
            elf.u32(h + SH_TYPE)?,
            elf.word(h + l.sh_offset)?,
            elf.word(h + l.sh_size)?,
            elf.u32(h + l.sh_link)?.into(),
        ))
    };
    const SHT_SYMTAB: u32 = 2;
    let symtab = (0..shnum.into()).map(section).find(|s| !matches!(s, Ok((t, ..)) if *t != SHT_SYMTAB));
    let Some(symtab) = symtab else { bail!("no symbol table (a stripped file?)") };
    let (_, offset, size, link) = symtab?;
    let (_, stroff, strsize, _) = section(link)?;
    let strings = elf.bytes(stroff, strsize)?;
    let mut symbols = Vec::new();
    for i in 0..size / l.sym_size {
        let s = elf.entry(offset, i, l.sym_size)?;
        let (kind, shndx, value) = (elf.u8(s + l.st_info)? & 0xf, elf.u16(s + l.st_shndx)?, elf.word(s + l.st_value)?);
        const STT_NOTYPE: u8 = 0;
        const STT_FUNC: u8 = 2;
        // Undefined (0), absolute and the other special sections (0xff00 and up) hold no code.
        if !(kind == STT_FUNC || kind == STT_NOTYPE) || shndx == 0 || shndx >= 0xff00 || value == 0 {
            continue;
        }
        let start = elf.u32(s + ST_NAME)? as usize;
        let name = strings.get(start..).and_then(|s| s.split(|&b| b == 0).next()).unwrap_or_default();
        // Local labels and mapping symbols ($x, $d on arm64) name no function.
        if name.is_empty() || name.starts_with(b".L") || name.starts_with(b"$") {
            continue;
        }
        symbols.push((value, kind != STT_FUNC, String::from_utf8_lossy(name).into_owned()));
    }
    symbols.sort();
    symbols.dedup_by_key(|s| s.0);
    Ok(symbols.into_iter().map(|(addr, _, name)| Symbol { addr, name }).collect())
}

/// The symbol `addr` falls in: the last one that starts at or below it.
pub fn symbol_at(symbols: &[Symbol], addr: u64) -> Option<&Symbol> {
    symbols.partition_point(|s| s.addr <= addr).checked_sub(1).map(|i| &symbols[i])
}

#[cfg(test)]
mod tests {
    use super::super::image::{FORMS, LE64, Sym, image};
    use super::*;

    #[test]
    fn code_symbols_are_sorted_and_an_address_maps_to_its_function() {
        let symbols: &[Sym] = &[
            ("memset", 2, 1, 0x3000),
            ("start_kernel", 2, 1, 0x1000),
            ("$x", 0, 1, 0x1000),
            ("secondary_startup_64", 0, 1, 0x100),
            ("jiffies", 1, 2, 0x2000), // STT_OBJECT: data, not code
            ("start_kernel_label", 0, 1, 0x1000),
            ("L4_START_KERNEL", 0, 0xfff1, 0x10), // SHN_ABS: a number, not code
            ("printk", 2, 0, 0x4000),             // undefined
        ];
        for form in FORMS {
            let symbols = code_symbols(&image(form, 62, &[], symbols)).unwrap();
            let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["secondary_startup_64", "start_kernel", "memset"], "{form:?}");
            let at = |a| symbol_at(&symbols, a).map(|s| s.name.as_str());
            assert_eq!(
                (at(0x1000), at(0x2fff), at(0x3004), at(0x50)),
                (Some("start_kernel"), Some("start_kernel"), Some("memset"), None),
                "{form:?}"
            );
        }
        let err = code_symbols(&image(LE64, 62, &[1], &[])).unwrap_err().to_string();
        assert_eq!(err, "no symbol table (a stripped file?)");
    }

    #[test]
    fn a_kernel_address_fills_the_word() {
        for form in FORMS {
            let high = if form.bits == 32 { 0xc000_8000 } else { 0xffff_ffff_8100_0000 };
            let b = image(form, 62, &[], &[("_text", 0, 1, high), ("start_kernel", 2, 1, high + 0x40)]);
            let expected = [
                Symbol { addr: high, name: "_text".into() },
                Symbol { addr: high + 0x40, name: "start_kernel".into() },
            ];
            assert_eq!(code_symbols(&b).unwrap(), expected, "{form:?}");
        }
    }
}
