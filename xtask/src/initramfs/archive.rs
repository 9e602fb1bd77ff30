//! Builds the initramfs archive in-process: collects directory trees into entries, merges
//! layers, and writes them as a reproducible newc cpio (optionally gzipped) without shelling
//! out to `find | cpio`, whose output depends on the host's cpio, directory order and file owners.

use anyhow::{Context, Result, anyhow, bail};
use camino::{Utf8Path, Utf8PathBuf};
use cpio::newc::ModeFileType;
use flate2::{Compression, GzBuilder};
use fs_err as fs;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;

/// What one archive member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file whose bytes are read from `source` at write time.
    File {
        source: Utf8PathBuf,
    },
    Symlink {
        target: String,
    },
    CharDev {
        major: u32,
        minor: u32,
    },
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path without a leading '/', e.g. "bin/busybox".
    pub path: String,
    /// Permission bits only, e.g. 0o755; the file type comes from `kind`.
    pub mode: u32,
    pub kind: Kind,
}

/// Collects the entries of the tree under `dir` (not `dir` itself), sorted by path.
/// Symlinks are kept as symlinks, `.gitkeep` files (which only keep empty skeleton dirs in git)
/// are skipped, and non-UTF-8 paths or special files are errors.
pub fn collect(dir: &Utf8Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    // read_dir order depends on the filesystem; sort so the result is reproducible
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

fn walk(root: &Utf8Path, dir: &Utf8Path, entries: &mut Vec<Entry>) -> Result<()> {
    for dirent in fs::read_dir(dir)? {
        let path = Utf8PathBuf::from_path_buf(dirent?.path())
            .map_err(|path| anyhow!("path is not utf-8: {}", path.display()))?;
        if path.file_name() == Some(".gitkeep") {
            continue;
        }
        let meta = fs::symlink_metadata(&path)?;
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File { source: path.clone() }
        } else if file_type.is_symlink() {
            let target = fs::read_link(&path)?
                .into_os_string()
                .into_string()
                .map_err(|target| anyhow!("symlink target of {path} is not utf-8: {}", target.to_string_lossy()))?;
            Kind::Symlink { target }
        } else {
            bail!("unsupported special file (fifo, socket or device): {path}");
        };
        let rel = path.strip_prefix(root).with_context(|| format!("{path} is outside {root}"))?;
        entries.push(Entry { path: rel.to_string(), mode: meta.permissions().mode() & 0o7777, kind });
        if file_type.is_dir() {
            walk(root, &path, entries)?;
        }
    }
    Ok(())
}

/// Merges layers, later layers overriding earlier ones on the same path. The result is sorted
/// by path (byte order, so a parent precedes its children) and gets a 0o755 directory for
/// every missing parent, because the kernel does not create parents when unpacking.
pub fn merge(layers: Vec<Vec<Entry>>) -> Vec<Entry> {
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in layers.into_iter().flatten() {
        by_path.insert(entry.path.clone(), entry);
    }
    let parents: Vec<String> =
        by_path.keys().flat_map(|path| path.match_indices('/').map(|(i, _)| path[..i].to_string())).collect();
    for parent in parents {
        by_path.entry(parent.clone()).or_insert(Entry { path: parent, mode: 0o755, kind: Kind::Dir });
    }
    by_path.into_values().collect()
}

/// Writes `entries` as a newc cpio archive plus trailer: uid/gid 0, `mtime` everywhere,
/// inode numbers 1.. in order. Returns the number of entries written (without the trailer).
pub fn write_cpio<W: Write>(entries: &[Entry], mtime: u32, mut out: W) -> Result<(usize, W)> {
    for (index, entry) in entries.iter().enumerate() {
        let ino = u32::try_from(index + 1).context("too many cpio entries")?;
        out = write_entry(entry, ino, mtime, out)
            .with_context(|| format!("writing {} to the cpio archive", entry.path))?;
    }
    let out = cpio::newc::trailer(out).context("writing the cpio trailer")?;
    Ok((entries.len(), out))
}

