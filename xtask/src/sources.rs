//! Step 1a: the kernel and busybox sources, pinned in `sources.txt` and verified before use.
//!
//! A tarball's sha256 is checked before anything is extracted; downloads go to a temporary
//! name and are renamed only once verified. `--kernel-source` / `--busybox-source` (or
//! `TEENY_KERNEL_SOURCE` / `TEENY_BUSYBOX_SOURCE`) replace the pin with a local tarball or tree.

use crate::ctx::{Ctx, write_atomic};
use crate::stamp::Stamp;
use crate::step::Step;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
mod download;
pub mod kernel;

pub use download::sha256_file;
use download::{check_sha, download};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Package {
    Busybox,
    Linux,
}

impl Package {
    fn name(self) -> &'static str {
        match self {
            Package::Busybox => "busybox",
            Package::Linux => "linux",
        }
    }
    /// Files every tree of this package has, to reject a wrong directory early.
    fn markers(self) -> &'static [&'static str] {
        match self {
            Package::Busybox => &["Makefile", "Config.in", "applets"],
            Package::Linux => &["Makefile", "Kconfig", "arch/Kconfig"],
        }
    }
}

/// One line of `sources.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub version: String,
    pub url: String,
    pub sha256: String,
}

impl Pin {
    /// The upstream file name, which is also the name in the download cache.
    fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }
}

/// Parses `sources.txt`: `name version url sha256` per line, `#` comments.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Pin>> {
    let mut pins = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, version, url, sha256] = fields[..] else {
            bail!("{origin}:{}: expected `name version url sha256`, got: {line}", i + 1)
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{origin}:{}: not a sha256: {sha256}", i + 1)
        }
        if !url.starts_with("https://") && !url.starts_with("http://") {
            bail!("{origin}:{}: not an http(s) url: {url}", i + 1)
        }
        pins.push(Pin { name: name.into(), version: version.into(), url: url.into(), sha256: sha256.to_lowercase() });
    }
    Ok(pins)
}

/// A source tree ready for `make O=…`.
#[derive(Clone, Debug)]
pub struct Tree {
    pub dir: Utf8PathBuf,
    pub version: String,
    /// A user's own tree: mounted read-only, so `O=` builds cannot write into it.
    pub user_dir: bool,
    /// The sha256 of the tarball it was unpacked from: an immutable source, so a build of it
    /// with unchanged inputs is up to date without asking make. None for a user's tree.
    pub id: Option<String>,
}

impl Tree {
    /// A step run in this tree, with the tree mounted when it is outside the repository.
    pub fn step(&self, argv: &[&str]) -> Step {
        let step = Step::new(&self.dir, argv);
        if self.user_dir { step.mount(&self.dir, true) } else { step }
    }
}

/// Makes the package's source tree available (download, verify, extract) and returns it.
pub fn fetch(ctx: &Ctx, package: Package) -> Result<Tree> {
    let tree = fetch_any(ctx, package)?;
    if let (Package::Linux, Some(wanted)) = (package, &ctx.kernel.wanted)
        && !kernel::matches(&tree.version, wanted)
    {
        bail!("--kernel-version {wanted}: the kernel source {} is {}", tree.dir, tree.version);
    }
    Ok(tree)
}

fn fetch_any(ctx: &Ctx, package: Package) -> Result<Tree> {
    let over = match package {
        Package::Busybox => &ctx.busybox_source,
        Package::Linux => &ctx.kernel.local,
    };
    match over {
        Some(p) if p.is_dir() => {
            let version = check_tree(package, p)?;
            eprintln!("using {} {version} from {p}", package.name());
            Ok(Tree { dir: p.clone(), version, user_dir: true, id: None })
        }
        Some(p) if p.is_file() => {
            let sha = cached_sha256(ctx, p)?;
            let stem = p.file_name().unwrap_or("source");
            let stem = [".tar.xz", ".tar.bz2", ".tar.gz", ".tgz", ".tar"]
                .iter()
                .find_map(|s| stem.strip_suffix(s))
                .unwrap_or(stem);
            extract(ctx, package, p, stem, &sha)
        }
        Some(p) => bail!("{} source override {p} does not exist", package.name()),
        None => {
            let pins = pins(&ctx.root)?;
            let version = match package {
                Package::Linux => ctx.kernel.pin.as_deref(),
                Package::Busybox => None,
            };
            let pin = pins
                .iter()
                .find(|p| p.name == package.name() && version.is_none_or(|v| p.version == v))
                .with_context(|| format!("sources.txt has no `{}` line", package.name()))?;
            let downloads = downloads_dir(ctx);
            let tarball = downloads.join(pin.file_name());
            let name = format!("{}-{}", pin.name, pin.version);
            if tarball.exists() {
                // Checked whenever it is there (hashed again only when its size or mtime
                // changed): a wrong tarball is named even if its tree was unpacked before.
                verify_cached(ctx, &tarball, &pin.sha256)?;
            } else if let Some(tree) = unpacked(ctx, package, &name, &pin.sha256)? {
                // Unpacked from bytes that matched the pin, whose tarball is gone since.
                return Ok(tree);
            } else {
                download(pin, &tarball, ctx.dry_run)?;
            }
            extract(ctx, package, &tarball, &name, &pin.sha256)
        }
    }
}

