//! Our initramfs packer against `find | cpio -o -H newc | gzip -9`, on the same tree.

use crate::ctx::Ctx;
use crate::initramfs::{self, archive};
use anyhow::{Context, Result};
use fs_err as fs;
use serde::Serialize;
use std::time::Instant;

/// Our packer against the shell pipeline, on the same tree in the same run.
#[derive(Serialize)]
pub struct Packing {
    ours_s: f64,
    ours_bytes: u64,
    cpio_gzip_s: f64,
    cpio_gzip_bytes: u64,
}

impl std::fmt::Display for Packing {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "initramfs packing, same tree: ours {:.3} s, {} bytes; find | cpio -o -H newc | gzip -9: {:.3} s, {} bytes",
            self.ours_s, self.ours_bytes, self.cpio_gzip_s, self.cpio_gzip_bytes
        )
    }
}

/// Packs the same tree both ways. The tree is the initramfs staged on disk, without
/// the device nodes (making one needs root).
pub fn packing(ctx: &Ctx) -> Result<Packing> {
    let install = crate::busybox::build(ctx, false)?;
    let stage = stage(ctx);
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    fs::create_dir_all(&stage)?;
    for e in initramfs::entries(&install, &ctx.root.join("rootfs"), ctx.arch)? {
        let dest = stage.join(&e.path);
        match &e.kind {
            archive::Kind::Dir => fs::create_dir_all(&dest)?,
            archive::Kind::File { source } => drop(fs::copy(source, &dest)?),
            archive::Kind::Symlink { target } => {
                std::os::unix::fs::symlink(target, &dest).with_context(|| format!("symlink {dest}"))?
            }
            archive::Kind::CharDev { .. } => {}
        }
    }
    let (ours, theirs) = (ctx.build.join("bench/ours.cpio.gz"), theirs(ctx));
    let start = Instant::now();
    let ours_bytes = initramfs::write(&archive::collect(&stage)?, 0, &ours, initramfs::Compression::Gzip)?;
    let ours_s = start.elapsed().as_secs_f64();
    eprintln!("$ {}", shown(ctx));
    let start = Instant::now();
    pipeline(&[&["find", "."], &["cpio", "-o", "-H", "newc", "--quiet"], &["gzip", "-9"]], &stage, &theirs)
        .context("find | cpio | gzip (is GNU cpio installed?)")?;
    let cpio_gzip_s = start.elapsed().as_secs_f64();
    Ok(Packing { ours_s, ours_bytes, cpio_gzip_s, cpio_gzip_bytes: fs::metadata(&theirs)?.len() })
}

/// Where the tree is staged, and the pipeline's archive.
fn stage(ctx: &Ctx) -> camino::Utf8PathBuf {
    ctx.build.join("bench/tree")
}

fn theirs(ctx: &Ctx) -> camino::Utf8PathBuf {
    ctx.build.join("bench/theirs.cpio.gz")
}

/// The pipeline as one would type it.
pub fn shown(ctx: &Ctx) -> String {
    format!("(cd {} && find . | cpio -o -H newc --quiet | gzip -9 > {})", stage(ctx), theirs(ctx))
}

/// `a | b | c > out` in `dir`, without a shell: each stage's stdout is the next one's stdin.
fn pipeline(stages: &[&[&str]], dir: &camino::Utf8Path, out: &camino::Utf8Path) -> Result<()> {
    use std::process::{Command, Stdio};
    let mut children = Vec::new();
    let mut input = Stdio::null();
    for (i, argv) in stages.iter().enumerate() {
        let output =
            if i + 1 == stages.len() { Stdio::from(fs::File::create(out)?.into_file()) } else { Stdio::piped() };
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .stdin(input)
            .stdout(output)
            .spawn()
            .with_context(|| format!("cannot start {}", argv[0]))?;
        input = child.stdout.take().map_or(Stdio::null(), Stdio::from);
        children.push((argv[0], child));
    }
    for (name, mut child) in children {
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "{name} failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_passes_each_stage_on_and_fails_with_a_stage() {
        let dir = camino::Utf8PathBuf::try_from(std::env::temp_dir()).unwrap();
        let out = dir.join(format!("teeny-pipeline-{}", std::process::id()));
        pipeline(&[&["printf", "b\\na\\n"], &["sort"], &["head", "-1"]], &dir, &out).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "a\n");
        assert!(pipeline(&[&["printf", "x"], &["false"]], &dir, &out).is_err());
        fs::remove_file(&out).unwrap();
    }
}