fn write_entry<W: Write>(entry: &Entry, ino: u32, mtime: u32, out: W) -> Result<W> {
    let (file_type, nlink) = match entry.kind {
        Kind::Dir => (ModeFileType::Directory, 2),
        Kind::File { .. } => (ModeFileType::Regular, 1),
        Kind::Symlink { .. } => (ModeFileType::Symlink, 1),
        Kind::CharDev { .. } => (ModeFileType::Char, 1),
    };
    let builder = cpio::NewcBuilder::new(&entry.path)
        .ino(ino)
        .mode(entry.mode & 0o7777)
        .set_mode_file_type(file_type)
        .uid(0)
        .gid(0)
        .nlink(nlink)
        .mtime(mtime);
    let out = match &entry.kind {
        Kind::Dir => builder.write(out, 0).finish()?,
        Kind::CharDev { major, minor } => builder.rdev_major(*major).rdev_minor(*minor).write(out, 0).finish()?,
        Kind::Symlink { target } => {
            let size = u32::try_from(target.len()).context("symlink target too long")?;
            let mut writer = builder.write(out, size);
            writer.write_all(target.as_bytes())?;
            writer.finish()?
        }
        Kind::File { source } => {
            let mut file = fs::File::open(source)?;
            let len = file.metadata()?.len();
            let size = u32::try_from(len).with_context(|| format!("{source} is too large for a newc cpio archive"))?;
            let mut writer = builder.write(out, size);
            let copied = io::copy(&mut Read::take(&mut file, len), &mut writer)
                .with_context(|| format!("copying {source} into the cpio archive"))?;
            // the cpio writer silently skips padding on a short write, corrupting the archive
            if copied != len {
                bail!("{source} shrank while it was being archived");
            }
            writer.finish()?
        }
    };
    Ok(out)
}

