//! `qemu --share DIR[:GUEST_PATH][:ro]`: host folders in the guest over virtio-9p.
//!
//! qemu exports each folder under a mount tag; the kernel command line tells the guest's init
//! (`rootfs/etc/teeny/session`) where to mount each tag (`teeny.share=TAG:PATH[:ro]`) and
//! where its shell starts (`teeny.cwd=PATH`). The kernel never reads these: parameters with a
//! dot that no built-in code claims are left to user space, in /proc/cmdline.

use crate::arch::Virtio;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};

/// One `--share`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// An existing folder, absolute and without symlinks.
    pub host: Utf8PathBuf,
    /// Where the guest mounts it: absolute, without spaces or colons (the command line's syntax).
    pub guest: Utf8PathBuf,
    pub read_only: bool,
}

/// `--share`'s value parser: clap names the option itself, so the message goes without it.
pub fn parse_arg(spec: &str) -> Result<Share, String> {
    parse(spec).map_err(|e| format!("{e:#}").trim_start_matches(&format!("--share {spec}: ")).to_owned())
}

/// Parses `DIR[:GUEST_PATH][:ro]`; the guest path defaults to DIR's absolute path.
pub fn parse(spec: &str) -> Result<Share> {
    let (rest, read_only) = match spec.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (spec, false),
    };
    // The guest path has no colon, so the folder is what comes before the last one; a folder
    // whose own name has a colon is taken whole when it exists.
    let (dir, guest) = match rest.rsplit_once(':') {
        Some(_) if std::path::Path::new(rest).is_dir() => (rest, None),
        Some((dir, guest)) => (dir, Some(guest)),
        None => (rest, None),
    };
    if dir.is_empty() {
        bail!("--share {spec}: no folder given (DIR[:GUEST_PATH][:ro])");
    }
    let host = std::fs::canonicalize(dir).with_context(|| {
        let colon = if rest.contains(':') { " (read as DIR:GUEST_PATH at the last colon; a folder whose name has a colon needs a guest path: DIR:/mnt/NAME)" } else { "" };
        format!("--share {spec}: folder {dir} does not exist{colon}")
    })?;
    let host = Utf8PathBuf::try_from(host).with_context(|| format!("--share {spec}: {dir} is not UTF-8"))?;
    if !host.is_dir() {
        bail!("--share {spec}: {host} is not a folder");
    }
    // A given guest path cannot hold a colon (the syntax); the default, DIR's own path, may:
    // init takes everything after the mount tag's colon.
    let given = guest.is_some();
    let guest = guest.map_or_else(|| host.clone(), Utf8PathBuf::from);
    // It goes on the kernel command line, where a blank or a newline would start a new word.
    let bad = |c: char| c.is_whitespace() || c.is_control() || (given && c == ':');
    if !guest.is_absolute() || guest.as_str().contains(bad) {
        bail!(
            "--share {spec}: the guest path {guest:?} must be absolute, without spaces, control characters or colons (give one: {dir}:/mnt/NAME)"
        );
    }
    Ok(Share { host, guest, read_only })
}

/// The mount tag of the share at `index`.
fn tag(index: usize) -> String {
    format!("teeny{index}")
}

/// qemu's arguments for the shares: a 9p export each, on `virtio`'s transport.
pub fn qemu_args(shares: &[Share], virtio: Virtio) -> Vec<String> {
    let mut args = Vec::new();
    for (i, s) in shares.iter().enumerate() {
        // A comma in a qemu option value is written twice.
        let path = s.host.as_str().replace(',', ",,");
        // security_model=none: the guest's root writes files as the user running qemu.
        let ro = if s.read_only { ",readonly=on" } else { "" };
        args.extend([
            "-fsdev".to_owned(),
            format!("local,id={},path={path},security_model=none{ro}", tag(i)),
            "-device".to_owned(),
            format!("{},fsdev={},mount_tag={}", virtio.device("9p"), tag(i), tag(i)),
        ]);
    }
    args
}