/// The sha256 of a tarball, remembered by path, size and mtime: hashing the kernel's 140 MB on
/// every command would cost more than a whole boot. `expected`: only a match is remembered.
fn cached_sha256_of(ctx: &Ctx, path: &Utf8Path, expected: Option<&str>) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path)?;
    let key = format!("{path} {} {}.{}", meta.len(), meta.mtime(), meta.mtime_nsec());
    let cache = ctx
        .build
        .join("src")
        .join(format!(".override-{}.sha256", &crate::ctx::sha256_hex(&[path.as_str().as_bytes()])[..12]));
    if let Some(sha) =
        fs::read_to_string(&cache).ok().and_then(|t| t.strip_prefix(&format!("{key} ")).map(str::to_owned))
    {
        return Ok(sha);
    }
    let sha = sha256_file(path, None)?;
    if expected.is_none_or(|e| e == sha) && !ctx.dry_run {
        fs::create_dir_all(cache.parent().unwrap())?;
        write_atomic(&cache, format!("{key} {sha}").as_bytes())?;
    }
    Ok(sha)
}

fn cached_sha256(ctx: &Ctx, path: &Utf8Path) -> Result<String> {
    cached_sha256_of(ctx, path, None)
}

/// Checks a pinned tarball against its sha256 (hashed again only when it changed).
fn verify_cached(ctx: &Ctx, path: &Utf8Path, expected: &str) -> Result<()> {
    check_sha(path, expected, &cached_sha256_of(ctx, path, Some(expected))?)
}

/// `build/src/NAME` if it was unpacked from the tarball with sha256 `sha`.
fn unpacked(ctx: &Ctx, package: Package, name: &str, sha: &str) -> Result<Option<Tree>> {
    let dest = ctx.build.join("src").join(name);
    if !(dest.is_dir() && unpacked_stamp(ctx, name, sha).fresh(&[&dest])) {
        return Ok(None);
    }
    let version = check_tree(package, &dest)?;
    Ok(Some(Tree { dir: dest, version, user_dir: false, id: Some(sha.to_owned()) }))
}

/// Says that `build/src/NAME` was unpacked, whole, from the tarball with sha256 `sha`.
fn unpacked_stamp(ctx: &Ctx, name: &str, sha: &str) -> Stamp {
    Stamp::new(ctx.build.join("src").join(format!(".{name}.stamp")), &[sha.as_bytes()])
}

/// The pins of the checkout's `sources.txt`.
pub fn pins(root: &Utf8Path) -> Result<Vec<Pin>> {
    let path = root.join("sources.txt");
    parse(path.as_str(), &fs::read_to_string(&path)?)
}

fn downloads_dir(ctx: &Ctx) -> Utf8PathBuf {
    match std::env::var("TEENY_DOWNLOADS") {
        Ok(d) if !d.is_empty() => d.into(),
        _ => ctx.build.join("downloads"),
    }
}

