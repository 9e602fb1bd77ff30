//! The fake kernel tree tier: `cargo xtask` as a user runs it, in the real builder image, on
//! tests/fakelinux, a kernel *source tree* whose make answers every target xtask calls in
//! milliseconds (see its Makefile). What a build does around make is checked in seconds:
//! locks, signals, logs, the checks before anything runs, exit statuses, the build record,
//! ccache and distcc workers.
//!
//! They need Docker (the builder image is built once if it is missing), but no kernel or
//! busybox sources, and compile no kernel (at most copies of one small C file). Each test
//! copies the tree into a temporary folder of its own (the switches of the fake make go into
//! that copy, fake-switches.mk) with a config folder of its own, and builds in this tier's build
//! folder, target/tmp/fake-build.

mod common;

use common::{host, json, serial, stderr, str_at};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A config of the fake tree: allnoconfig with a setting on and one off.
const CONFIG: &str =
    "#: base allnoconfig\n#: description fakelinux's smallest\nCONFIG_TTY=y\n# CONFIG_PRINTK is not set\n";

/// This tier's build folder: the end-to-end tier's and the user's are never touched.
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-build")
}

/// The `O=` folder of config NAME for `arch`.
fn obj_for(arch: common::Arch, name: &str) -> PathBuf {
    build_dir().join("obj").join(common::kernel_folder(arch, name, &[]))
}

fn obj(name: &str) -> PathBuf {
    obj_for(host(), name)
}

/// The log that the make steps of config NAME write.
fn log(name: &str) -> PathBuf {
    build_dir().join("logs").join(format!("linux-{}-{name}.log", host().dir))
}

/// The steps a run printed (`$ make …`), as it prints each before running it.
fn steps(out: &Output) -> Vec<String> {
    stderr(out).lines().filter(|l| l.starts_with("$ ")).map(str::to_owned).collect()
}

/// The release the tree's Makefile gives (VERSION.PATCHLEVEL.SUBLEVEL EXTRAVERSION), read as
/// kbuild reads it.
fn tree_version(tree: &Path) -> String {
    let text = std::fs::read_to_string(tree.join("Makefile")).unwrap();
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_default()
    };
    format!("{}.{}.{}{}", var("VERSION"), var("PATCHLEVEL"), var("SUBLEVEL"), var("EXTRAVERSION"))
}

/// The boot image a build reported (`PATH (N bytes)`, the one that is not vmlinux).
fn reported_boot_image(out: &Output, obj: &Path) -> PathBuf {
    let image = reported(out, obj).into_iter().find(|p| !p.ends_with("vmlinux"));
    image.unwrap_or_else(|| panic!("no boot image reported in:\n{}", stderr(out)))
}

/// Every file under `obj` that the build reported with its size (`PATH (N bytes)`).
fn reported(out: &Output, obj: &Path) -> Vec<PathBuf> {
    let err = stderr(out);
    err.lines()
        .filter_map(|l| l.strip_suffix(" bytes)")?.rsplit_once(" (").map(|(path, _)| PathBuf::from(path)))
        .filter(|p| p.starts_with(obj))
        .collect()
}

/// Every file under `dir` with its modification time, sorted.
fn mtimes(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    files_of(dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::metadata(dir.join(&f)).unwrap().modified().unwrap()))
        .collect()
}

/// Every file under `dir`, relative, sorted.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            files.push(path.strip_prefix(dir).unwrap().to_owned());
        }
    }
    files.sort();
    files
}

/// Every file and folder under `dir` with its size and time of change: what a run that writes
/// nothing (a dry run) leaves as it was, temporary files made and removed included.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut all: Vec<_> = files_of(dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::symlink_metadata(dir.join(&p)).unwrap();
            (p, meta.len(), meta.modified().unwrap())
        })
        .collect();
    all.push((PathBuf::new(), 0, std::fs::metadata(dir).unwrap().modified().unwrap()));
    all
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// Waits up to `limit` for `done`, panicking with `what` after.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The builder image, built once per run if it is missing, so that no test's time limit
/// includes building it.
fn builder() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let out = common::run(&build_dir(), &["builder"], &[]);
        assert!(out.status.success(), "cargo xtask builder failed");
    });
}

/// A test's own copy of tests/fakelinux and its own kernel config folder, in a temporary
/// folder (outside the repository, so that xtask mounts the tree read-only).
struct Fake {
    dir: PathBuf,
    tree: PathBuf,
    configs: PathBuf,
}

impl Fake {
    fn new(test: &str) -> Fake {
        builder();
        let dir = common::temp_dir(&format!("fake-{test}"));
        let (tree, configs) = (dir.join("linux"), dir.join("configs"));
        copy_tree(&common::root().join("tests/fakelinux"), &tree);
        std::fs::create_dir_all(&configs).unwrap();
        Fake { dir, tree, configs }
    }

    /// Writes the config NAME and removes what an earlier run left of its build on every arch
    /// (the `O=` folder, its lock, its log).
    fn config(&self, name: &str, text: &str) {
        std::fs::write(self.configs.join(format!("{name}.config")), text).unwrap();
        for arch in common::ARCHES {
            let obj = obj_for(arch, name);
            let _ = std::fs::remove_dir_all(&obj);
            let _ = std::fs::remove_file(obj.with_file_name(format!("linux-{}-{name}.lock", arch.dir)));
            let _ = std::fs::remove_file(build_dir().join("logs").join(format!("linux-{}-{name}.log", arch.dir)));
        }
    }

