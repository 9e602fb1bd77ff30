//! An ELF file's fields whatever its class (32- or 64-bit) and byte order: where the fields we
//! read lie in each class, and integers read in the file's byte order.

use anyhow::{Result, bail};

/// Where the fields we read lie in one class's structures (the System V gABI's Elf32_Ehdr,
/// Elf32_Shdr, Elf32_Sym or their Elf64_ twins), as offsets into the structure.
pub struct Layout {
    /// The ELF header's size.
    pub header: usize,
    /// An address, offset or size field's (`Reader::word`).
    pub word: u64,
    pub e_phoff: u64,
    pub e_shoff: u64,
    pub e_phentsize: u64,
    pub e_phnum: u64,
    pub e_shentsize: u64,
    pub e_shnum: u64,
    pub sh_offset: u64,
    pub sh_size: u64,
    pub sh_link: u64,
    /// A symbol's size. Elf32_Sym has st_value and st_size before st_info; Elf64_Sym has them last.
    pub sym_size: u64,
    pub st_value: u64,
    pub st_info: u64,
    pub st_shndx: u64,
}

pub const ELF32: Layout = Layout {
    header: 52,
    word: 4,
    e_phoff: 0x1c,
    e_shoff: 0x20,
    e_phentsize: 0x2a,
    e_phnum: 0x2c,
    e_shentsize: 0x2e,
    e_shnum: 0x30,
    sh_offset: 0x10,
    sh_size: 0x14,
    sh_link: 0x18,
    sym_size: 16,
    st_value: 4,
    st_info: 12,
    st_shndx: 14,
};

pub const ELF64: Layout = Layout {
    header: 64,
    word: 8,
    e_phoff: 0x20,
    e_shoff: 0x28,
    e_phentsize: 0x36,
    e_phnum: 0x38,
    e_shentsize: 0x3a,
    e_shnum: 0x3c,
    sh_offset: 0x18,
    sh_size: 0x20,
    sh_link: 0x28,
    sym_size: 24,
    st_value: 8,
    st_info: 4,
    st_shndx: 6,
};

// The fields at the same offset in both classes.
pub const E_MACHINE: u64 = 0x12;
pub const P_TYPE: u64 = 0;
pub const SH_TYPE: u64 = 4;
pub const ST_NAME: u64 = 0;

/// An ELF file whose identification (magic, class, byte order) and header are there; every read
/// past its end is an error.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pub layout: &'static Layout,
    /// ELFDATA2MSB; else ELFDATA2LSB.
    big_endian: bool,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Reader<'a>> {
        if !bytes.starts_with(b"\x7fELF") {
            bail!("not an ELF file");
        }
        // e_ident[EI_CLASS] and e_ident[EI_DATA].
        let layout = match bytes.get(4) {
            None => bail!("truncated ELF header"),
            Some(1) => &ELF32,
            Some(2) => &ELF64,
            Some(class) => bail!("unknown ELF class {class} (neither 32- nor 64-bit)"),
        };
        let big_endian = match bytes.get(5) {
            None => bail!("truncated ELF header"),
            Some(1) => false,
            Some(2) => true,
            Some(data) => bail!("unknown ELF byte order {data} (neither little- nor big-endian)"),
        };
        if bytes.len() < layout.header {
            bail!("truncated ELF header");
        }
        Ok(Reader { bytes, layout, big_endian })
    }

    /// The `len` bytes at `offset`.
    pub fn bytes(&self, offset: u64, len: u64) -> Result<&'a [u8]> {
        let range =
            offset.checked_add(len).and_then(|end| Some(usize::try_from(offset).ok()?..usize::try_from(end).ok()?));
        match range.and_then(|r| self.bytes.get(r)) {
            Some(bytes) => Ok(bytes),
            None => {
                bail!("truncated ELF file: it ends at {:#x}, before the {len} bytes at {offset:#x}", self.bytes.len())
            }
        }
    }

    /// Where entry `i` of a table of `size`-byte entries at `table` starts, once the whole entry
    /// is known to be in the file (so that its fields' offsets cannot overflow).
    pub fn entry(&self, table: u64, i: u64, size: u64) -> Result<u64> {
        let start = table.saturating_add(i.saturating_mul(size));
        self.bytes(start, size)?;
        Ok(start)
    }

    fn array<const N: usize>(&self, offset: u64) -> Result<[u8; N]> {
        Ok(self.bytes(offset, N as u64)?.try_into()?)
    }

    pub fn u8(&self, offset: u64) -> Result<u8> {
        Ok(self.bytes(offset, 1)?[0])
    }

    pub fn u16(&self, offset: u64) -> Result<u16> {
        let b = self.array(offset)?;
        Ok(if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    pub fn u32(&self, offset: u64) -> Result<u32> {
        let b = self.array(offset)?;
        Ok(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// An address, offset or size: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    pub fn word(&self, offset: u64) -> Result<u64> {
        if self.layout.word == 4 {
            return Ok(self.u32(offset)?.into());
        }
        let b = self.array(offset)?;
        Ok(if self.big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
    }
}
