//! What a kernel file is, from its bytes alone: the architecture (the arch table's boot-image
//! magic, or an ELF vmlinux's machine) and the release (a bzImage's version string, or the
//! `Linux version` banner every kernel carries). Pure, so every case is unit-tested.

use crate::arch::{ARCHES, Arch};
use std::io::Read;

/// A kernel file, identified.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    pub arch: &'static Arch,
    /// `uname -r` in the guest: what `/lib/modules/RELEASE` is named by.
    pub release: String,
    /// For people: `bzImage`, `Image`, `gzip-compressed Image`, `ELF vmlinux`.
    pub kind: String,
}

/// A compressed image is unpacked to read its banner; no kernel is bigger than this.
const MAX_UNPACKED: u64 = 512 << 20;

/// Identifies a kernel file, or says what the file is instead.
pub fn identify(bytes: &[u8]) -> Result<Identity, String> {
    if crate::elf::is_elf(bytes) {
        let machine = crate::elf::Elf::parse(bytes).map_err(|e| format!("a damaged ELF file ({e})"))?.machine;
        let Some(arch) = ARCHES.iter().find(|a| a.elf_machine == machine) else {
            return Err(format!("an ELF file for machine {machine}, which no --arch builds"));
        };
        let release = banner_release(bytes)
            .ok_or_else(|| format!("an ELF file for {} with no Linux banner: not a vmlinux", arch.name))?;
        return Ok(Identity { arch, release, kind: "ELF vmlinux".into() });
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut unpacked = Vec::new();
        let read = flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED).read_to_end(&mut unpacked);
        if read.is_err() {
            return Err("gzip data that does not unpack".into());
        }
        return match identify(&unpacked) {
            Ok(inner) => Ok(Identity { kind: format!("gzip-compressed {}", inner.kind), ..inner }),
            Err(what) => Err(format!("{what}, gzip-compressed")),
        };
    }
    let Some(arch) =
        ARCHES.iter().find(|a| a.image_magic.is_some_and(|(at, magic)| bytes.get(at..at + magic.len()) == Some(magic)))
    else {
        return Err(describe(bytes));
    };
    let kind = arch.image.rsplit('/').next().unwrap_or(arch.image).to_owned();
    let release = setup_header_release(bytes).or_else(|| banner_release(bytes));
    match release {
        Some(release) => Ok(Identity { arch, release, kind }),
        None => Err(format!("a {} {kind} whose release does not show (a compressed kernel inside?)", arch.name)),
    }
}

/// x86's boot protocol: the setup header's `kernel_version` (at 0x20e) points, from 0x200, at
/// a string that starts with the release.
fn setup_header_release(bytes: &[u8]) -> Option<String> {
    if bytes.get(0x202..0x206) != Some(b"HdrS") {
        return None;
    }
    let offset = u16::from_le_bytes(bytes.get(0x20e..0x210)?.try_into().ok()?) as usize;
    first_word(bytes.get(0x200 + offset..)?)
}

/// The release after `Linux version ` (the kernel's banner, in every uncompressed kernel).
fn banner_release(bytes: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let at = bytes.windows(BANNER.len()).position(|w| w == BANNER)?;
    first_word(&bytes[at + BANNER.len()..])
}