    fn config_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.configs.join(format!("{name}.config"))).unwrap()
    }

    /// The fake make's switches (FAKE_SLOW = 30, …), for the next make that starts.
    fn switches(&self, text: &str) {
        std::fs::write(self.tree.join("fake-switches.mk"), text).unwrap();
    }

    fn env(&self) -> Vec<(&'static str, &Path)> {
        vec![("TEENY_KERNEL_SOURCE", self.tree.as_path()), ("TEENY_KERNEL_CONFIGS", self.configs.as_path())]
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], extra: &[(&str, &Path)]) -> Output {
        let mut env = self.env();
        env.extend_from_slice(extra);
        common::run(&build_dir(), args, &env)
    }

    /// Starts `kernel NAME` in its own process group (as a shell starts a job) and returns
    /// once its build is in the slow part that FAKE_SLOW gives it.
    fn start_slow_build(&self, name: &str) -> Child {
        let marker = obj(name).join(".fakelinux-slow");
        let _ = std::fs::remove_file(&marker);
        let mut cmd = common::command(&build_dir(), &["kernel", name], &self.env());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn().unwrap();
        let start = Instant::now();
        while !marker.exists() {
            if child.try_wait().unwrap().is_some() {
                panic!("the slow build ended before its slow part:\n{}", stderr(&finish(child)));
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the slow build did not start its slow part in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // A failed test's copy stays, for a look at it.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits for a started xtask and echoes its output, as [`common::run`] does.
fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    eprintln!("$ cargo xtask (started) -> {}\n{}{}", out.status, common::stdout(&out), stderr(&out));
    out
}

#[test]
fn two_builds_of_one_folder_run_one_after_the_other() {
    let _g = serial();
    let fake = Fake::new("locks");
    fake.config("locks", CONFIG);
    fake.switches("FAKE_SLOW = 3\n");
    let first = fake.start_slow_build("locks");
    let first_pid = first.id();
    let first = std::thread::spawn(move || (finish(first), Instant::now()));
    // The second build's own make is quick: if it did not wait, it would end first.
    fake.switches("");
    let second = fake.run(&["kernel", "locks"]);
    let second_end = Instant::now();
    let (first, first_end) = first.join().unwrap();
    assert!(first.status.success() && second.status.success());
    let err = stderr(&second);
    let waiting = format!("waiting for {}: another cargo xtask builds there (pid {first_pid} ", obj("locks").display());
    assert!(err.contains(&waiting), "the second build did not say it waits: {err}");
    assert!(first_end < second_end, "the second build ended before the first one it should have waited for");
    assert!(!err.contains("taking over the lock"), "{err}");
}

/// Sends `signal` to a slow build (to its process group with `group`, as a terminal's Ctrl-C
/// does): its builder container must be gone within 5 s and its exit status 128 + signal.
fn interrupt(fake: &Fake, name: &str, signal: i32, group: bool) {
    let child = fake.start_slow_build(name);
    let pid = child.id();
    assert!(!common::containers_of(pid).is_empty(), "the slow build runs in no builder container");
    let target = if group { -(pid as i32) } else { pid as i32 };
    // SAFETY: kill(2) on a child of ours, not yet waited for.
    assert_eq!(unsafe { libc::kill(target, signal) }, 0);
    wait_until(Duration::from_secs(5), &format!("the builder container is gone after signal {signal}"), || {
        common::containers_of(pid).is_empty()
    });
    let out = finish(child);
    assert_eq!(out.status.code(), Some(128 + signal), "exit status after signal {signal}");
    let err = stderr(&out);
    assert!(err.contains("interrupted: stopping the running step"), "{err}");
    // The one before ended through its signal handler: it let go of the lock.
    assert!(!err.contains("taking over the lock"), "an interrupted build left its lock held: {err}");
}

#[test]
fn sigterm_ctrl_c_and_sighup_stop_the_builder_container_and_exit_with_128_plus_the_signal() {
    let _g = serial();
    let fake = Fake::new("signals");
    fake.config("signals", CONFIG);
    fake.switches("FAKE_SLOW = 60\n");
    interrupt(&fake, "signals", libc::SIGTERM, false);
    interrupt(&fake, "signals", libc::SIGINT, true);
    interrupt(&fake, "signals", libc::SIGHUP, false);
    // And the folder builds after them.
    fake.switches("");
    let out = fake.run(&["kernel", "signals"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("taking over the lock"), "an interrupted build left its lock held");
}

#[test]
fn a_build_killed_with_sigkill_takes_its_container_along_and_leaves_its_lock_to_the_next_build() {
    let _g = serial();
    let fake = Fake::new("stale");
    fake.config("stale", CONFIG);
    fake.switches("FAKE_SLOW = 60\n");
    let child = fake.start_slow_build("stale");
    let pid = child.id();
    // SAFETY: as in `interrupt`.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert_eq!(finish(child).status.code(), None);
    let record = json(&obj("stale").join("teeny-build.json"));
    assert_eq!(str_at(&record, "/status"), "running", "a killed build's record: {record:#}");
    // Nothing could stop its container but the container itself: its input ended with xtask.
    wait_until(Duration::from_secs(10), "the killed build's container is gone by itself", || {
        common::containers_of(pid).is_empty()
    });
    // The lock file still names the killed build: the next build takes the lock over.
    fake.switches("");
    let out = fake.run(&["kernel", "stale"]);
    assert!(out.status.success());
    let err = stderr(&out);
    let note = format!("note: taking over the lock of {} from a process that ended", obj("stale").display());
    assert!(err.contains(&note) && err.contains(&format!("(pid {pid} ")), "{err}");
}

#[test]
fn the_log_is_written_as_the_build_runs_and_the_last_runs_is_kept() {
    let _g = serial();
    let fake = Fake::new("log-live");
    fake.config("log-live", CONFIG);
    fake.switches("FAKE_SPAM = 3\n");
    assert!(fake.run(&["kernel", "log-live"]).status.success());
    let first = std::fs::read_to_string(log("log-live")).unwrap();
    assert!(first.contains("fakelinux spam 3 of 3"), "{first}");
    // While the next build runs, its lines are in the log already; the first run's is `.log.1`.
    fake.switches("FAKE_SLOW = 5\n");
    let child = fake.start_slow_build("log-live");
    wait_until(Duration::from_secs(10), "the running build's lines in its log", || {
        std::fs::read_to_string(log("log-live")).is_ok_and(|l| l.lines().any(|l| l.trim_start().starts_with("CC")))
    });
    let previous = log("log-live").with_extension("log.1");
    assert_eq!(std::fs::read_to_string(&previous).unwrap(), first, "the previous run's log");
    assert!(finish(child).status.success());
}

#[test]
fn build_output_goes_to_the_log_and_verbose_streams_it() {
    let _g = serial();
    let fake = Fake::new("logs");
    fake.config("logs", CONFIG);
    fake.switches("FAKE_SPAM = 100\n");
    let spam = |text: &str| text.lines().filter(|l| l.starts_with("fakelinux spam ")).count();
    let out = fake.run(&["kernel", "logs"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("$ make") && err.contains(&format!("(output: {})", log("logs").display())), "{err}");
    // The terminal gets one status line, which the fake make's first line (not spam) fills.
    assert_eq!(spam(&err), 0, "make's output is in the log only: {err}");
    let logged = std::fs::read_to_string(log("logs")).unwrap();
    assert_eq!(spam(&logged), 100, "{logged}");
    assert!(logged.contains("fakelinux spam 100 of 100"));
    let out = fake.run(&["-v", "kernel", "logs"]);
    assert!(out.status.success());
    assert_eq!(spam(&stderr(&out)), 100, "-v streams all of it");
}

#[test]
fn an_unwritable_ccache_folder_is_named_before_anything_runs() {
    let _g = serial();
    let fake = Fake::new("ccache-bad");
    fake.config("ccache-bad", CONFIG);
    let out = fake.run_with(&["kernel", "ccache-bad"], &[("TEENY_CCACHE_DIR", Path::new("/proc/teeny"))]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("the ccache folder /proc/teeny is not writable"), "{err}");
    assert!(steps(&out).is_empty() && !log("ccache-bad").exists(), "a step ran: {err}");
}

#[test]
fn paths_with_a_space_are_refused_before_anything_runs() {
    let _g = serial();
    let fake = Fake::new("spaces");
    fake.config("spaces", CONFIG);
    let spaced = fake.dir.join("fake build");
    let out = common::run(&spaced, &["kernel", "spaces"], &fake.env());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("the build folder {} contains a space", spaced.display())), "{err}");
    assert!(steps(&out).is_empty() && !spaced.join("logs").exists(), "a step ran: {err}");
    // A tree in a folder with a space, the same.
    let tree = fake.dir.join("linux tree");
    copy_tree(&fake.tree, &tree);
    let env = [("TEENY_KERNEL_SOURCE", tree.as_path()), ("TEENY_KERNEL_CONFIGS", fake.configs.as_path())];
    let out = common::run(&build_dir(), &["kernel", "spaces"], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("the kernel source {} contains a space", tree.display())), "{err}");
    assert!(steps(&out).is_empty() && !log("spaces").exists(), "a step ran: {err}");
}

#[test]
fn a_failing_kernel_build_exits_125_under_qemu_before_busybox_and_1_with_the_logs_end() {
    let _g = serial();
    let fake = Fake::new("broken");
    fake.config("broken", CONFIG);
    fake.switches("FAKE_FAIL = 1\n");
    let out = fake.run(&["qemu", "--kernel", "broken", "--", "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("(exit status 125: the command did not run"), "{err}");
    // The kernel is built first: its failure leaves busybox and the initramfs alone (neither
    // built, nor found up to date).
    assert!(!steps(&out).is_empty() && !err.contains("busybox"), "{err}");

    let out = fake.run(&["kernel", "broken"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("failed: exit status: 2; last lines of {}:", log("broken").display())), "{err}");
    assert!(err.contains("  | init/fake.c:1:1: error: fakelinux fails this build"), "{err}");
}

#[test]
fn clang_builds_with_llvm_1_in_a_folder_of_its_own_beside_gccs_and_through_the_cache() {
    let _g = serial();
    let fake = Fake::new("clang");
    // Two compiles with make's $(CC), through ccache's masquerade folder, in a cache of its own.
    fake.switches("FAKE_CC = 2\n");
    let cache = fake.dir.join("ccache");
    let env = [("TEENY_CCACHE_DIR", cache.as_path())];
    fake.config("tc", CONFIG);
    fake.config("tc2", CONFIG);
    let clang_obj = |name: &str| build_dir().join("obj").join(common::kernel_folder(host(), name, &["clang"]));
    for name in ["tc", "tc2"] {
        let _ = std::fs::remove_dir_all(clang_obj(name));
    }
    let counts = |obj: &Path| {
        let record = json(&obj.join("teeny-build.json"));
        (record["ccache"]["hits"].as_u64(), record["ccache"]["misses"].as_u64())
    };
    assert!(fake.run_with(&["kernel", "tc"], &env).status.success());
    assert_eq!(counts(&obj("tc")), (Some(0), Some(2)), "gcc, cold");
    let gcc_files = mtimes(&obj("tc"));

    let out = fake.run_with(&["--toolchain", "clang", "kernel", "tc"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let steps = steps(&out);
    assert!(steps.len() == 3 && steps.iter().all(|s| s.split(' ').any(|w| w == "LLVM=1")), "{steps:?}");
    let o = format!("O={}", clang_obj("tc").display());
    assert!(steps.iter().all(|s| s.split(' ').any(|w| w == o)), "every make in {o}: {steps:?}");
    let record = json(&clang_obj("tc").join("teeny-build.json"));
    assert_eq!(str_at(&record, "/toolchain"), "clang");
    assert_eq!(str_at(&record, "/compiler"), "clang (fakelinux) 0", "the compiler as the kernel's .config says");
    let make: Vec<&str> = record["make"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(make.len() == 3 && make.iter().all(|m| m.split(' ').any(|w| w == "LLVM=1")), "{make:?}");
    let vmlinux = String::from_utf8_lossy(&std::fs::read(clang_obj("tc").join("vmlinux")).unwrap()).into_owned();
    assert!(vmlinux.contains("(clang (fakelinux) 0)") && vmlinux.contains(" LLVM=1\n"), "{vmlinux}");
    assert_eq!(counts(&clang_obj("tc")), (Some(0), Some(2)), "clang's objects are not gcc's");
    // gcc's folder is as it was: not a file written.
    assert_eq!(mtimes(&obj("tc")), gcc_files, "the clang build touched gcc's folder");
    // clang's compiles come from the cache in another O= folder.
    assert!(fake.run_with(&["--toolchain", "clang", "kernel", "tc2"], &env).status.success());
    assert_eq!(counts(&clang_obj("tc2")), (Some(2), Some(0)), "clang through ccache, warm");

    // An unknown toolchain is one line naming the known ones, from the flag or the variable.
    let out = fake.run(&["--toolchain", "icc", "kernel", "tc"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "error: invalid value `icc` for --toolchain: choose one of gcc, clang\n");
    let out = fake.run_with(&["kernel", "tc"], &[("TEENY_TOOLCHAIN", Path::new("icc"))]);
    assert_eq!(out.status.code(), Some(2));
    let line = "error: TEENY_TOOLCHAIN=icc (from the environment, for --toolchain): choose one of gcc, clang\n";
    assert_eq!(stderr(&out), line);
}

#[test]
fn the_build_record_names_the_tree_the_compiler_the_commands_and_what_came_out() {
    let _g = serial();
    let fake = Fake::new("record");
    fake.config("record", &format!("{CONFIG}CONFIG_LOCALVERSION=\"-rec\"\n"));
    let before = files_of(&fake.tree);
    let out = fake.run(&["kernel", "record"]);
    assert!(out.status.success());
    let obj = obj("record");
    let release = std::fs::read_to_string(obj.join("include/config/kernel.release")).unwrap().trim().to_owned();
    assert_eq!(release, format!("{}-rec", tree_version(&fake.tree)), "CONFIG_LOCALVERSION reached the build");
    assert!(stderr(&out).contains(&format!("kernel release {release}\n")), "{}", stderr(&out));

    let record = json(&obj.join("teeny-build.json"));
    assert_eq!(str_at(&record, "/config"), "record");
    assert_eq!(str_at(&record, "/arch"), host().name);
    assert_eq!(str_at(&record, "/base"), "allnoconfig");
    assert_eq!(str_at(&record, "/source/version"), tree_version(&fake.tree));
    assert_eq!(str_at(&record, "/source/dir"), fake.tree.to_str().unwrap());
    assert!(record.pointer("/source/sha256").unwrap().is_null(), "a tree has no tarball checksum");
    let dot_config = std::fs::read_to_string(obj.join(".config")).unwrap();
    let cc = dot_config.lines().find_map(|l| l.strip_prefix("CONFIG_CC_VERSION_TEXT=")).unwrap();
    assert_eq!(str_at(&record, "/compiler"), cc.trim_matches('"'));
    assert_eq!(str_at(&record, "/toolchain"), "gcc");
    let make: Vec<&str> = record["make"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let o = format!("make O={} ", obj.display());
    assert!(make.len() == 3 && make.iter().all(|m| m.starts_with(&o)), "{make:?}");
    assert!(make[0].ends_with(" allnoconfig") && make[1].ends_with(" olddefconfig"), "{make:?}");
    assert!(make[2].split(' ').next_back().unwrap().starts_with("-j"), "{make:?}");
    let image = reported_boot_image(&out, &obj);
    for (key, file) in [("vmlinux", obj.join("vmlinux")), ("bzimage", image)] {
        let bytes = record[key]["bytes"].as_u64().unwrap();
        assert_eq!(bytes, std::fs::metadata(&file).unwrap().len(), "{key}: {}", file.display());
        assert_eq!(record[key]["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(record["warnings"].as_u64(), Some(0));
    assert_eq!(str_at(&record, "/status"), "pass");
    assert!(record.get("error").is_none(), "{record:#}");
    assert_eq!(files_of(&fake.tree), before, "the build wrote into the tree");

    // The reproducer beside it: a script for sh that builds this config again from a clone.
    let reproducer = obj.join("reproducer");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&reproducer).unwrap().permissions());
    assert_eq!(mode & 0o111, 0o111, "the reproducer is not executable");
    let script = std::fs::read_to_string(&reproducer).unwrap();
    assert!(script.starts_with("#!/bin/sh\n") && script.contains("\nset -eu\n"), "{script}");
    let last = script.lines().last().unwrap();
    let expected = format!(
        "cargo xtask --arch {} --kernel-source {} --kernel-configs {} kernel record",
        host().name,
        fake.tree.display(),
        fake.configs.display()
    );
    assert_eq!(last, expected, "{script}");
    // This repository is a git checkout: the clone checks out the commit that built it.
    let head = Command::new("git").arg("-C").arg(common::root()).args(["rev-parse", "HEAD"]).output().unwrap();
    let head = common::stdout(&head).trim().to_owned();
    assert!(script.contains(&format!("\ngit checkout {head}\n")), "{script}");
    assert!(script.contains(&format!("\nexport TEENY_DOWNLOADS={}\n", common::downloads().display())), "{script}");
    let parsed = Command::new("sh").arg("-n").arg(&reproducer).status().unwrap();
    assert!(parsed.success(), "sh -n {}: {script}", reproducer.display());
}

#[test]
fn the_build_record_says_running_during_a_build_then_pass_or_fail_with_the_error() {
    let _g = serial();
    let fake = Fake::new("status");
    fake.config("status", CONFIG);
    fake.switches("FAKE_SLOW = 5\n");
    let record = || json(&obj("status").join("teeny-build.json"));
    let child = fake.start_slow_build("status");
    // Written before make ran, with what was known then; what came out is not there yet.
    let running = record();
    assert_eq!(str_at(&running, "/status"), "running", "{running:#}");
    assert_eq!(str_at(&running, "/config"), "status");
    assert_eq!(running["make"].as_array().map(Vec::len), Some(3), "{running:#}");
    assert!(str_at(&running, "/started").ends_with('Z'), "{running:#}");
    for key in ["vmlinux", "bzimage", "duration_s"] {
        assert!(running[key].is_null(), "{key} while running: {running:#}");
    }
    assert!(obj("status").join("reproducer").is_file(), "the reproducer is written with the first record");
    assert!(finish(child).status.success());
    let passed = record();
    assert_eq!(str_at(&passed, "/status"), "pass");
    assert!(passed["vmlinux"]["bytes"].as_u64().is_some() && passed["duration_s"].as_f64().is_some(), "{passed:#}");

    fake.switches("FAKE_FAIL = 1\n");
    let out = fake.run(&["kernel", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let failed = record();
    assert_eq!(str_at(&failed, "/status"), "fail", "{failed:#}");
    let error = str_at(&failed, "/error");
    assert!(error.contains("failed: exit status: 2") && !error.contains('\n'), "{error}");
    assert!(failed["vmlinux"].is_null(), "a failed build names no kernel: {failed:#}");
}

#[test]
fn a_source_tree_always_runs_make_and_an_edit_in_it_is_rebuilt() {
    let _g = serial();
    let fake = Fake::new("tree");
    fake.config("tree", CONFIG);
    let out = fake.run(&["kernel", "tree"]);
    assert!(out.status.success() && steps(&out).len() == 3, "base config, olddefconfig, build");
    // Only make knows what changed in a tree: it runs again, on the .config it has.
    let out = fake.run(&["kernel", "tree"]);
    let err = stderr(&out);
    assert!(out.status.success() && !err.contains("is up to date"), "{err}");
    let steps_run = steps(&out);
    assert!(steps_run.len() == 1 && steps_run[0].split(' ').next_back().unwrap().starts_with("-j"), "{err}");
    // One edit in the tree: its version changes, so it is configured again, and built.
    let makefile = fake.tree.join("Makefile");
    let text = std::fs::read_to_string(&makefile).unwrap();
    std::fs::write(&makefile, text.replacen("\nEXTRAVERSION = ", "\nEXTRAVERSION = -edited", 1)).unwrap();
    let edited = tree_version(&fake.tree);
    assert!(edited.contains("-edited"), "{edited}");
    let out = fake.run(&["kernel", "tree"]);
    assert!(out.status.success() && steps(&out).len() == 3, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("kernel release {edited}\n")), "{}", stderr(&out));
}

#[test]
fn every_arch_builds_its_boot_image_with_its_cross_compiler() {
    let _g = serial();
    let fake = Fake::new("arches");
    fake.config("arches", CONFIG);
    for arch in common::ARCHES {
        let out = fake.run(&["--arch", arch.name, "kernel", "arches"]);
        assert!(out.status.success(), "{}", arch.name);
        let obj = obj_for(arch, "arches");
        // An arch whose firmware loads vmlinux (ppc64le's pseries) reports no other image.
        let images = reported(&out, &obj);
        assert!(images.contains(&obj.join("vmlinux")), "{}: {images:?}", arch.name);
        if let Some(image) = images.iter().find(|p| !p.ends_with("vmlinux")) {
            assert!(image.starts_with(obj.join("arch")), "{}", image.display());
            assert!(std::fs::read_to_string(image).unwrap().starts_with("fakelinux boot image"));
        }
        assert_eq!(str_at(&json(&obj.join("teeny-build.json")), "/arch"), arch.name);
        // The fake vmlinux names make's CROSS_COMPILE=: none for the host's arch.
        let vmlinux = std::fs::read_to_string(obj.join("vmlinux")).unwrap();
        let cross = vmlinux.lines().find_map(|l| l.split_once(" CROSS_COMPILE=")).unwrap().1;
        let cross = cross.split(' ').next().unwrap();
        assert_eq!(cross.is_empty(), arch.name == host().name, "{}: CROSS_COMPILE={cross}", arch.name);
    }
}

#[test]
fn kernel_save_writes_a_hand_edit_back_in_place_and_nothing_when_nothing_changed() {
    let _g = serial();
    let fake = Fake::new("save");
    let text = "#: base allnoconfig\n# a comment that stays\nCONFIG_TTY=y\n# CONFIG_PRINTK is not set\n";
    fake.config("save", text);
    assert!(fake.run(&["kernel", "save", "--configure"]).status.success());
    let dot_config = obj("save").join(".config");
    common::edit_config(&dot_config, "CONFIG_TTY=y", "# CONFIG_TTY is not set");
    common::edit_config(&dot_config, "# CONFIG_NET is not set", "CONFIG_NET=y");
    let out = fake.run(&["kernel", "save", "--save"]);
    assert!(out.status.success() && stderr(&out).contains("saved 2 changed setting(s)"), "{}", stderr(&out));
    let saved = "#: base allnoconfig\n# a comment that stays\n# CONFIG_TTY is not set\n# CONFIG_PRINTK is not set\nCONFIG_NET=y\n";
    assert_eq!(fake.config_text("save"), saved);
    let out = fake.run(&["kernel", "save", "--save"]);
    assert!(out.status.success() && stderr(&out).contains("nothing to save"), "{}", stderr(&out));
    assert_eq!(fake.config_text("save"), saved);
}

#[test]
fn a_setting_kconfig_dropped_is_explained_from_the_trees_kconfig() {
    let _g = serial();
    let fake = Fake::new("dropped");
    fake.config("dropped", "#: base allnoconfig\nCONFIG_NET=y\nCONFIG_FAKE_NET_TOOL=y\nCONFIG_NO_SUCH_OPTION=y\n");
    fake.switches("FAKE_DROP = FAKE_NET_TOOL NO_SUCH_OPTION\n");
    let out = fake.run(&["kernel", "dropped", "--configure"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("settings that did not take effect after olddefconfig:"), "{err}");
    assert!(err.contains("  CONFIG_FAKE_NET_TOOL: requested y, got n; bool \"A fake option that needs networking\"; Depends on: NET [=y]"), "{err}");
    assert!(err.contains("  CONFIG_NO_SUCH_OPTION: requested y, but no Kconfig defines it"), "{err}");
    // The fake's .config is what its Kconfig gives, as kconfiglib reads it.
    assert!(!err.contains("differently from conf"), "{err}");
}

#[test]
fn fragments_and_arch_defconfigs_come_from_the_tree_and_unknown_ones_are_refused_before_make() {
    let _g = serial();
    let fake = Fake::new("fragments");
    fake.config("fragments", "#: base teeny_defconfig\n#: merge teeny_fake.config teeny_arch.config\nCONFIG_TTY=y\n");
    assert!(fake.run(&["kernel", "fragments", "--configure"]).status.success());
    let config = common::config_of(&obj("fragments").join(".config"));
    let value = |symbol: &str| config.iter().rev().find(|(k, _)| k == symbol).map(|(_, v)| v.as_str());
    // teeny_defconfig's, kernel/configs/'s, arch/*/configs/'s and ours.
    assert_eq!((value("NET"), value("MODULES")), (Some("y"), Some("n")), "{config:?}");
    assert_eq!(value("FAKE_NET_TOOL"), Some("y"), "{config:?}");
    assert!(value("FAKE_ARCH").is_some_and(|v| v.len() > 2), "{config:?}");
    assert_eq!(value("TTY"), Some("y"));

    fake.config("nobase", "#: base nosuch_defconfig\n");
    let out = fake.run(&["kernel", "nobase", "--configure"]);
    assert!(!out.status.success() && steps(&out).is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("base target `nosuch_defconfig` is unknown to this kernel"), "{}", stderr(&out));
    fake.config("nofragment", "#: base allnoconfig\n#: merge nosuch.config\n");
    let out = fake.run(&["kernel", "nofragment", "--configure"]);
    assert!(!out.status.success() && steps(&out).is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("fragment nosuch.config is in neither"), "{}", stderr(&out));
}

#[test]
fn a_config_merges_one_of_ours_and_a_variant_that_its_base_already_holds_is_the_base() {
    let _g = serial();
    let fake = Fake::new("merge");
    fake.config("mbase", "#: base allnoconfig\nCONFIG_PRINTK=y\nCONFIG_NET=y\n");
    fake.config("mtop", "#: base allnoconfig\n#: merge mbase\n# CONFIG_NET is not set\nCONFIG_PROC_FS=y\n");
    let out = fake.run(&["kernel", "mtop", "--configure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = common::config_of(&obj("mtop").join(".config"));
    let value = |symbol: &str| config.iter().rev().find(|(k, _)| k == symbol).map(|(_, v)| v.to_owned());
    // The merged config's lines, the file's own overriding them; TTY from the arch's console.
    let got = ["PRINTK", "NET", "PROC_FS", "TTY"].map(value);
    assert_eq!(got, ["y", "n", "y", "y"].map(|v| Some(v.to_owned())), "{config:?}");
    // The merged config is an input: a build configures again after an edit of it, not before
    // (`--configure` always does).
    let configured = |out: &Output| stderr(out).lines().any(|l| l.starts_with("configured"));
    assert!(!configured(&fake.run(&["kernel", "mtop"])));
    fake.config("mbase", "#: base allnoconfig\nCONFIG_PRINTK=y\nCONFIG_NET=y\nCONFIG_SYSFS=y\n");
    let out = fake.run(&["kernel", "mtop"]);
    assert!(out.status.success() && configured(&out), "{}", stderr(&out));
    assert!(common::config_of(&obj("mtop").join(".config")).contains(&("SYSFS".into(), "y".into())));

    fake.config("ca", "#: base allnoconfig\n#: merge cb\n");
    fake.config("cb", "#: base allnoconfig\n#: merge ca\n");
    let out = fake.run(&["kernel", "ca", "--configure"]);
    assert!(!out.status.success() && steps(&out).is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("`#: merge ca` makes a circle"), "{}", stderr(&out));

    // A base with 9p and both virtio transports: `--share` boots it, no `-share` folder.
    let share = "CONFIG_NET=y\nCONFIG_INET=y\nCONFIG_NETWORK_FILESYSTEMS=y\nCONFIG_NET_9P=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\nCONFIG_VIRTIO_MENU=y\nCONFIG_PCI=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n";
    fake.config("has9p", &format!("#: base allnoconfig\n{share}"));
    assert!(fake.run(&["kernel", "has9p"]).status.success());
    let dir = fake.dir.to_str().unwrap();
    let out = fake.run(&["qemu", "--kernel", "has9p", "--share", dir, "--no-build", "--", "true"]);
    assert!(stderr(&out).contains("kernel has9p already has what `has9p-share` adds"), "{}", stderr(&out));
    assert!(!obj("has9p-share").exists());
    let out = fake.run(&["qemu", "--kernel", "mbase", "--share", dir, "--no-build", "--", "true"]);
    assert!(
        !out.status.success() && stderr(&out).contains("--no-build: mbase-share was never built"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unsaved_edits_of_dot_config_are_named_recorded_and_dropped_by_configure() {
    let _g = serial();
    let fake = Fake::new("unsaved");
    fake.config("edits", "#: base allnoconfig\nCONFIG_PRINTK=y\n");
    assert!(fake.run(&["kernel", "edits", "--configure"]).status.success());
    let dot_config = obj("edits").join(".config");
    let clean = std::fs::read_to_string(&dot_config).unwrap();
    common::edit_config(&dot_config, "# CONFIG_NET is not set", "CONFIG_NET=y");
    let out = fake.run(&["kernel", "edits"]);
    let line =
        "building with unsaved changes to .config: CONFIG_NET=y (keep them with --save, drop them with --configure)";
    assert!(out.status.success() && stderr(&out).contains(line), "{}", stderr(&out));
    let record = common::json(&obj("edits").join("teeny-build.json"));
    assert_eq!(record["unsaved_changes"], serde_json::json!(["CONFIG_NET=y"]));
    let out = fake.run(&["qemu", "--kernel", "edits", "--no-build", "--", "true"]);
    assert!(stderr(&out).contains("built with unsaved changes to .config: CONFIG_NET=y"), "{}", stderr(&out));
    // --configure makes .config from the file again, and says what it dropped.
    let out = fake.run(&["kernel", "edits", "--configure"]);
    assert!(stderr(&out).contains("dropped unsaved changes to .config: CONFIG_NET=y"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dot_config).unwrap(), clean);
    let out = fake.run(&["kernel", "edits"]);
    assert!(out.status.success() && !stderr(&out).contains("unsaved changes"), "{}", stderr(&out));
    assert_eq!(common::json(&obj("edits").join("teeny-build.json"))["unsaved_changes"], serde_json::json!([]));
    // Saved, an edit is the file's: nothing unsaved.
    common::edit_config(&dot_config, "# CONFIG_NET is not set", "CONFIG_NET=y");
    assert!(fake.run(&["kernel", "edits", "--save"]).status.success());
    let out = fake.run(&["kernel", "edits"]);
    assert!(out.status.success() && !stderr(&out).contains("unsaved changes"), "{}", stderr(&out));
}

#[test]
fn a_modules_config_installs_its_modules_into_a_layer_of_their_own() {
    use std::io::Read;
    let _g = serial();
    let fake = Fake::new("modules");
    fake.config("modules", "#: base allnoconfig\nCONFIG_MODULES=y\n");
    let out = fake.run(&["kernel", "modules"]);
    let err = stderr(&out);
    assert!(out.status.success() && steps(&out).iter().any(|s| s.contains(" modules_install ")), "{err}");
    let layer = obj("modules").join("teeny-modules.cpio.gz");
    assert!(err.contains(&format!("{} (", layer.display())) && err.contains(" bytes, 1 module)"), "{err}");
    let release = std::fs::read_to_string(obj("modules").join("include/config/kernel.release")).unwrap();
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&layer).unwrap()).read_to_end(&mut cpio).unwrap();
    let mut names = Vec::new();
    let mut cursor = std::io::Cursor::new(cpio.as_slice());
    loop {
        let reader = cpio::NewcReader::new(cursor).unwrap();
        if reader.entry().is_trailer() {
            break;
        }
        names.push(reader.entry().name().to_owned());
        cursor = reader.finish().unwrap();
    }
    let module = format!("lib/modules/{}/kernel/fake/teeny_fake.ko", release.trim());
    assert!(names.contains(&module), "{module} not in {names:?}");
}

#[test]
fn the_compiler_cache_serves_the_same_compile_in_another_o_folder() {
    let _g = serial();
    let fake = Fake::new("ccache");
    fake.switches("FAKE_CC = 1\n");
    let cache = fake.dir.join("ccache");
    let env = [("TEENY_CCACHE_DIR", cache.as_path())];
    let counts = |name: &str| {
        let record = json(&obj(name).join("teeny-build.json"));
        (record["ccache"]["hits"].as_u64(), record["ccache"]["misses"].as_u64())
    };
    for name in ["ccache-a", "ccache-b"] {
        fake.config(name, CONFIG);
    }
    assert!(fake.run_with(&["kernel", "ccache-a"], &env).status.success());
    assert_eq!(counts("ccache-a"), (Some(0), Some(1)), "a cold cache");
    assert!(fake.run_with(&["kernel", "ccache-b"], &env).status.success());
    assert_eq!(counts("ccache-b"), (Some(1), Some(0)), "the same compile in another O= folder");
    assert!(fake.run_with(&["--no-ccache", "kernel", "ccache-b"], &env).status.success());
    assert!(json(&obj("ccache-b").join("teeny-build.json"))["ccache"].is_null(), "--no-ccache");
}

/// Compiles the distcc worker on this machine's `port` has done, from its statistics port
/// (PORT + 1); None if that does not answer.
fn worker_compiles(port: u16) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port + 1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).ok()?;
    page.lines().find_map(|l| l.strip_prefix("dcc_compile_ok ")?.trim().parse().ok())
}

fn docker(args: &[&str]) -> Output {
    std::process::Command::new("docker").args(args).output().expect("cannot run docker")
}

/// Whether a container of that exact name exists, running or stopped.
fn container_exists(name: &str) -> bool {
    let out = docker(&["ps", "--all", "--quiet", "--filter", &format!("name=^{name}$")]);
    !common::stdout(&out).trim().is_empty()
}

/// Containers that a test started, removed when it ends, passed or failed, so that their
/// ports are free for the next run.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker(&["rm", "-f", name]);
        }
    }
}

#[test]
fn distcc_workers_compile_to_the_same_bytes_and_a_lost_worker_falls_back_to_local() {
    let _g = serial();
    let fake = Fake::new("distcc");
    // Unusual ports, each with its statistics port (PORT + 1) free beside it: a user's own
    // workers keep running. `dead` has nothing on it; `other` runs another builder tag.
    let (one, two, other, dead, unused) = (47310u16, 47312u16, 47314u16, 47316u16, 47318u16);
    let other_name = "teeny-fake-distcc-other";
    let _containers = Containers(
        [one, two, unused].map(|p| format!("teeny-distcc-{p}")).into_iter().chain([other_name.to_owned()]).collect(),
    );
    let port = |p: u16| p.to_string();
    let mut image = String::new();
    for p in [one, two] {
        let _ = fake.run(&["distcc", "stop", "--port", &port(p)]);
        let out = fake.run(&["distcc", "serve", "--port", &port(p), "-j", "2"]);
        let said = common::stdout(&out);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(said.contains(&format!("  use it:  cargo xtask --distcc 127.0.0.1:{p}/2 kernel NAME")), "{said}");
        let prefix = format!("distcc worker teeny-distcc-{p}: ");
        image = said.lines().find_map(|l| l.strip_prefix(&prefix)?.split(' ').next()).unwrap().to_owned();
    }
    assert!(image.starts_with("teeny-linux-builder:"), "{image}");

    // Bad input: a taken port, a malformed network, a malformed worker.
    let out = fake.run(&["distcc", "serve", "--port", &port(one)]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains(&format!("a distcc worker already runs on port {one}")), "{err}");
    let out = fake.run(&["distcc", "serve", "--port", &port(unused), "--allow", "10.0.0/8"]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("--allow 10.0.0/8: not an IPv4 address"), "{err}");
    assert!(!container_exists(&format!("teeny-distcc-{unused}")), "a worker started with a bad --allow");
    let out = fake.run(&["--distcc", "host:port", "kernel", "distcc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("distcc worker `host:port`: PORT is not a port number"), "{}", stderr(&out));

    // A worker of another builder image: distccd from ours, told it is another tag (in a file
    // that nobody, distccd's user, can read).
    let tag = fake.dir.join("other-tag");
    std::fs::write(&tag, "teeny-linux-builder:other\n").unwrap();
    std::fs::set_permissions(&tag, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let volume = format!("--volume={}:/etc/teeny-builder-tag:ro", tag.display());
    let _ = docker(&["rm", "-f", other_name]);
    let started = docker(&[
        "run",
        "--detach",
        "--rm",
        &format!("--name={other_name}"),
        "--network=host",
        "--user=65534:65534",
        &volume,
        &image,
        "distccd",
        "--daemon",
        "--no-detach",
        "--listen",
        "127.0.0.1",
        "--port",
        &port(other),
        "--allow",
        "127.0.0.1/32",
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    wait_until(Duration::from_secs(10), "the other tag's distccd listens", || {
        std::net::TcpStream::connect(("127.0.0.1", other)).is_ok()
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", dead)).is_err(), "something listens on port {dead}");
    let out = fake.run(&["distcc", "status"]);
    let status = common::stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    for p in [one, two] {
        assert!(status.contains(&format!("teeny-distcc-{p} on port {p} runs {image}\n")), "{status}");
        assert!(status.contains(&format!("127.0.0.1:{p} answers: {image} (the same as this checkout's)")), "{status}");
    }

    // FAKE_CC's compiles in two O= folders: here, and over distcc, both without ccache so that
    // every compile is sent. Enough of them that worker two can be stopped mid-build.
    const OBJECTS: u64 = 150;
    fake.switches(&format!("FAKE_CC = {OBJECTS}\n"));
    for name in ["distcc", "distcc-local"] {
        fake.config(name, CONFIG);
    }
    let out = fake.run(&["--no-ccache", "kernel", "distcc-local"]);
    assert!(out.status.success(), "the local build failed");
    let hosts = format!("127.0.0.1:{one}/2,127.0.0.1:{two}/2,127.0.0.1:{other},127.0.0.1:{dead}");
    let log = fake.dir.join("distcc-build.err");
    // What a worker compiled for the build: since before it, but the build's tag probe.
    let before = [one, two].map(|p| (p, worker_compiles(p).unwrap() + 1));
    let done = |p: u16| {
        let before = before.iter().find(|(q, _)| *q == p).unwrap().1;
        Some(worker_compiles(p)?.saturating_sub(before))
    };
    let mut build =
        common::command(&build_dir(), &["--no-ccache", "--distcc", &hosts, "kernel", "distcc"], &fake.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
    let build_log = || std::fs::read_to_string(&log).unwrap();
    // Once worker two has done some compiles, it goes away; the build goes on without it.
    let start = Instant::now();
    while done(two).unwrap_or(0) < 20 {
        assert!(build.try_wait().unwrap().is_none(), "the build ended before worker two compiled 20:\n{}", build_log());
        assert!(start.elapsed() < Duration::from_secs(60), "worker {two} compiled too little in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let two_done = done(two).unwrap();
    let two_at = start.elapsed();
    let out = fake.run(&["distcc", "stop", "--port", &port(two)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let two_stopped = start.elapsed();
    assert!(
        build.try_wait().unwrap().is_none(),
        "the build ended before worker two was stopped (give it more objects to compile):\n{}",
        build_log()
    );
    let status = build.wait().unwrap();
    eprintln!(
        "worker two: {two_done} compiles at {two_at:?}, stopped at {two_stopped:?}, build done at {:?}",
        start.elapsed()
    );
    let err = build_log();
    eprintln!("$ cargo xtask --no-ccache --distcc {hosts} kernel distcc (started) -> {status}\n{err}");
    assert!(status.success(), "the build failed after losing a worker");
    let needs = format!("this build needs {image}");
    let dropped = format!("distcc: dropping 127.0.0.1:{other}: it runs teeny-linux-builder:other, {needs}\n");
    assert!(err.contains(&dropped), "{err}");
    assert!(err.contains(&format!("distcc: dropping 127.0.0.1:{dead}: it does not answer")), "{err}");
    assert!(err.contains(&format!("distcc: 127.0.0.1:{two} stopped answering during the build")), "{err}");
    let one_done = done(one).unwrap();
    assert!(err.contains(&format!("distcc: 127.0.0.1:{one} compiled {one_done} files\n")), "{err}");
    // Each worker compiled some, and together nearly all (what worker two had under way when it
    // was stopped, and what it finished after it was last asked, are not counted).
    assert!(two_done >= 20 && one_done + two_done >= OBJECTS * 9 / 10, "compiles: {one_done} and {two_done}");

    // The same bytes as the local build's; vmlinux holds the objects, each other bytes.
    let (sent, local) =
        (json(&obj("distcc").join("teeny-build.json")), json(&obj("distcc-local").join("teeny-build.json")));
    for key in ["/vmlinux/sha256", "/bzimage/sha256"] {
        assert_eq!(str_at(&sent, key), str_at(&local, key), "{key}: distcc gave other bytes than the local build");
    }
    let read = |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vmlinux = read(obj("distcc").join("vmlinux"));
    let (first, last) =
        (read(obj("distcc").join("init/fake-1.o")), read(obj("distcc").join(format!("init/fake-{OBJECTS}.o"))));
    assert!(first != last && vmlinux.ends_with(&last), "vmlinux does not end with the last object");
    assert!(vmlinux.len() > OBJECTS as usize * first.len(), "vmlinux does not hold the objects");

    // A worker stopped outside xtask: `serve` replaces it, `stop` removes it.
    let name_one = format!("teeny-distcc-{one}");
    assert!(docker(&["stop", "--time", "1", &name_one]).status.success());
    let out = fake.run(&["distcc", "serve", "--port", &port(one), "-j", "2"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("removing {name_one}, a worker that was stopped but not removed")), "{err}");
    assert!(worker_compiles(one).is_some(), "the new worker on {one} gives no statistics");
    assert!(docker(&["stop", "--time", "1", &name_one]).status.success());
    assert!(container_exists(&name_one));
    let out = fake.run(&["distcc", "stop", "--port", &port(one)]);
    assert!(out.status.success(), "distcc stop of the stopped worker {name_one}: {}", stderr(&out));
    assert!(!container_exists(&name_one), "distcc stop left the stopped worker {name_one}");

    let _ = docker(&["rm", "-f", other_name]);
    let out = fake.run(&["distcc", "status"]);
    let status = common::stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!status.contains(&format!("port {one}")) && !status.contains(&format!("port {two}")), "{status}");
    for p in [one, two] {
        let out = fake.run(&["distcc", "stop", "--port", &port(p)]);
        let err = stderr(&out);
        assert!(!out.status.success() && err.contains(&format!("no distcc worker runs on port {p} here")), "{err}");
    }
}

#[test]
fn a_build_folder_without_room_for_a_kernel_is_named_with_the_figures_before_make() {
    let _g = serial();
    // A 64 MiB tmpfs as the build folder: mounting one needs root (CI runs as root).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let fake = Fake::new("full");
    fake.config("full", CONFIG);
    let small = common::temp_dir("full-disk");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"]).arg(&small).status().unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed");
    let out = fake.run_with(&["kernel", "full"], &[("TEENY_BUILD_DIR", small.as_path())]);
    let _ = Command::new("umount").arg(&small).status();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not enough free space for building the kernel in ") && err.contains("GiB needed"), "{err}");
    assert!(!steps(&out).iter().any(|s| s.contains(" -j")), "the build ran: {err}");
}

#[test]
fn a_dry_run_prints_the_commands_and_leaves_the_build_folder_as_it_was() {
    let _g = serial();
    let fake = Fake::new("dry");
    fake.config("dry", CONFIG);
    std::fs::create_dir_all(build_dir()).unwrap();
    let before = listing(&build_dir());
    let out = fake.run(&["--dry-run", "kernel", "dry"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The make steps in order, each with the builder's command line; then what stopped it.
    let o = format!("$ make O={} ", obj("dry").display());
    let made = steps(&out);
    assert!(made.len() == 3 && made.iter().all(|s| s.starts_with(&o)), "{err}");
    assert!(made[0].ends_with(" allnoconfig") && made[1].ends_with(" olddefconfig"), "{err}");
    assert!(made[2].split(' ').next_back().unwrap().starts_with("-j"), "{err}");
    let engine = err.lines().filter(|l| l.starts_with("  (in the builder: docker run ")).count();
    assert_eq!(engine, 3, "{err}");
    let stop =
        format!("dry run: the next steps need {}, which this run did not make", obj("dry").join(".config").display());
    assert!(err.trim_end().ends_with(&stop), "{err}");
    assert_eq!(listing(&build_dir()), before, "the dry run wrote under the build folder");
    assert!(!obj("dry").exists());

    // Built, a dry boot prints qemu's command line with --cpus and --memory, and boots nothing.
    let built = fake.run(&["kernel", "dry"]);
    assert!(built.status.success());
    let image = reported_boot_image(&built, &obj("dry"));
    let initrd = fake.dir.join("initrd.cpio");
    std::fs::write(&initrd, "").unwrap();
    let before = listing(&build_dir());
    let initrd_arg = initrd.to_str().unwrap();
    let args = ["qemu", "--kernel", "dry", "--initrd", initrd_arg, "--cpus", "2", "--memory", "256M", "--dry-run"];
    let out = fake.run(&[&args[..], &["--", "uname", "-a"]].concat());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let qemu = steps(&out).into_iter().find(|s| s.starts_with("$ qemu-system-")).unwrap_or_else(|| panic!("{err}"));
    assert!(qemu.contains(&format!(" -kernel {} -initrd {initrd_arg} ", image.display())), "{qemu}");
    assert!(qemu.ends_with(" -smp 2 -m 256M"), "{qemu}");
    assert!(!err.contains("booted"), "{err}");
    // A source tree always runs make: its step is shown, then the kernel it left is booted.
    assert!(steps(&out).iter().any(|s| s.starts_with(&o) && s.contains(" -j")), "{err}");
    assert_eq!(listing(&build_dir()), before, "the dry boot wrote under the build folder");
}
