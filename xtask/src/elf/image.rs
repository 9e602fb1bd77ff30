//! Small ELF files for the tests, written field after field in the order the System V gABI
//! lists each structure's fields, not through reader.rs's offsets: a wrong offset there fails.

/// ELFCLASS32 or ELFCLASS64, and ELFDATA2LSB or ELFDATA2MSB.
#[derive(Clone, Copy, Debug)]
pub struct Form {
    pub bits: u8,
    pub big_endian: bool,
}

pub const LE64: Form = Form { bits: 64, big_endian: false };
pub const FORMS: [Form; 4] = [
    Form { bits: 32, big_endian: false },
    Form { bits: 32, big_endian: true },
    LE64,
    Form { bits: 64, big_endian: true },
];

/// A symbol table entry: (name, STT type, section index, value).
pub type Sym<'a> = (&'a str, u8, u16, u64);

/// What a symbol's st_size holds: none of our readers' answers, so that reading it as st_value
/// shows.
const ST_SIZE: u64 = 0x77;

/// An executable for `machine` with program headers of the given types, then (if any symbols are
/// given) a symbol table of the null symbol and `symbols`, its string table, and three section
/// headers: null, .symtab (linked to 2), .strtab.
pub fn image(form: Form, machine: u16, types: &[u32], symbols: &[Sym]) -> Vec<u8> {
    let wide = form.bits == 64;
    let (header, phentsize, shentsize, sym_size) = if wide { (64, 56, 64, 24) } else { (52, 32, 40, 16) };
    let mut strings = vec![0u8];
    let mut names = Vec::new();
    for (name, ..) in symbols {
        names.push(strings.len() as u32);
        strings.extend(name.bytes().chain([0]));
    }
    let phoff = header;
    let symoff = phoff + types.len() * phentsize;
    let symsize = (symbols.len() + 1) * sym_size;
    let stroff = symoff + symsize;
    let shoff = stroff + strings.len();
    let shnum = if symbols.is_empty() { 0 } else { 3 };

    let mut w = Writer { form, bytes: b"\x7fELF".to_vec() };
    // e_ident: EI_CLASS, EI_DATA, EI_VERSION, padding.
    w.bytes.extend([if wide { 2 } else { 1 }, if form.big_endian { 2 } else { 1 }, 1]);
    w.bytes.resize(16, 0);
    w.u16(2); // e_type: ET_EXEC
    w.u16(machine);
    w.u32(1); // e_version
    w.word(0x1000); // e_entry
    w.word(phoff as u64);
    w.word(if shnum == 0 { 0 } else { shoff as u64 });
    w.u32(0); // e_flags
    for half in [header, phentsize, types.len(), shentsize, shnum, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        w.u16(half as u16);
    }
    assert_eq!(w.bytes.len(), header);
    for &t in types {
        w.u32(t); // p_type; the rest (p_flags, p_offset, ...) is zeros.
        w.bytes.resize(w.bytes.len() + phentsize - 4, 0);
    }
    if shnum == 0 {
        return w.bytes;
    }
    w.bytes.resize(symoff + sym_size, 0); // symbol 0 is null
    for (&(_, kind, section, value), name) in symbols.iter().zip(names) {
        w.u32(name);
        if wide {
            w.bytes.extend([kind, 0]); // st_info (STB_LOCAL), st_other
            w.u16(section);
            w.word(value);
            w.word(ST_SIZE);
        } else {
            w.word(value);
            w.word(ST_SIZE);
            w.bytes.extend([kind, 0]);
            w.u16(section);
        }
    }
    w.bytes.extend(&strings);
    for (kind, offset, size, link) in [(0, 0, 0, 0), (2, symoff, symsize, 2), (3, stroff, strings.len(), 0)] {
        w.u32(0); // sh_name
        w.u32(kind);
        w.word(0); // sh_flags
        w.word(0); // sh_addr
        w.word(offset as u64);
        w.word(size as u64);
        w.u32(link);
        w.u32(0); // sh_info
        w.word(0); // sh_addralign
        w.word(if kind == 2 { sym_size as u64 } else { 0 }); // sh_entsize
    }
    assert_eq!(w.bytes.len(), shoff + 3 * shentsize);
    w.bytes
}

/// Appends integers in a form's byte order.
struct Writer {
    form: Form,
    bytes: Vec<u8>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        self.bytes.extend(if self.form.big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    }

    fn u32(&mut self, v: u32) {
        self.bytes.extend(if self.form.big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    }

    /// An address, offset or size: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    fn word(&mut self, v: u64) {
        if self.form.bits == 32 {
            return self.u32(v.try_into().expect("a 32-bit file's word"));
        }
        self.bytes.extend(if self.form.big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    }
}
