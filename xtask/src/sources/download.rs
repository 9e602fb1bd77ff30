//! Downloading a pinned tarball (curl, into a temporary beside it, checked, then renamed) and
//! hashing files.

use super::Pin;
use crate::ctx::hex;
use anyhow::{Context, Result, bail};
use camino::Utf8Path;
use fs_err as fs;
use std::io::{Read, Write};

/// Fails unless `actual`, the sha256 of `path`, is the expected one, naming the file and both.
pub fn check_sha(path: &Utf8Path, expected: &str, actual: &str) -> Result<()> {
    if actual != expected {
        bail!(
            "checksum mismatch for {path}: expected sha256 {expected}, got {actual} (a truncated or wrong file; delete it to download again)"
        )
    }
    Ok(())
}

/// sha256 of a file, optionally copying the bytes to `copy` on the way (downloads).
pub fn sha256_file(path: &Utf8Path, copy: Option<&mut dyn Write>) -> Result<String> {
    hash_reader(&mut fs::File::open(path)?, copy, None).with_context(|| format!("reading {path}"))
}

/// Hashes everything `r` yields; with `total` (0: unknown), prints download progress to stderr.
fn hash_reader(r: &mut dyn Read, mut copy: Option<&mut dyn Write>, total: Option<u64>) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let (mut done, mut shown) = (0u64, 0u64);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(w) = copy.as_mut() {
            w.write_all(&buf[..n])?;
        }
        done += n as u64;
        if let Some(total) = total.filter(|_| done - shown >= 4 << 20) {
            shown = done;
            let total = if total == 0 { "?".into() } else { (total >> 20).to_string() };
            eprint!("\r  {} / {total} MiB", done >> 20);
        }
    }
    if total.is_some() {
        eprintln!("\r  {} MiB done", done >> 20);
    }
    Ok(hex(&h.finalize()))
}

/// Downloads `pin` to `dest` via `dest.part`; renames only after the checksum matched.
/// `curl`'s command line for a download to `part`: fail on HTTP errors, follow redirects,
/// retry twice, errors but no progress meter.
fn curl_argv(url: &str, part: &Utf8Path) -> Vec<String> {
    ["curl", "--fail", "--location", "--retry", "2", "--silent", "--show-error", "--output", part.as_str(), url]
        .map(String::from)
        .into()
}

/// Downloads the pinned file with the host's curl (a TLS stack of our own would cost more to
/// compile than every other dependency together) and checks it before it takes its name. A dry
/// run prints curl's command line only.
pub fn download(pin: &Pin, dest: &Utf8Path, dry_run: bool) -> Result<()> {
    let dir = dest.parent().context("download path has no folder")?;
    if dry_run {
        eprintln!("$ {}", crate::runner::display(&curl_argv(&pin.url, &crate::disk::tmp_sibling(dest))));
        eprintln!("  (on this machine; then its sha256 is checked and it is renamed to {dest})");
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let part = crate::disk::Tmp::beside(dest);
    let argv = curl_argv(&pin.url, part.path());
    eprintln!("$ {}", crate::runner::display(&argv));
    let offline = || format!("offline? put {} in TEENY_DOWNLOADS={dir}", pin.file_name());
    let status = match std::process::Command::new(&argv[0]).args(&argv[1..]).stdin(std::process::Stdio::null()).status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("downloading {} needs curl: install it (`sudo apt install curl`), or {}", pin.url, offline())
        }
        r => r.with_context(|| format!("cannot run curl for {}", pin.url))?,
    };
    anyhow::ensure!(status.success(), "downloading {} failed ({status}; {})", pin.url, offline());
    check_sha(part.path(), &pin.sha256, &sha256_file(part.path(), None)?)?;
    fs::rename(part.path(), dest)?;
    part.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    const SHA: &str = "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4";

    #[test]
    fn downloads_fail_on_http_errors_and_follow_redirects() {
        let argv = curl_argv("https://example.org/a.tar.xz", "/d/.a.tar.xz.tmp-1".into());
        assert_eq!(argv[0], "curl");
        for flag in ["--fail", "--location", "--show-error"] {
            assert!(argv.contains(&flag.to_owned()), "{argv:?}");
        }
        assert_eq!(argv[argv.len() - 3..], ["--output", "/d/.a.tar.xz.tmp-1", "https://example.org/a.tar.xz"]);
    }

    fn temp_file(name: &str, bytes: &[u8]) -> Utf8PathBuf {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn checksum_good_wrong_and_truncated() {
        // sha256("abc"), a published test vector.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let good = temp_file("good", b"abc");
        let verify = |p: &Utf8Path, sha: &str| check_sha(p, sha, &sha256_file(p, None).unwrap());
        verify(&good, abc).unwrap();
        let err = verify(&good, SHA).unwrap_err().to_string();
        assert!(err.contains(good.as_str()) && err.contains(SHA) && err.contains(abc), "{err}");
        let truncated = temp_file("truncated", b"ab");
        let err = verify(&truncated, abc).unwrap_err().to_string();
        assert!(err.starts_with(&format!("checksum mismatch for {truncated}")), "{err}");
    }
}
