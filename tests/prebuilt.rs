//! End-to-end tests of `cargo xtask qemu --kernel-image`: a kernel that was not built here,
//! Debian's own (`linux-image-*`, which `.ci/run` installs, in /boot with its modules in
//! /lib/modules), booted under TCG with our busybox initramfs.
//!
//! No kernel is built: the initramfs is the one the rest of the end-to-end tier packs in the same
//! build folder (target/tmp/e2e-build). A machine without a Debian kernel in /boot skips these
//! tests, except in CI, where `.ci/run` installs one and a skip would hide a failure.

mod common;

use common::{serial, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

fn xtask(args: &[&str]) -> Output {
    common::run(&build_dir(), args, &[])
}

/// The newest kernel image in /boot that has its modules in /lib/modules, and its release.
fn installed_kernel() -> Option<(PathBuf, String)> {
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| {
            let path = e.ok()?.path();
            let release = path.file_name()?.to_str()?.strip_prefix("vmlinuz-")?.to_owned();
            Path::new("/lib/modules").join(&release).join("modules.dep").is_file().then_some((path, release))
        })
        .collect();
    found.sort();
    let kernel = found.pop();
    if kernel.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI installs a kernel image (linux-image-*): none is in /boot");
        eprintln!("skipped: no /boot/vmlinuz-RELEASE with /lib/modules/RELEASE on this machine");
    }
    kernel
}

#[test]
fn debians_kernel_boots_with_our_initramfs_and_says_its_release() {
    let _g = serial();
    let Some((image, release)) = installed_kernel() else { return };
    let out = xtask(&["qemu", "--kernel-image", image.to_str().unwrap(), "--", "uname -r; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "the command's exit status: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), release);
    let err = stderr(&out);
    assert!(err.contains(&format!("release {release}")), "the image's release, read from the file: {err}");
}

#[test]
fn share_and_net_work_through_the_kernels_own_modules() {
    let _g = serial();
    let Some((image, release)) = installed_kernel() else { return };
    let dir = common::temp_dir("prebuilt-share");
    std::fs::write(dir.join("from-host"), "hello from the host\n").unwrap();
    let spec = format!("{}:/mnt/host", dir.display());
    let cmd = "cat /mnt/host/from-host && echo written > /mnt/host/from-guest && ip -4 addr show eth0 && lsmod | cut -d' ' -f1";
    let out = xtask(&["qemu", "--kernel-image", image.to_str().unwrap(), "--share", &spec, "--net", "--", cmd]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(stdout.starts_with("hello from the host\n"), "{stdout}");
    assert_eq!(std::fs::read_to_string(dir.join("from-guest")).unwrap(), "written\n");
    // Debian has 9p and virtio-net as modules: init loaded them from the layer, after what they need.
    assert!(stdout.contains("inet 10.0.2.15/24"), "eth0 got its address by DHCP: {stdout}");
    for module in ["9p", "9pnet_virtio", "virtio_net"] {
        assert!(stdout.lines().any(|l| l == module), "{module} is loaded: {stdout}");
    }
    let err = stderr(&out);
    assert!(err.contains(&format!("modules from /lib/modules/{release}")), "{err}");
}

#[test]
fn a_file_that_is_no_kernel_for_the_arch_is_refused_before_qemu_starts() {
    let _g = serial();
    let readme = common::root().join("README.md");
    let out = xtask(&["qemu", "--kernel-image", readme.to_str().unwrap(), "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "a user's error, not a build that failed: {}", stderr(&out));
    assert!(stderr(&out).contains("README.md is not a kernel: it is a text file"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("$ qemu-system"), "qemu did not start: {}", stderr(&out));
    let Some((image, _)) = installed_kernel() else { return };
    let other = common::others()[0];
    let out = xtask(&["qemu", "--arch", other.name, "--kernel-image", image.to_str().unwrap(), "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let host = common::host().name;
    let err = stderr(&out);
    assert!(err.contains(&format!("is a kernel for {host} (")), "{err}");
    assert!(err.contains(&format!("), not for {}: add --arch {host}", other.name)), "{err}");
    assert!(!err.contains("$ qemu-system"), "{err}");
}

#[test]
fn dry_run_prints_the_qemu_command_line_and_boots_nothing() {
    let _g = serial();
    let Some((image, release)) = installed_kernel() else { return };
    let image = image.to_str().unwrap();
    // What a dry run cannot make: the initramfs it boots (up to date when the tier built it).
    assert!(xtask(&["initramfs"]).status.success());
    let out = xtask(&["qemu", "--kernel-image", image, "--share", ".", "--cpus", "2", "--dry-run", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let qemu = err.lines().find(|l| l.starts_with("$ qemu-system-")).unwrap_or_else(|| panic!("qemu's line: {err}"));
    assert!(qemu.contains(&format!(" -kernel {image} ")) && qemu.contains(" -smp 2"), "{qemu}");
    assert!(qemu.contains("teeny.modules=9p,9pnet_virtio"), "the modules init would load: {qemu}");
    assert!(err.contains("dry run: would write ") && err.contains("teeny-modules-"), "the layer is not written: {err}");
    assert!(!err.contains("booted:") && err.contains(&release), "{err}");
}