/// The printable word at the start of `bytes`.
fn first_word(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| !b.is_ascii_graphic()).unwrap_or(bytes.len().min(64));
    (end > 0).then(|| String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// What a file that is not a kernel looks like, for the error message.
fn describe(bytes: &[u8]) -> String {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if bytes.is_empty() {
        "an empty file".into()
    } else if starts(b"070701") || starts(b"070702") {
        "a cpio archive (an initramfs?)".into()
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z']) {
        "xz-compressed data".into()
    } else if starts(b"MZ") && bytes.get(4..8) == Some(b"zimg") {
        "an EFI zboot image: give qemu the Image inside it".into()
    } else if bytes.iter().take(512).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        "a text file".into()
    } else {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("not a kernel this tool knows (it starts with {})", head.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage's first bytes: the setup header's magic and a version string.
    fn bzimage(version: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        b[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        b
    }

    /// A boot image of `arch`: the table's magic where it says (0x38 in arm64's and riscv64's
    /// Image, 0x24 in armhf's zImage, 0x10008 in s390's bzImage), then the banner.
    fn image(arch: &str, release: &str) -> Vec<u8> {
        let (at, magic) = crate::arch::parse(arch).unwrap().image_magic.unwrap();
        let mut b = vec![0u8; (at + magic.len()).max(0x100)];
        b[at..at + magic.len()].copy_from_slice(magic);
        b.extend(format!("Linux version {release} (gcc) #1 SMP\n").bytes());
        b
    }

    #[test]
    fn a_bzimage_says_its_release_in_its_setup_header() {
        let id = identify(&bzimage("6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP")).unwrap();
        assert_eq!((id.arch.name, id.release.as_str(), id.kind.as_str()), ("x86_64", "6.1.0-28-amd64", "bzImage"));
    }

    #[test]
    fn every_boot_image_with_a_magic_says_its_arch_and_its_banners_release() {
        // Every arch whose boot image has a magic (ppc64le boots an ELF vmlinux, below).
        for arch in ARCHES.iter().filter(|a| a.image_magic.is_some()) {
            let id = identify(&image(arch.name, "6.12.16")).unwrap();
            assert_eq!((id.arch, id.release.as_str(), id.kind.as_str()), (arch, "6.12.16", arch.image_name()));
        }
    }

    #[test]
    fn a_gzip_compressed_image_is_looked_into() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image("arm64", "6.1.0-28-arm64")).unwrap();
        let id = identify(&gz.finish().unwrap()).unwrap();
        assert_eq!((id.arch.name, id.kind.as_str()), ("arm64", "gzip-compressed Image"));
    }

    #[test]
    fn an_elf_vmlinux_says_its_machine() {
        let mut elf = crate::elf::image::image(crate::elf::image::LE64, 243, &[], &[]);
        elf.extend(b"Linux version 6.12.16 (x) #1\n");
        let id = identify(&elf).unwrap();
        assert_eq!((id.arch.name, id.release.as_str()), ("riscv64", "6.12.16"));
        // ppc64le boots its vmlinux; s390x's is big-endian, armhf's 32-bit.
        for (form, machine, arch) in [(2, 21, "ppc64le"), (3, 22, "s390x"), (0, 40, "armhf")] {
            let form = crate::elf::image::FORMS[form];
            let mut elf = crate::elf::image::image(form, machine, &[], &[]);
            elf.extend(b"Linux version 6.1.0 (x) #1\n");
            assert_eq!(identify(&elf).unwrap().arch.name, arch, "{form:?}");
        }
        // A program, not a kernel.
        let busybox = crate::elf::image::image(crate::elf::image::LE64, 62, &[], &[]);
        assert_eq!(identify(&busybox).unwrap_err(), "an ELF file for x86_64 with no Linux banner: not a vmlinux");
    }

    #[test]
    fn other_files_are_named_for_what_they_are() {
        assert_eq!(identify(b"").unwrap_err(), "an empty file");
        assert_eq!(identify(b"070701000000").unwrap_err(), "a cpio archive (an initramfs?)");
        assert_eq!(identify(b"#!/bin/sh\necho hi\n").unwrap_err(), "a text file");
        assert!(identify(&[0u8, 1, 2, 3, 200]).unwrap_err().contains("starts with 00 01 02 03"));
        assert_eq!(identify(b"\x1f\x8b\x08garbage").unwrap_err(), "gzip data that does not unpack");
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"070701000000").unwrap();
        assert_eq!(identify(&gz.finish().unwrap()).unwrap_err(), "a cpio archive (an initramfs?), gzip-compressed");
    }
}