/// Like [`write_cpio`] but gzipped (level 9, no file name, mtime 0) so identical inputs give
/// byte-identical output. Returns `out` after the gzip stream is finished.
pub fn write_gz<W: Write>(entries: &[Entry], mtime: u32, out: W) -> Result<W> {
    // buffer the cpio: the cpio writer flushes after padded entries, and each flush of a
    // GzEncoder ends the deflate block with a sync marker, which costs compression
    let (_, cpio) = write_cpio(entries, mtime, Vec::new())?;
    let mut gz = GzBuilder::new().mtime(0).write(out, Compression::best());
    gz.write_all(&cpio).context("compressing the initramfs")?;
    gz.finish().context("finishing the initramfs gzip stream")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A unique directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub(crate) Utf8PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            let base = Utf8PathBuf::try_from(std::env::temp_dir()).unwrap();
            let dir = base.join(format!("archive-{tag}-{}-{}", std::process::id(), nanos.as_nanos()));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entry(path: &str, mode: u32, kind: Kind) -> Entry {
        Entry { path: path.to_string(), mode, kind }
    }

    fn file(source: &Utf8Path) -> Kind {
        Kind::File { source: source.to_owned() }
    }

    fn symlink(target: &str) -> Kind {
        Kind::Symlink { target: target.to_string() }
    }

    /// Reads every member (trailer included) back, checking each header is 4-byte aligned.
    fn read_back(bytes: &[u8]) -> Vec<(cpio::newc::Entry, Vec<u8>)> {
        let mut members = Vec::new();
        let mut cursor = Cursor::new(bytes);
        loop {
            let offset = cursor.position() as usize;
            assert_eq!(offset % 4, 0, "header at unaligned offset {offset}");
            assert_eq!(&bytes[offset..offset + 6], b"070701");
            let mut reader = cpio::NewcReader::new(cursor).unwrap();
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            let header = reader.entry().clone();
            cursor = reader.finish().unwrap();
            let done = header.is_trailer();
            members.push((header, data));
            if done {
                assert_eq!(cursor.position() as usize, bytes.len(), "bytes after the trailer");
                return members;
            }
        }
    }

    fn sample(tmp: &TempDir) -> Vec<Entry> {
        let hello = tmp.0.join("hello");
        fs::write(&hello, "hello").unwrap();
        vec![
            entry("bin", 0o755, Kind::Dir),
            entry("bin/hello", 0o755, file(&hello)),
            entry("bin/sh", 0o777, symlink("hello")),
            entry("dev", 0o755, Kind::Dir),
            entry("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 }),
        ]
    }

    #[test]
    fn cpio_headers_and_data_round_trip() {
        let tmp = TempDir::new("headers");
        let (count, bytes) = write_cpio(&sample(&tmp), 1_700_000_000, Vec::new()).unwrap();
        assert_eq!(count, 5);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(bytes.windows(6).filter(|w| w == b"070701").count(), 6);

        let members = read_back(&bytes);
        let expected: [(&str, u32, u32, &[u8]); 5] = [
            ("bin", 0o040755, 2, b""),
            ("bin/hello", 0o100755, 1, b"hello"),
            ("bin/sh", 0o120777, 1, b"hello"),
            ("dev", 0o040755, 2, b""),
            ("dev/console", 0o020600, 1, b""),
        ];
        assert_eq!(members.len(), expected.len() + 1);
        for (i, ((header, data), (name, mode, nlink, content))) in members.iter().zip(expected).enumerate() {
            assert_eq!(header.name(), name);
            assert_eq!(header.mode(), mode, "{name}");
            assert_eq!((header.uid(), header.gid()), (0, 0), "{name}");
            assert_eq!(header.mtime(), 1_700_000_000, "{name}");
            assert_eq!(header.ino() as usize, i + 1, "{name}");
            assert_eq!(header.nlink(), nlink, "{name}");
            assert_eq!(header.file_size() as usize, content.len(), "{name}");
            assert_eq!(data, content, "{name}");
        }
        let (console, _) = &members[4];
        assert_eq!((console.rdev_major(), console.rdev_minor()), (5, 1));
        assert!(members.last().unwrap().0.is_trailer());
    }

    #[test]
    fn merge_overrides_sorts_and_adds_parents() {
        let (a, b) = (Utf8Path::new("/a"), Utf8Path::new("/b"));
        let base = vec![
            entry("etc/passwd", 0o644, file(a)),
            entry("bin/sh", 0o777, symlink("busybox")),
            entry("bin", 0o700, Kind::Dir),
        ];
        let overlay = vec![entry("usr/bin/x", 0o755, file(b)), entry("etc/passwd", 0o600, file(b))];
        let merged = merge(vec![base, overlay]);
        let expected = vec![
            entry("bin", 0o700, Kind::Dir),
            entry("bin/sh", 0o777, symlink("busybox")),
            entry("etc", 0o755, Kind::Dir),
            entry("etc/passwd", 0o600, file(b)),
            entry("usr", 0o755, Kind::Dir),
            entry("usr/bin", 0o755, Kind::Dir),
            entry("usr/bin/x", 0o755, file(b)),
        ];
        assert_eq!(merged, expected);
    }

    #[test]
    fn collect_keeps_modes_and_symlinks_and_skips_gitkeep() {
        let tmp = TempDir::new("collect");
        let root = &tmp.0;
        let chmod =
            |path: &str, mode| fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
        for dir in ["bin", "empty"] {
            fs::create_dir(root.join(dir)).unwrap();
            chmod(dir, 0o755);
        }
        fs::write(root.join("empty/.gitkeep"), "").unwrap();
        fs::write(root.join("bin/tool"), "#!/bin/sh\n").unwrap();
        chmod("bin/tool", 0o755);
        fs::write(root.join("secret"), "x").unwrap();
        chmod("secret", 0o600);
        fs::os::unix::fs::symlink("does/not/exist", root.join("bin/link")).unwrap();

        let expected = vec![
            entry("bin", 0o755, Kind::Dir),
            entry("bin/link", 0o777, symlink("does/not/exist")),
            entry("bin/tool", 0o755, file(&root.join("bin/tool"))),
            entry("empty", 0o755, Kind::Dir),
            entry("secret", 0o600, file(&root.join("secret"))),
        ];
        assert_eq!(collect(root).unwrap(), expected);
    }

    #[test]
    fn collect_rejects_fifo() {
        let tmp = TempDir::new("fifo");
        let status = std::process::Command::new("mkfifo").arg(tmp.0.join("pipe")).status().unwrap();
        assert!(status.success());
        let err = format!("{:#}", collect(&tmp.0).unwrap_err());
        assert!(err.contains("special file") && err.contains("pipe"), "{err}");
    }

    #[test]
    fn collect_rejects_non_utf8_path() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = TempDir::new("utf8");
        std::fs::write(tmp.0.as_std_path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "").unwrap();
        let err = format!("{:#}", collect(&tmp.0).unwrap_err());
        assert!(err.contains("not utf-8") && err.contains("bad\u{fffd}"), "{err}");
    }

    #[test]
    fn gz_is_deterministic_and_wraps_the_cpio() {
        let tmp = TempDir::new("gz");
        let entries = sample(&tmp);
        let first = write_gz(&entries, 42, Vec::new()).unwrap();
        let second = write_gz(&entries, 42, Vec::new()).unwrap();
        assert_eq!(first, second);
        assert_eq!(&first[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(first[3], 0, "no FNAME or other flags");
        assert_eq!(&first[4..8], &[0; 4], "gzip mtime is 0");

        let mut decompressed = Vec::new();
        flate2::read::GzDecoder::new(first.as_slice()).read_to_end(&mut decompressed).unwrap();
        let (_, cpio) = write_cpio(&entries, 42, Vec::new()).unwrap();
        assert_eq!(decompressed, cpio);
    }
}