/// Kernel command line words for init: the mounts, and the shell's starting folder when
/// `cwd` is inside a share.
pub fn append(shares: &[Share], cwd: &Utf8Path) -> Vec<String> {
    let mut words: Vec<String> = shares
        .iter()
        .enumerate()
        .map(|(i, s)| format!("teeny.share={}:{}{}", tag(i), s.guest, if s.read_only { ":ro" } else { "" }))
        .collect();
    // The innermost share holding cwd, so that `--share ~ --share ~/src` starts in ~/src's.
    let inside = shares.iter().filter_map(|s| Some((s, cwd.strip_prefix(&s.host).ok()?)));
    if let Some((share, rel)) = inside.max_by_key(|(s, _)| s.host.as_str().len()) {
        let dir = if rel.as_str().is_empty() { share.guest.clone() } else { share.guest.join(rel) };
        if !dir.as_str().contains(char::is_whitespace) {
            words.push(format!("teeny.cwd={dir}"));
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(host: &str, guest: &str, read_only: bool) -> Share {
        Share { host: host.into(), guest: guest.into(), read_only }
    }

    #[test]
    fn parses_the_four_forms() {
        let tmp = Utf8PathBuf::try_from(std::fs::canonicalize(std::env::temp_dir()).unwrap()).unwrap();
        let t = tmp.as_str();
        assert_eq!(parse(t).unwrap(), share(t, t, false));
        assert_eq!(parse(&format!("{t}:ro")).unwrap(), share(t, t, true));
        assert_eq!(parse(&format!("{t}:/mnt/x")).unwrap(), share(t, "/mnt/x", false));
        assert_eq!(parse(&format!("{t}:/mnt/x:ro")).unwrap(), share(t, "/mnt/x", true));
    }

    #[test]
    fn refuses_what_cannot_be_shared() {
        let err = format!("{:#}", parse("/nonexistent/teeny").unwrap_err());
        assert!(err.contains("folder /nonexistent/teeny does not exist"), "{err}");
        let err = parse("/etc/hostname").unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");
        let err = parse("/tmp:relative").unwrap_err().to_string();
        assert!(err.contains("must be absolute"), "{err}");
        assert!(parse(":/mnt").is_err());
        let err = parse("/tmp:/mnt/a\nb").unwrap_err().to_string();
        assert!(err.contains("control characters"), "{err}");
        assert!(parse("/tmp:/mnt/a b").is_err());
    }

    #[test]
    fn a_folder_with_a_colon_in_its_name() {
        let dir = std::env::temp_dir().join(format!("teeny-share-a:b-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = Utf8PathBuf::try_from(std::fs::canonicalize(&dir).unwrap()).unwrap();
        // Whole, as it exists; with a guest path and :ro, split at the last colons.
        assert_eq!(parse(dir.as_str()).unwrap(), share(dir.as_str(), dir.as_str(), false));
        assert_eq!(parse(&format!("{dir}:/mnt/x:ro")).unwrap(), share(dir.as_str(), "/mnt/x", true));
        let err = format!("{:#}", parse("/nonexistent/a:b").unwrap_err());
        assert!(err.contains("folder /nonexistent/a does not exist") && err.contains("needs a guest path"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exports_each_folder_on_the_transport() {
        let shares = [share("/home/u/src", "/home/u/src", false), share("/data,1", "/mnt/d", true)];
        assert_eq!(
            qemu_args(&shares, Virtio::Pci),
            [
                "-fsdev",
                "local,id=teeny0,path=/home/u/src,security_model=none",
                "-device",
                "virtio-9p-pci,fsdev=teeny0,mount_tag=teeny0",
                "-fsdev",
                "local,id=teeny1,path=/data,,1,security_model=none,readonly=on",
                "-device",
                "virtio-9p-pci,fsdev=teeny1,mount_tag=teeny1",
            ]
        );
        assert_eq!(qemu_args(&shares[..1], Virtio::Mmio)[3], "virtio-9p-device,fsdev=teeny0,mount_tag=teeny0");
    }

    #[test]
    fn tells_init_the_mounts_and_the_innermost_shared_cwd() {
        let shares = [share("/home/u", "/home/u", false), share("/home/u/src", "/src", true)];
        assert_eq!(
            append(&shares, "/home/u/src/linux".into()),
            ["teeny.share=teeny0:/home/u", "teeny.share=teeny1:/src:ro", "teeny.cwd=/src/linux"]
        );
        assert_eq!(append(&shares, "/home/u".into())[2], "teeny.cwd=/home/u");
        assert_eq!(append(&shares, "/tmp".into()).len(), 2, "a cwd outside every share");
    }
}
