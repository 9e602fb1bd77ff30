//! End-to-end test of `--toolchain clang`: a real kernel built with LLVM=1 in the builder image
//! boots, its record names clang, and a second build of it from another folder, through the warm
//! compiler cache, gives the same bytes.
//!
//! One kernel is built cold (the host's allnoconfig with clang, 3–5 minutes): the fake tree
//! checks that LLVM=1 reaches every make and that clang's folder is its own, but only a real
//! build shows that Debian's clang builds our configs, boots with our initramfs and stays
//! byte-reproducible. The copy is warm (ccache hits). The other arches and `fast` with clang are
//! measured by hand (docs/builds.md). The build folder is the rest of the tier's
//! (target/tmp/e2e-build), so busybox is not built again.

mod common;

use common::{host, json, serial, stderr, stdout, str_at};
use std::path::{Path, PathBuf};

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

#[test]
fn allnoconfig_built_with_clang_boots_and_a_copy_elsewhere_has_the_same_bytes() {
    let _g = serial();
    let out = common::run(&build_dir(), &["--toolchain", "clang", "qemu", "--", "cat /proc/version; exit 5"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stdout(&out).contains("clang"), "the guest's kernel says its compiler: {}", stdout(&out));
    let folder = common::kernel_folder(host(), "allnoconfig", &["clang"]);
    let obj = build_dir().join("obj").join(&folder);
    let record = json(&obj.join("teeny-build.json"));
    assert_eq!(str_at(&record, "/toolchain"), "clang");
    assert!(str_at(&record, "/compiler").contains("clang version"), "{record:#}");
    let make: Vec<&str> = record["make"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(make.iter().all(|m| m.split(' ').any(|w| w == "LLVM=1")), "{make:?}");

    // Another build folder, the same compiler cache: the same bytes.
    let other = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-clang-copy");
    let _ = std::fs::remove_dir_all(&other);
    let ccache = build_dir().join("ccache");
    let args = ["--ccache-dir", ccache.to_str().unwrap(), "--toolchain", "clang", "kernel", "allnoconfig"];
    let out = common::run(&other, &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = json(&other.join("obj").join(&folder).join("teeny-build.json"));
    for artifact in ["/vmlinux/sha256", "/bzimage/sha256"] {
        assert_eq!(str_at(&copy, artifact), str_at(&record, artifact), "{artifact} differs between the two folders");
    }
    assert!(copy["ccache"]["hits"].as_u64().unwrap() > 0, "the copy used the warm cache: {copy:#}");
    let _ = std::fs::remove_dir_all(&other);
}
