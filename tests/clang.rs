//! End-to-end test of `--toolchain clang`: a real kernel built with LLVM=1 in the builder image
//! boots, its record names clang, and a second build of it from another folder, through the warm
//! compiler cache, gives the same bytes.
//!
//! One kernel is built cold (the host's allnoconfig with clang, 3–5 minutes): the fake tree
//! checks that LLVM=1 reaches every make and that clang's folder is its own, but only a real
//! build shows that Debian's clang builds our configs, boots with our initramfs and stays
//! byte-reproducible. The copy, the same config in another `O=` folder of the same build
//! folder, is warm (ccache hits, under a minute). The other arches and `fast` with clang are
//! measured by hand (docs/builds.md). The build folder is the rest of the tier's
//! (target/tmp/e2e-build), so busybox is not built again.

mod common;

use common::{host, json, serial, stderr, stdout, str_at};
use std::path::{Path, PathBuf};

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

#[test]
fn allnoconfig_built_with_clang_boots_and_a_copy_in_another_folder_has_the_same_bytes() {
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

    // The same config under another name, so in an O= folder of its own, in the same build
    // folder (the same unpacked source, so the same paths for ccache): the same bytes, from the
    // warm cache. A build folder of its own would unpack the source again at another path.
    let dir = common::private_config(&build_dir(), "copy", "", &["clang"]);
    let copy_obj = build_dir().join("obj").join(common::kernel_folder(host(), "copy", &["clang"]));
    let env = [("TEENY_KERNEL_CONFIGS", dir.as_path())];
    let out = common::run(&build_dir(), &["--toolchain", "clang", "kernel", "copy"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = json(&copy_obj.join("teeny-build.json"));
    for artifact in ["/vmlinux/sha256", "/bzimage/sha256"] {
        assert_eq!(str_at(&copy, artifact), str_at(&record, artifact), "{artifact} differs between the two folders");
    }
    let (hits, misses) = (copy["ccache"]["hits"].as_u64().unwrap(), copy["ccache"]["misses"].as_u64().unwrap());
    assert!(hits > 10 * misses.max(1), "the copy compiled from the warm cache: {hits} hits, {misses} misses");
    std::fs::remove_dir_all(copy_obj).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