/// Unpacks `tarball` (already verified, with sha256 `sha`) to `build/src/NAME`, unless that
/// tree was already unpacked from the same bytes.
fn extract(ctx: &Ctx, package: Package, tarball: &Utf8Path, name: &str, sha: &str) -> Result<Tree> {
    if let Some(tree) = unpacked(ctx, package, name, sha)? {
        return Ok(tree);
    }
    let src = ctx.build.join("src");
    let dest = src.join(name);
    if ctx.dry_run {
        crate::prepare::runner(ctx)?.run(&unpack_step(&src, tarball, &crate::disk::tmp_sibling(&dest), name))?;
        return Err(crate::dry::needs(&dest));
    }
    // Two commands unpacking the same tree wait for each other; the second finds it done.
    let _lock = ctx.lock(&dest)?;
    if let Some(tree) = unpacked(ctx, package, name, sha)? {
        return Ok(tree);
    }
    let stamp = unpacked_stamp(ctx, name, sha);
    stamp.clear();
    crate::disk::remove_stale(&src);
    let needed = match package {
        Package::Linux => 2 * crate::disk::GIB,
        Package::Busybox => 100 * crate::disk::MIB,
    };
    crate::disk::require_space(&src, needed, &format!("unpacking {tarball}"))?;
    // Unpack beside the destination and rename: an interrupted extraction is never taken for a
    // tree, and a failed one is removed.
    let guard = crate::disk::Tmp::beside(&dest);
    let tmp = guard.path().to_owned();
    fs::create_dir_all(&tmp)?;
    crate::prepare::runner(ctx)?.run(&unpack_step(&src, tarball, &tmp, name))?;
    let top: Vec<_> = fs::read_dir(&tmp)?.collect::<std::io::Result<_>>()?;
    let [top] = &top[..] else { bail!("{tarball} does not unpack to a single folder") };
    let top = Utf8PathBuf::try_from(top.path())?;
    let version =
        check_tree(package, &top).with_context(|| format!("{tarball} does not hold {} sources", package.name()))?;
    if dest.exists() {
        fs::remove_dir_all(&dest)?;
    }
    fs::rename(&top, &dest)?;
    drop(guard);
    stamp.write()?;
    eprintln!("unpacked {} {version} into {dest}", package.name());
    Ok(Tree { dir: dest, version, user_dir: false, id: Some(sha.to_owned()) })
}

/// `tar -xf TARBALL -C TMP` in `src`, the tarball's folder mounted read-only.
fn unpack_step(src: &Utf8Path, tarball: &Utf8Path, tmp: &Utf8Path, name: &str) -> Step {
    let step = Step::new(src, &["tar", "-xf", tarball.as_str(), "-C", tmp.as_str()]).log(&format!("unpack-{name}"));
    match tarball.parent() {
        Some(dir) => step.mount(dir, true),
        None => step,
    }
}

/// Checks that `dir` looks like the package's tree and returns its version from the Makefile.
fn check_tree(package: Package, dir: &Utf8Path) -> Result<String> {
    for m in package.markers() {
        if !dir.join(m).exists() {
            bail!("{dir} is not a {} source tree (no {m})", package.name());
        }
    }
    let makefile = dir.join("Makefile");
    makefile_version(&fs::read_to_string(&makefile)?).with_context(|| format!("no VERSION/PATCHLEVEL in {makefile}"))
}

/// `VERSION.PATCHLEVEL.SUBLEVEL EXTRAVERSION` from a kernel- or busybox-style top Makefile.
pub fn makefile_version(text: &str) -> Option<String> {
    let var = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let (v, p) = (var("VERSION")?, var("PATCHLEVEL")?);
    let s = var("SUBLEVEL").filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into());
    Some(format!("{v}.{p}.{s}{}", var("EXTRAVERSION").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4";

    #[test]
    fn parses_the_repositorys_sources_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sources.txt");
        let pins = parse(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        let bb = pins.iter().find(|p| p.name == "busybox").unwrap();
        assert_eq!(bb.version, "1.37.0");
        assert_eq!(bb.sha256, SHA);
        assert_eq!(bb.file_name(), "busybox-1.37.0.tar.bz2");
        assert!(pins.iter().any(|p| p.name == "linux" && p.version == "6.1.127"));
    }

    #[test]
    fn rejects_malformed_lines_with_their_line_number() {
        let err = parse("s.txt", "# c\nbusybox 1.0 https://x/y.tar\n").unwrap_err().to_string();
        assert!(err.starts_with("s.txt:2: expected"), "{err}");
        let err = parse("s.txt", &format!("b 1 https://x/y {}", &SHA[1..])).unwrap_err().to_string();
        assert!(err.contains("s.txt:1: not a sha256"), "{err}");
        let err = parse("s.txt", &format!("b 1 ftp://x/y {SHA}")).unwrap_err().to_string();
        assert!(err.contains("not an http(s) url"), "{err}");
    }

    #[test]
    fn reads_versions_from_top_makefiles() {
        let kernel = "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 127\nEXTRAVERSION =\nNAME = Curry Ramen\n";
        assert_eq!(makefile_version(kernel).as_deref(), Some("6.1.127"));
        let rc = "VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\n";
        assert_eq!(makefile_version(rc).as_deref(), Some("6.13.0-rc3"));
        assert_eq!(makefile_version("all:\n\techo hi\n"), None);
    }
}
