//! End-to-end tests with real kernels: they run `cargo xtask …` exactly as a user does, with the
//! real builder image, real busybox and kernel builds, and real qemu boots (TCG).
//!
//! They need Docker, qemu-system-ARCH for each architecture and the sources: network access or
//! the offline variables of the README (TEENY_DOWNLOADS, TEENY_KERNEL_SOURCE). Tests run one at
//! a time in a build folder of their own (target/tmp/e2e-build), so a user's build/ is never
//! touched; only the download cache is shared. Nothing here names a kernel version, a host
//! architecture or a build folder of one: the release comes from the build, the folders from
//! the per-arch data in `common`. What needs no real kernel (locks, signals, logs, exit 125,
//! distcc) is in `fake_tree.rs`, on the fake kernel tree.
//!
//! A real kernel costs 3–5 minutes cold on 2 cores, so the suite builds these four and one
//! `fast` per other arch, each once per run, and every test that needs a kernel uses one of
//! them:
//!
//! | kernel (host arch unless named) | tests | why a real one |
//! |---|---|---|
//! | `allnoconfig` | the walk-through's build, incremental and up to date; headless commands, exit status, timeout; the pty console; an initramfs without init; a warm-cache copy in another `O=` (same bytes); bench's row; config `--configure`/`--save`/explain (configure only, in private `O=` folders) | the walk-through's kernel and the default of `qemu` |
//! | `fast` | microvm + vmlinux boot; bench `--profile` | its own boot path (PVH, microvm) and the profile's symbols |
//! | `modules-share-net` (allnoconfig where the host has no `modules` config) | `--share` read-write and `:ro`, the checkout's script; `--net` to a host server, `--forward` to a guest `nc`; modules_install, the modules layer, `modprobe` | 9p and virtio-net over virtio (the arch's transport) in a kernel; a kernel with loadable modules: one kernel for both, as each costs a cold build |
//! | `fast-debug` | `--gdb`: `hbreak start_kernel`, `bt`, `lx-version` | DWARF and the kernel's gdb scripts |
//! | the other arches' `fast` | cross-built busybox and kernel boot, `uname -m`, exit status; bench across arches, `--bootgraph`, `--profile` | cross compilers and other boards |

mod common;

use common::{config_of, edit_config, host, json, others, serial, shipped, stderr, stdout, str_at, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    common::root()
}

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

/// `cargo xtask ARGS` in the tests' build folder, with extra environment variables.
fn xtask_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    common::run(&build_dir(), args, env)
}

fn xtask(args: &[&str]) -> Output {
    xtask_env(args, &[])
}

fn ok(args: &[&str]) -> String {
    let out = xtask(args);
    assert!(out.status.success(), "cargo xtask {} failed", args.join(" "));
    stdout(&out)
}

fn obj_of(config: &str) -> PathBuf {
    build_dir().join("obj").join(common::kernel_folder(host(), config, &[]))
}

/// The release a built kernel reports, from the build itself.
fn release_of(config: &str) -> String {
    let path = obj_of(config).join("include/config/kernel.release");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
}

fn record_of(config: &str) -> serde_json::Value {
    json(&obj_of(config).join("teeny-build.json"))
}

/// The build record's vmlinux and boot image: sizes and sha256.
fn images(record: &serde_json::Value) -> [serde_json::Value; 2] {
    ["vmlinux", "bzimage"].map(|k| record[k].clone())
}

#[test]
fn builder_image_is_built_once() {
    let _g = serial();
    ok(&["builder"]);
    let out = xtask(&["builder"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("docker build"), "the unchanged Dockerfile was rebuilt");
}

#[test]
fn fetch_verifies_the_busybox_tarball() {
    let _g = serial();
    ok(&["fetch"]);
    let good = std::fs::read(common::downloads().join("busybox-1.37.0.tar.bz2")).unwrap();
    // A truncated copy in a fresh cache and build folder: refused before anything is unpacked.
    let dir = temp_dir("truncated");
    let bad = dir.join("busybox-1.37.0.tar.bz2");
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let build = dir.join("build");
    let out = xtask_env(&["fetch"], &[("TEENY_DOWNLOADS", &dir), ("TEENY_BUILD_DIR", &build)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("checksum mismatch") && err.contains(bad.to_str().unwrap()), "{err}");
    assert!(err.contains("3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4"), "{err}");
    assert!(!build.join("src").exists(), "something was extracted from a bad tarball");
    // The same bad tarball where its tree was unpacked before, from the good one: still refused.
    let out = xtask_env(&["fetch"], &[("TEENY_DOWNLOADS", &dir)]);
    assert!(!out.status.success(), "a wrong pinned tarball passed because its tree was unpacked");
    assert!(stderr(&out).contains("checksum mismatch"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

fn initramfs() -> PathBuf {
    ok(&["initramfs"]);
    build_dir().join(format!("initramfs-busybox-{}.cpio.gz", host().dir))
}
#[test]
fn initramfs_lists_init_console_and_busybox_and_is_reproducible() {
    let _g = serial();
    let path = initramfs();
    let first = std::fs::read(&path).unwrap();
    // GNU cpio reads what we wrote.
    let gz = std::fs::File::open(&path).unwrap();
    let gunzip = Command::new("gzip").arg("-dc").stdin(gz).output().unwrap();
    let list = Command::new("cpio")
        .args(["-itv", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&gunzip.stdout)?;
            c.wait_with_output()
        })
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    // `cpio -tv` lines end in the name, or in `name -> target` for symlinks.
    let name_of = |l: &str| l.split(" -> ").next().and_then(|l| l.split_whitespace().last()).map(str::to_owned);
    let line = |name: &str| {
        list.lines().find(|l| name_of(l).as_deref() == Some(name)).unwrap_or_else(|| panic!("no {name} in:\n{list}"))
    };
    assert!(line("init").starts_with("-rwx"), "{}", line("init"));
    let console = line("dev/console");
    assert!(console.starts_with('c') && console.contains("5,") && console.contains(" 1 "), "{console}");
    assert!(line("bin/busybox").starts_with("-rwx"));
    assert!(line("bin/sh").starts_with('l'), "applets stay symlinks");
    // The same inputs give the same bytes.
    std::fs::remove_file(&path).unwrap();
    initramfs();
    assert!(std::fs::read(&path).unwrap() == first, "two builds differ");
}

#[test]
fn allnoconfig_builds_with_every_requested_symbol_and_is_incremental() {
    let _g = serial();
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(out.status.success());
    let report = stderr(&out);
    // The sizes and the release, as the build record has them.
    let record = record_of("allnoconfig");
    let vmlinux = format!("{}/vmlinux ({} bytes)", obj_of("allnoconfig").display(), record["vmlinux"]["bytes"]);
    assert!(report.contains(&vmlinux), "{vmlinux} in {report}");
    assert!(report.contains(&format!("kernel release {}", release_of("allnoconfig"))), "{report}");
    let effective = config_of(&obj_of("allnoconfig").join(".config"));
    for (symbol, value) in config_of(&shipped("allnoconfig")) {
        let got = effective.iter().find(|(k, _)| *k == symbol).map(|(_, v)| v.as_str()).unwrap_or("n");
        assert_eq!(got, value, "CONFIG_{symbol}");
    }
    // Nothing changed: .config is not rewritten (so nothing is rebuilt).
    let mtime = || std::fs::metadata(obj_of("allnoconfig").join(".config")).unwrap().modified().unwrap();
    let before = mtime();
    ok(&["kernel", "allnoconfig"]);
    assert_eq!(before, mtime());
}

#[test]
fn kernel_rejects_unknown_names_and_lists_the_known_ones() {
    let _g = serial();
    let out = xtask(&["kernel", "nosuchconfig"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown kernel config `nosuchconfig`") && err.contains("allnoconfig"), "{err}");
    let list = ok(&["kernel", "--list"]);
    for name in ["allnoconfig", "alldefconfig", "defconfig", "fast"] {
        assert!(list.lines().any(|l| l.trim_start().starts_with(name)), "{list}");
    }
}

/// A private copy of allnoconfig named NAME (see [`common::private_config`]); returns its folder.
fn private_config(name: &str, extra: &str) -> PathBuf {
    common::private_config(&build_dir(), name, extra, &[])
}

#[test]
fn kernel_config_edit_round_trip() {
    let _g = serial();
    let dir = private_config("roundtrip", "");
    let (file, env) = (dir.join("roundtrip.config"), [("TEENY_KERNEL_CONFIGS", dir.as_path())]);
    let original = std::fs::read_to_string(&file).unwrap();
    assert!(xtask_env(&["kernel", "roundtrip", "--configure"], &env).status.success());
    let config = obj_of("roundtrip").join(".config");
    edit_config(&config, "# CONFIG_PRINTK_TIME is not set", "CONFIG_PRINTK_TIME=y");
    let edited = config_of(&config);
    assert!(xtask_env(&["kernel", "roundtrip", "--save"], &env).status.success());
    // Every line of the user's kept, exactly one added: not what follows from it.
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved, format!("{original}CONFIG_PRINTK_TIME=y\n"));
    // Applying the saved file again gives the edited configuration.
    assert!(xtask_env(&["kernel", "roundtrip", "--configure"], &env).status.success());
    assert_eq!(config_of(&config), edited);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Boots `config` headless and runs `cmd` in the guest.
fn guest(config: &str, cmd: &[&str]) -> Output {
    let args: Vec<&str> = ["qemu", "--kernel", config, "--"].iter().chain(cmd).copied().collect();
    xtask(&args)
}

/// No qemu of ours is running. One whose parent was just killed gets SIGKILL from the kernel
/// (PR_SET_PDEATHSIG) but takes a moment to go: allow it 10 s.
fn no_qemu_left() {
    let obj = build_dir().join("obj");
    let ours = || {
        std::fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
            (cmdline.starts_with("qemu-system-") && cmdline.contains(obj.to_str().unwrap())).then_some(cmdline)
        })
    };
    let start = Instant::now();
    while let Some(cmdline) = ours() {
        assert!(start.elapsed() < Duration::from_secs(10), "qemu left running: {cmdline}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The headless guarantees of `cargo xtask qemu -- CMD` for one kernel config.
fn guest_runs_commands(config: &str) {
    let out = guest(config, &["uname", "-r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), release_of(config));
    assert!(stderr(&out).contains("guest uptime at init"), "boot times are reported");

    let out = guest(config, &["cat", "/proc/mounts"]);
    let mounts = String::from_utf8_lossy(&out.stdout);
    assert!(mounts.lines().any(|l| l.starts_with("none /proc proc")), "{mounts}");
    assert!(mounts.lines().any(|l| l.starts_with("none /sys sysfs")), "{mounts}");

    assert_eq!(guest(config, &["sh", "-c", "exit 7"]).status.code(), Some(7));
    no_qemu_left();
}

#[test]
fn guest_runs_commands_with_their_exit_status() {
    let _g = serial();
    guest_runs_commands("allnoconfig");
}

/// Prints the console's device number as its /dev node has it and as the kernel gives it, then
/// /dev's entries.
const CONSOLE_NODE: &str = "c=$(cat /sys/class/tty/console/active); c=${c##* }; set -- $(stat -c '%t %T' /dev/$c); printf '%d:%d\\n' 0x$1 0x$2; cat /sys/class/tty/$c/dev; echo /dev/*";

/// `fast`'s init-fast opened the console's node from the archive (the arch table's
/// `console_node`): its number is the kernel's device, and mdev did not run (it would have
/// made /dev/kmsg).
fn console_node_is_the_kernels(out: &Output, what: &str) {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(out.status.success() && lines.len() == 3, "{what}: {text}{}", stderr(out));
    assert_eq!(lines[0], lines[1], "{what}: the archive's console node is not the kernel's device");
    assert!(!lines[2].split(' ').any(|p| p == "/dev/kmsg"), "{what}: mdev ran: {}", lines[2]);
}

#[test]
fn fast_profile_boots_as_its_config_says_and_runs_commands() {
    let _g = serial();
    guest_runs_commands("fast");
    // The boot follows the config file's directives: the image it names, qemu's arguments.
    let text = std::fs::read_to_string(shipped("fast")).unwrap();
    let out = guest("fast", &["true"]);
    let err = stderr(&out);
    let qemu = err.lines().find(|l| l.starts_with("$ qemu-system-")).unwrap_or_else(|| panic!("no qemu line: {err}"));
    if text.lines().any(|l| l.trim() == "#: boot vmlinux") {
        assert!(qemu.contains(&format!("-kernel {}/vmlinux", obj_of("fast").display())), "{qemu}");
    }
    for args in text.lines().filter_map(|l| l.strip_prefix("#: qemu ")) {
        assert!(qemu.contains(args.trim()), "{args} in {qemu}");
    }
    // The init its `rdinit=` names runs as PID 1 (a missing one would leave the kernel to try
    // /sbin/init, busybox's).
    let rdinit = text.lines().filter_map(|l| l.strip_prefix("#: append ")).flat_map(str::split_whitespace);
    if let Some(init) = rdinit.filter_map(|w| w.strip_prefix("rdinit=")).next_back() {
        let out = guest("fast", &["tr '\\0' ' ' < /proc/1/cmdline"]);
        assert_eq!(stdout(&out).trim(), format!("/bin/sh {init}"), "{}", stderr(&out));
    }
    console_node_is_the_kernels(&guest("fast", &[CONSOLE_NODE]), "the host arch's fast");
}

#[test]
fn initramfs_without_init_fails_instead_of_hanging() {
    let _g = serial();
    // A valid archive holding only dev/console.
    let dir = temp_dir("noinit");
    let initrd = dir.join("noinit.cpio.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&initrd).unwrap(), flate2::Compression::default());
    for (name, mode) in [("dev", 0o040755), ("dev/console", 0o020600)] {
        let b = cpio::newc::Builder::new(name).mode(mode).rdev_major(5).rdev_minor(1);
        b.write(&mut gz, 0).finish().unwrap();
    }
    cpio::newc::trailer(&mut gz).unwrap();
    gz.finish().unwrap();
    let start = Instant::now();
    let out = xtask(&["qemu", "--initrd", initrd.to_str().unwrap(), "--", "true"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("the kernel panicked"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(100), "took {:?}: not a prompt failure", start.elapsed());
    no_qemu_left();
    std::fs::remove_dir_all(dir).unwrap();
}

/// The row of ARCH/CONFIG in bench's JSON report.
fn row<'a>(report: &'a serde_json::Value, arch: &str, config: &str) -> &'a serde_json::Value {
    let rows = report["results"].as_array().unwrap_or_else(|| panic!("no results in {report:#}"));
    rows.iter()
        .find(|r| r["arch"] == arch && r["config"] == config)
        .unwrap_or_else(|| panic!("no row for {arch}/{config} in {report:#}"))
}

/// A row's measured times: each of boot and host wall has min ≤ median ≤ max, all above zero.
fn measured(row: &serde_json::Value) {
    for what in ["guest_boot_s", "host_wall_s"] {
        let [min, median, max] = ["min", "median", "max"].map(|s| common::f64_at(row, &format!("/{what}_{s}")));
        assert!(0.0 < min && min <= median && median <= max, "{what}: {min} {median} {max} in {row:#}");
    }
}

#[test]
fn bench_reports_a_row_with_json_and_charts() {
    let _g = serial();
    let dir = temp_dir("bench");
    let json_path = dir.join("bench.json");
    let args = ["bench", "--configs", "allnoconfig", "--runs", "2", "--json", json_path.to_str().unwrap()];
    let out = ok(&[&args[..], &["--profile", "fast"]].concat());
    let report = json(&json_path);
    let arch = host().name;
    let allnoconfig = row(&report, arch, "allnoconfig");
    assert_eq!(allnoconfig["runs"], 2, "{allnoconfig:#}");
    assert_eq!(allnoconfig["accel"], "tcg", "{allnoconfig:#}");
    measured(allnoconfig);
    // The sizes are the built kernel's, in the JSON and in the table.
    let bytes = record_of("allnoconfig")["vmlinux"]["bytes"].as_u64().unwrap();
    assert_eq!(allnoconfig["vmlinux_bytes"].as_u64(), Some(bytes), "{allnoconfig:#}");
    assert_eq!(allnoconfig["build"]["config"], "allnoconfig", "the build record is included");
    let size = format!("| allnoconfig | {:.1}M |", bytes as f64 / (1 << 20) as f64);
    assert!(out.lines().any(|l| l.starts_with(&size)), "{size} in {out}");
    assert!(report["machine"]["cpus"].as_u64().is_some_and(|n| n > 0), "{:#}", report["machine"]);
    assert!(out.contains("find . | cpio") || out.contains("find | cpio"), "packing comparison: {out}");
    let svg = std::fs::read_to_string(build_dir().join("bench/latest/bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("allnoconfig"));
    // --profile fast: a row for it too, its boot in named phases, and the functions in them.
    measured(row(&report, arch, "fast"));
    timeline_accounts_for_the_boot(&out, &report, arch, "fast");
    profile_names_functions(&out, &report, arch, "fast", true);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The profile of ARCH/CONFIG in the table, the JSON and the chart: functions with their phase
/// and share, the top one drawn. `freeing`: the phase that frees init memory names a function
/// (`free_reserved_area` on the machine this was written on; other boards sample other ones).
fn profile_names_functions(out: &str, report: &serde_json::Value, arch: &str, config: &str, freeing: bool) {
    assert!(out.contains("| freeing init memory |"), "{out}");
    let profile = row(report, arch, config)["timeline"]["profile"].as_array().expect("a profile").clone();
    assert!(!profile.is_empty(), "no function sampled");
    for entry in &profile {
        let share = common::f64_at(entry, "/share");
        assert!(share > 0.0 && share <= 1.0, "{entry:#}");
        assert!(!str_at(entry, "/function").is_empty() && !str_at(entry, "/phase").is_empty(), "{entry:#}");
    }
    if freeing {
        let entry = profile.iter().find(|e| e["phase"] == "freeing init memory").expect("a function that frees");
        assert!(out.contains(str_at(entry, "/function")), "{entry:#} in the table: {out}");
    }
    let chart = std::fs::read_to_string(build_dir().join(format!("bench/latest/profile-{arch}-{config}.svg"))).unwrap();
    let top = str_at(&profile[0], "/function");
    assert!(chart.starts_with("<svg") && chart.contains(&format!(">{top}</text>")), "{top} in {chart}");
}

/// The instrumented boot of ARCH/CONFIG in bench's output and JSON: its phases in the table,
/// at least 95% of the guest's uptime in named phases, and the chart written.
fn timeline_accounts_for_the_boot(out: &str, report: &serde_json::Value, arch: &str, config: &str) {
    let summary = format!("{arch}/{config}: guest uptime at init ");
    let line = out.lines().find(|l| l.starts_with(&summary)).unwrap_or_else(|| panic!("{summary} in {out}"));
    let timeline = &row(report, arch, config)["timeline"];
    let attributed = common::f64_at(timeline, "/attributed");
    assert!(attributed >= 0.95, "{attributed} of the uptime in named phases: {line}");
    assert!(common::f64_at(timeline, "/guest_uptime_s") > 0.0, "{timeline:#}");
    for phase in ["| early setup, until the first initcall | guest |", "| initcalls | guest |", "| init: mounts until"]
    {
        assert!(out.contains(phase), "{phase} in {out}");
    }
    let phases = timeline["phases"].as_array().expect("phases");
    for side in ["host", "guest"] {
        assert!(phases.iter().any(|p| p["side"] == side && common::f64_at(p, "/duration_s") >= 0.0), "{side}");
    }
    let chart =
        std::fs::read_to_string(build_dir().join(format!("bench/latest/bootgraph-{arch}-{config}.svg"))).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("seconds since qemu started"), "{chart}");
}

#[test]
fn a_built_kernel_is_up_to_date_without_make_until_its_config_changes() {
    let _g = serial();
    ok(&["kernel", "allnoconfig"]);
    // Busybox and the initramfs too, so that the boot below has nothing left to build.
    initramfs();
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is up to date") && !err.contains("$ make"), "{err}");
    // A booted command on a built tree runs no container at all.
    let out = guest("allnoconfig", &["true"]);
    assert!(out.status.success() && !stderr(&out).contains("$ make"), "{}", stderr(&out));
    // One more line in the config file: make runs again (and finds the .config it already has).
    let dir = temp_dir("changed-config");
    let text = std::fs::read_to_string(shipped("allnoconfig")).unwrap();
    std::fs::write(dir.join("allnoconfig.config"), text + "# CONFIG_PRINTK_TIME is not set\n").unwrap();
    let out = xtask_env(&["kernel", "allnoconfig"], &[("TEENY_KERNEL_CONFIGS", &dir)]);
    assert!(out.status.success() && stderr(&out).contains("$ make"), "{}", stderr(&out));
    // Back to the repository's file: a change again, so make runs once more.
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(out.status.success() && stderr(&out).contains("$ make"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn user_errors_are_caught_before_any_work() {
    let _g = serial();
    // Earlier runs' folders and the `latest` link: a typo must leave them as they were.
    let bench = build_dir().join("bench");
    std::fs::create_dir_all(&bench).unwrap();
    let runs = || {
        let mut names: Vec<String> =
            std::fs::read_dir(&bench).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        (names, std::fs::read_link(bench.join("latest")).ok())
    };
    let before = runs();
    let out = xtask(&["bench", "--configs", "allnoconfig,fsat", "--runs", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown kernel config `fsat`: choose one of") && !err.contains("boot 1/1"), "{err}");
    assert_eq!(runs(), before, "a run folder was made or `latest` moved");
    let other = others()[0].name;
    let out = xtask(&["bench", "--configs", "allnoconfig", "--runs", "1", "--profile", &format!("{other}/fsat")]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("unknown kernel config `fsat`") && !err.contains("boot 1/1"),
        "{err}"
    );

    let out = xtask(&["--kernel", "fast", "qemu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--kernel is an option of `cargo xtask qemu --kernel`"), "{}", stderr(&out));
}

#[test]
fn a_copy_of_allnoconfig_in_another_folder_builds_from_the_warm_cache_to_the_same_bytes() {
    let _g = serial();
    // `copy` is allnoconfig in an O= folder of its own. Built after it with the same compiler
    // cache, it compiles from the cache (a build's commands name no O= path) into the same bytes.
    ok(&["kernel", "allnoconfig"]);
    let reference = record_of("allnoconfig");
    let dir = private_config("copy", "");
    let out = xtask_env(&["kernel", "copy"], &[("TEENY_KERNEL_CONFIGS", dir.as_path())]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("ccache: "), "{}", stderr(&out));
    let copy = record_of("copy");
    let (hits, misses) = (copy["ccache"]["hits"].as_u64().unwrap(), copy["ccache"]["misses"].as_u64().unwrap());
    assert!(hits > 10 * misses.max(1), "allnoconfig's objects come from the cache: {hits} hits, {misses} misses");
    assert_eq!(images(&copy), images(&reference), "the same config in another O= folder gave other bytes");
    std::fs::remove_dir_all(obj_of("copy")).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn configure_drops_a_hand_edit_and_the_clean_kernel_is_up_to_date_with_its_bytes() {
    let _g = serial();
    ok(&["kernel", "allnoconfig"]);
    let before = images(&record_of("allnoconfig"));
    let dot_config = obj_of("allnoconfig").join(".config");
    edit_config(&dot_config, "# CONFIG_PRINTK_TIME is not set", "CONFIG_PRINTK_TIME=y");
    let out = xtask(&["kernel", "allnoconfig", "--configure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("dropped unsaved changes to .config: CONFIG_PRINTK_TIME=y"), "{}", stderr(&out));
    // The same .config as before the edit: up to date, no make, the same bytes.
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(stderr(&out).contains("kernel allnoconfig is up to date"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("$ make") && !stderr(&out).contains("unsaved changes"), "{}", stderr(&out));
    assert_eq!(images(&record_of("allnoconfig")), before);
}

#[test]
fn kernel_config_save_without_changes_leaves_the_file_byte_identical() {
    let _g = serial();
    let dir = private_config("unchanged", "");
    let (file, env) = (dir.join("unchanged.config"), [("TEENY_KERNEL_CONFIGS", dir.as_path())]);
    let original = std::fs::read(&file).unwrap();
    assert!(xtask_env(&["kernel", "unchanged", "--configure"], &env).status.success());
    let out = xtask_env(&["kernel", "unchanged", "--save"], &env);
    assert!(out.status.success());
    assert!(stderr(&out).contains("nothing to save"), "{}", stderr(&out));
    assert!(std::fs::read(&file).unwrap() == original, "the file changed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn kernel_config_save_flips_a_user_line_in_place() {
    let _g = serial();
    let dir = private_config("flip", "");
    let (file, env) = (dir.join("flip.config"), [("TEENY_KERNEL_CONFIGS", dir.as_path())]);
    let original = std::fs::read_to_string(&file).unwrap();
    assert!(xtask_env(&["kernel", "flip", "--configure"], &env).status.success());
    let config = obj_of("flip").join(".config");
    edit_config(&config, "CONFIG_BINFMT_SCRIPT=y", "# CONFIG_BINFMT_SCRIPT is not set");
    let edited = config_of(&config);
    assert!(xtask_env(&["kernel", "flip", "--save"], &env).status.success());
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved, original.replace("CONFIG_BINFMT_SCRIPT=y\n", "# CONFIG_BINFMT_SCRIPT is not set\n"));
    assert!(xtask_env(&["kernel", "flip", "--configure"], &env).status.success());
    assert_eq!(config_of(&config), edited);

    // PROC_FS has a prompt only with EXPERT: kconfig would turn it back on, so nothing is saved
    // and the error says why.
    edit_config(&config, "CONFIG_PROC_FS=y", "# CONFIG_PROC_FS is not set");
    let out = xtask_env(&["kernel", "flip", "--save"], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not saved") && err.contains("CONFIG_PROC_FS: requested n, got y") && err.contains("EXPERT [=n]"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn kernel_config_explains_selects_and_unmet_dependencies() {
    let _g = serial();
    let dir = temp_dir("configs-explain");
    let text = "#: base allnoconfig\nCONFIG_64BIT=y\nCONFIG_VIRTIO=y\nCONFIG_VIRTIO_BLK=y\n# CONFIG_NO_SUCH_OPTION is not set\n";
    std::fs::write(dir.join("explain.config"), text).unwrap();
    let out = xtask_env(&["kernel", "explain", "--configure"], &[("TEENY_KERNEL_CONFIGS", dir.as_path())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = |prefix: &str| {
        err.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} in {err}"))
    };
    // VIRTIO has no prompt: only the symbols that select it can turn it on.
    let virtio = line("CONFIG_VIRTIO: requested y, got n");
    assert!(
        virtio.contains("Selected by: ") && virtio.contains("VIRTIO_PCI [=n]") && virtio.contains("VIRTIO_MMIO [=n]"),
        "{virtio}"
    );
    let blk = line("CONFIG_VIRTIO_BLK: requested y, got n");
    assert!(blk.contains("Depends on: VIRTIO [=n] && BLK_DEV [=n]"), "{blk}");
    line("CONFIG_NO_SUCH_OPTION: requested n, but no Kconfig defines it");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_single_argument_runs_as_a_shell_command_line() {
    let _g = serial();
    let out = guest("allnoconfig", &["echo a | tr a b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b");
    assert_eq!(guest("allnoconfig", &["exit 3"]).status.code(), Some(3));
    no_qemu_left();
}

#[test]
fn memory_reaches_the_guest_and_a_dry_run_prints_the_same_qemu_line() {
    let _g = serial();
    let mem_total = |out: &Output| -> u64 {
        let text = stdout(out);
        let kb = text.split_whitespace().nth(1).and_then(|n| n.parse().ok());
        kb.unwrap_or_else(|| panic!("no MemTotal in {text:?}: {}", stderr(out)))
    };
    let cmd = "grep MemTotal /proc/meminfo";
    let small = xtask(&["qemu", "--", cmd]);
    let big = xtask(&["qemu", "--memory", "512M", "--", cmd]);
    // qemu's default is 128 MiB; the kernel keeps some for itself, so compare with margins.
    assert!(mem_total(&small) < 128 * 1024 && mem_total(&big) > 384 * 1024, "{} / {}", stdout(&small), stdout(&big));
    let echoed = |out: &Output| stderr(out).lines().find(|l| l.starts_with("$ qemu-system-")).map(str::to_owned);
    let dry = xtask(&["--dry-run", "qemu", "--memory", "512M", "--", cmd]);
    assert!(dry.status.success() && stdout(&dry).is_empty(), "{}", stderr(&dry));
    let line = echoed(&big).expect("the real run echoes qemu's command line");
    assert!(line.contains(" -m 512M"), "{line}");
    assert_eq!(echoed(&dry), Some(line), "a dry run prints the command the real run runs");
    no_qemu_left();
}

#[test]
fn timeout_bounds_the_command_too_and_exits_124() {
    let _g = serial();
    initramfs();
    let start = Instant::now();
    let out = xtask(&["qemu", "--kernel", "allnoconfig", "--timeout", "25", "--", "sleep", "1000"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    let err = stderr(&out);
    assert!(err.contains("timed out after 25 s during the command") && err.contains("last console lines"), "{err}");
    no_qemu_left();
}

#[test]
fn kvm_either_works_or_fails_with_its_cause_and_the_way_out() {
    let _g = serial();
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        // No usable /dev/kvm: refused before anything is built, naming the device.
        let out = xtask(&["qemu", "--kvm", "--", "true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("--kvm: ") && err.contains("/dev/kvm") && !err.contains("\n$ "), "{err}");
        return;
    }
    initramfs();
    // Where KVM fails, qemu says so when the guest reaches an instruction KVM cannot emulate:
    // about 145 s after start on the machine this was written on. Before, that message ended
    // up hidden above a register dump, after a timeout, with qemu left stopped.
    let out = xtask(&["qemu", "--kvm", "--timeout", "280", "--", "uname", "-r"]);
    let err = stderr(&out);
    if out.status.success() {
        assert_eq!(stdout(&out).trim(), release_of("allnoconfig"), "KVM works here: {err}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "a failure, not a timeout: {err}");
    assert!(err.contains("qemu failed:\n  | KVM internal error"), "{err}");
    assert!(err.contains("KVM does not work on this host; run without --kvm"), "{err}");
    assert!(!err.contains("RAX="), "the register dump is not the cause: {err}");
    no_qemu_left();
}

/// `cargo xtask ARGS` on a terminal of its own (a pty), as a user runs the interactive console.
struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills in two new descriptors, which we then own.
        let rc =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = common::command(&build_dir(), args, &[]);
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe. The pty becomes the controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot run xtask");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal { child, master, rx, seen: String::new() }
    }

    /// Waits until the output after byte `from` satisfies `done`; false on timeout.
    fn wait(&mut self, from: usize, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen[from..]) {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => return false,
            }
        }
        true
    }

    fn type_in(&mut self, keys: &str) {
        use std::io::Write;
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Whether xtask (and so qemu) ended within `limit`.
    fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        eprintln!("terminal transcript:\n{}", self.seen);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both inits (allnoconfig's /init, fast's /init-fast) and both console set-ups (qemu's
/// default serial, fast's `-nodefaults -serial mon:stdio`) give the terminal a job-control shell.
#[test]
fn interactive_console_has_job_control_and_ctrl_c_interrupts() {
    let _g = serial();
    initramfs();
    for config in ["allnoconfig", "fast"] {
        job_control_and_ctrl_c(config);
    }
}

fn job_control_and_ctrl_c(config: &str) {
    let mut term = Terminal::start(&["qemu", "--kernel", config]);
    let prompt = |s: &str| s.trim_end_matches(' ').ends_with('#');
    assert!(term.wait(0, Duration::from_secs(300), |s| s.contains("Boot took")), "no boot");
    let booted = term.seen.find("Boot took").unwrap();
    assert!(term.wait(booted, Duration::from_secs(30), prompt), "no prompt");
    // The shell is not PID 1 (the kernel drops Ctrl-Z for a job whose parent is).
    let asked = term.seen.len();
    term.type_in("echo shell-pid-$$\r");
    assert!(term.wait(asked, Duration::from_secs(10), |s| s.contains("shell-pid-") && s.ends_with("# ")));
    assert!(!term.seen[asked..].contains("shell-pid-1\r"), "the shell is PID 1");
    // Ctrl-Z stops a job, `jobs` lists it, `fg` resumes it, Ctrl-C ends it.
    term.type_in("sleep 30\r");
    let typed = term.seen.len();
    assert!(term.wait(typed, Duration::from_secs(10), |s| s.contains("sleep 30")), "no echo");
    std::thread::sleep(Duration::from_secs(1));
    let sent = term.seen.len();
    term.type_in("\x1a");
    assert!(term.wait(sent, Duration::from_secs(5), prompt), "Ctrl-Z did not stop `sleep 30`");
    let stopped = term.seen.len();
    term.type_in("jobs\r");
    assert!(
        term.wait(stopped, Duration::from_secs(5), |s| s.contains("Stopped") && s.contains("sleep 30") && prompt(s)),
        "jobs does not list the stopped job"
    );
    let listed = term.seen.len();
    term.type_in("fg\r");
    assert!(term.wait(listed, Duration::from_secs(5), |s| s.contains("sleep 30")), "fg did not resume the job");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!prompt(&term.seen[listed..]), "the resumed job ended early");
    let sent = term.seen.len();
    term.type_in("\x03");
    assert!(term.wait(sent, Duration::from_secs(5), prompt), "Ctrl-C did not end `sleep 30`");
    assert!(!term.seen.contains("job control turned off"), "no job control");
    // `exit` ends the shell, then init stops the guest, and qemu ends.
    term.type_in("exit\r");
    assert!(term.ends_within(Duration::from_secs(30)), "exit did not end qemu");
    // What the guest printed last is still in the reader's channel.
    let said = |s: &str| s.contains("init: the shell exited");
    assert!(term.wait(0, Duration::from_secs(5), said), "init did not say why the guest stops");
    no_qemu_left();
}

#[test]
fn ctrl_a_x_quits_the_console() {
    let _g = serial();
    initramfs();
    for config in ["allnoconfig", "fast"] {
        let mut term = Terminal::start(&["qemu", "--kernel", config]);
        assert!(term.wait(0, Duration::from_secs(300), |s| s.contains("Boot took")), "no boot of {config}");
        term.type_in("\x01x");
        assert!(term.ends_within(Duration::from_secs(10)), "Ctrl-a x did not end qemu ({config})");
        no_qemu_left();
    }
}

/// `cargo xtask qemu -- CMD` with `input` on its standard input.
fn guest_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let full: Vec<&str> = ["qemu", "--kernel", "allnoconfig"].iter().chain(args).copied().collect();
    let mut child = common::command(&build_dir(), &full, &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!("$ cargo xtask {}\n{}", full.join(" "), stderr(&out));
    out
}

#[test]
fn the_console_protocol_is_bounded_and_cannot_be_forged() {
    let _g = serial();
    initramfs();
    // A command's output cannot end it, change its status or fake a panic.
    let out = guest("allnoconfig", &["echo TEENY_END:7; echo Kernel panic - not syncing: no; echo TEENY_BEGIN"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "TEENY_END:7\nKernel panic - not syncing: no\nTEENY_BEGIN\n");
    // `exit N` as words ends the command, not the console.
    assert_eq!(guest("allnoconfig", &["exit", "3"]).status.code(), Some(3));
    // The host's standard input is the command's, to its end.
    let out = guest_with_stdin(&["--", "cat"], b"one\ntwo $HOME `x`\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo $HOME `x`\n");
    let out = guest_with_stdin(&["--timeout", "100", "--", "cat"], b"");
    assert!(out.status.success(), "an empty input ends `cat`: {}", stderr(&out));
    let out = guest_with_stdin(&["--", "cat"], b"a\x03b\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("control byte 0x03"), "{}", stderr(&out));
    // A line far longer than any buffer comes through whole, in pieces.
    let quiet = |args: &[&str]| {
        let full: Vec<&str> = ["qemu", "--kernel", "allnoconfig"].iter().chain(args).copied().collect();
        common::command(&build_dir(), &full, &[]).output().unwrap()
    };
    let out = quiet(&["--", "head -c 300000 /dev/zero | tr '\\0' x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.len() == 300000 && out.stdout.iter().all(|&b| b == b'x'), "{} bytes", out.stdout.len());
    // Output that never stops does not hold off the timeout.
    let start = Instant::now();
    let out = common::command(&build_dir(), &["qemu", "--kernel", "allnoconfig", "--timeout", "30", "--", "yes"], &[])
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(90), "took {:?}", start.elapsed());
    // A guest that halts ends qemu at once, saying so.
    let start = Instant::now();
    let out = xtask(&["qemu", "--kernel", "allnoconfig", "--timeout", "200", "--", "poweroff", "-f"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("halted") || err.contains("qemu exited"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(100), "took {:?}", start.elapsed());
    no_qemu_left();
}

/// Each other architecture's fast, cross-built with its own busybox and initramfs, boots under
/// emulation and runs commands: the guest's `uname -m` is the arch's, every make names the
/// arch's cross compiler, and an exit status comes back.
#[test]
fn the_other_arches_fast_boots_and_says_its_machine() {
    let _g = serial();
    for arch in others() {
        let out = xtask(&["qemu", "--arch", arch.name, "--kernel", "fast", "--", "uname", "-m"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), arch.machine, "{}", arch.name);
        let obj = build_dir().join(format!("obj/linux-{}-fast", arch.dir));
        let record = json(&obj.join("teeny-build.json"));
        assert_eq!(str_at(&record, "/arch"), arch.name);
        let cross = format!(" CROSS_COMPILE={}", arch.cross);
        for make in record["make"].as_array().unwrap() {
            assert!(make.as_str().unwrap().contains(&cross), "every make names the compiler ({cross}): {make}");
        }
        assert!(obj.join("vmlinux").is_file());
        let out = xtask(&["qemu", "--arch", arch.name, "--kernel", "fast", "--no-build", "--", "exit 7"]);
        assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
        let out = xtask(&["qemu", "--arch", arch.name, "--kernel", "fast", "--no-build", "--", CONSOLE_NODE]);
        console_node_is_the_kernels(&out, &format!("{} fast", arch.name));
        assert!(build_dir().join(format!("obj/busybox-{}/busybox", arch.dir)).is_file());
        // fast boots the uncompressed archive.
        assert!(build_dir().join(format!("initramfs-busybox-{}.cpio", arch.dir)).is_file());
    }
    no_qemu_left();
}

#[test]
fn bench_measures_several_arches_in_one_table() {
    let _g = serial();
    let others = others();
    let dir = temp_dir("bench-arches");
    let json_path = dir.join("bench.json");
    let json_arg = json_path.to_str().unwrap();
    let configs: Vec<String> = others.iter().map(|a| format!("{}/fast", a.name)).collect();
    let (first, last) = (&configs[0], configs.last().unwrap());
    let configs = configs.join(",");
    let out = ok(&["bench", "--configs", &configs, "--runs", "1", "--json", json_arg, "--bootgraph", last]);
    let report = json(&json_path);
    for arch in &others {
        assert!(out.lines().any(|l| l.starts_with(&format!("| {}/fast | ", arch.name))), "{out}");
        measured(row(&report, arch.name, "fast"));
    }
    let qemu = str_at(&report, "/machine/qemu");
    let last_arch = others.last().unwrap();
    assert!(qemu.contains(&format!("{}: QEMU", last_arch.qemu)), "{qemu}");
    timeline_accounts_for_the_boot(&out, &report, last_arch.name, "fast");
    // The first one's timeline and profile, on their own.
    let out = ok(&["bench", "--configs", first, "--runs", "1", "--json", json_arg, "--profile", first]);
    let report = json(&json_path);
    timeline_accounts_for_the_boot(&out, &report, others[0].name, "fast");
    profile_names_functions(&out, &report, others[0].name, "fast", false);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn kvm_for_another_architecture_and_a_missing_qemu_fail_before_anything_starts() {
    let _g = serial();
    let other = others()[0];
    let out = xtask(&["qemu", "--arch", other.name, "--kvm", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // No step ran: every step echoes its command line (`$ make …`, `$ docker build …`).
    assert!(err.contains("--kvm runs guests of the host's own architecture") && !err.contains("\n$ "), "{err}");
    let out = xtask(&["--arch", "sparc", "kernel", "--list"]);
    assert!(stderr(&out).contains("unknown architecture `sparc`"), "{}", stderr(&out));
    // From the environment: the variable is named, not an option the user never typed.
    let out = xtask_env(&["kernel", "--list"], &[("TEENY_ARCH", Path::new("sparc"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("TEENY_ARCH=sparc (from the environment, for --arch): unknown architecture `sparc`"), "{err}");
    // No qemu on the PATH: the package to install is named before anything is built.
    let empty = temp_dir("no-qemu");
    let out = common::command(&build_dir(), &["qemu", "--arch", "riscv64", "--", "true"], &[("PATH", &empty)])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("qemu-system-riscv64 is not installed: install it with `sudo apt install qemu-system-misc`"),
        "{err}"
    );
}

/// The config that the share, network and modules tests boot with `--share` and `--net`: the
/// host's `modules` (allnoconfig with loadable modules) where it has one, else allnoconfig. So
/// the three build one kernel, its `-share-net` variant, not three.
fn share_net_base() -> &'static str {
    if shipped("modules").is_file() { "modules" } else { "allnoconfig" }
}

/// That kernel: the base with both variants' options.
fn share_net() -> String {
    format!("{}-share-net", share_net_base())
}

/// A port on the host's 127.0.0.1 that nothing listens on (free when asked).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn net_fetches_from_the_host_and_a_forward_reaches_a_guest_service() {
    use std::io::{Read, Write};
    let _g = serial();
    // A one-answer HTTP server on the host's 127.0.0.1, which the guest reaches as its gateway.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let http = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut request = [0; 1024];
        let n = conn.read(&mut request).unwrap();
        let body = "from the host\n";
        write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    // A guest service behind a forward: the host connects until the guest's nc listens (qemu
    // accepts on the host port at once and drops the connection while nothing listens), for as
    // long as the run lasts, a kernel build included.
    let forwarded = free_port();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = done.clone();
    let client = std::thread::spawn(move || {
        while !running.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", forwarded)) {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut got = Vec::new();
                let mut buf = [0; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                    if got.ends_with(b"\n") {
                        return String::from_utf8_lossy(&got).into_owned();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        String::new()
    });
    let dir = temp_dir("net");
    let share = dir.to_str().unwrap();
    let fetch = format!("wget -q -O - http://10.0.2.2:{port}/teeny && echo from the guest | nc -l -p 7777");
    let forward = format!("{forwarded}:7777");
    let base = share_net_base();
    let out =
        xtask(&["qemu", "--kernel", base, "--share", share, "--forward", &forward, "--timeout", "120", "--", &fetch]);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "from the host", "the guest fetched the host's file");
    assert!(http.join().unwrap().starts_with("GET /teeny "), "the request reached the host's server");
    assert_eq!(client.join().unwrap(), "from the guest\n", "the host reached the guest's nc through the forward");
    // The address by DHCP, and a kernel without the network's options boots without one.
    let out = xtask(&["qemu", "--kernel", base, "--no-build", "--net", "--share", share, "--", "ip -4 addr show eth0"]);
    assert!(stdout(&out).contains("inet 10.0.2.15/24"), "{}", stdout(&out));
    let out = xtask(&["qemu", "--no-build", "--", "ls /sys/class/net"]);
    assert!(!stdout(&out).contains("eth0"), "no network unless asked: {}", stdout(&out));
    std::fs::remove_dir_all(dir).unwrap();
    no_qemu_left();
}

#[test]
fn bad_forwards_are_refused_before_anything_is_built() {
    let _g = serial();
    let out = xtask(&["qemu", "--forward", "0:80", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the host port \"0\" is not a port number"), "{}", stderr(&out));
    let p = free_port().to_string();
    let out = xtask(&["qemu", "--forward", &format!("{p}:80"), "--forward", &format!("{p}:81"), "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("host port {p} is given twice")), "{}", stderr(&out));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = busy.local_addr().unwrap().port();
    let out = xtask(&["qemu", "--forward", &format!("{p}:80"), "--", "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("host port 127.0.0.1:{p} is not free")) && !err.contains("\n$ "), "{err}");
}

#[test]
fn share_round_trips_files_and_runs_a_script_of_the_checkout() {
    let _g = serial();
    let dir = temp_dir("share");
    std::fs::write(dir.join("in.txt"), "from the host\n").unwrap();
    let spec = format!("{}:/mnt/host", dir.display());
    let write = "cat /mnt/host/in.txt && uname -r > /mnt/host/out.txt";
    // With --net too, so that this and the network's test boot one kernel.
    let base = share_net_base();
    let out = xtask(&["qemu", "--kernel", base, "--net", "--share", &spec, "--", write]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "from the host");
    // The -share-net variant of the default kernel, its release in the guest's file on the host.
    let written = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    assert_eq!(written.trim(), release_of(&share_net()), "the guest's file on the host");
    // The checkout, shared at its own path: the shell starts in it, a script of it runs, and
    // its exit status comes back. Read-only: a write fails.
    let out = xtask(&[
        "qemu",
        "--kernel",
        base,
        "--no-build",
        "--net",
        "--share",
        ".:ro",
        "--",
        "./tests/guest/smoke.sh",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = format!("smoke: {} {} in {}", host().machine, release_of(&share_net()), root().display());
    assert!(stdout(&out).contains(&line), "{line} in {}", stdout(&out));
    let out = xtask(&["qemu", "--kernel", base, "--no-build", "--net", "--share", ".:ro", "--", "touch teeny-ro-test"]);
    assert_eq!(out.status.code(), Some(1), "a write to a read-only share: {}", stderr(&out));
    assert!(!root().join("teeny-ro-test").exists());
    // A folder that does not exist: refused before anything is built.
    let out = xtask(&["qemu", "--share", "/nonexistent/teeny", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("folder /nonexistent/teeny does not exist") && !err.contains("\n$ "), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
    no_qemu_left();
}

#[test]
fn gdb_breaks_at_start_kernel_and_runs_the_lx_helpers() {
    let _g = serial();
    let out = xtask(&["qemu", "--gdb", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--gdb halts the guest"), "{}", stderr(&out));
    let session = build_dir().join(format!("gdb-{}.session", host().name));
    let _ = std::fs::remove_file(&session);
    let log = temp_dir("gdb").join("qemu.log");
    let mut qemu = common::command(&build_dir(), &["qemu", "--kernel", "fast", "--gdb"], &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    // The -debug variant builds first.
    let start = Instant::now();
    while !session.exists() {
        assert!(qemu.try_wait().unwrap().is_none(), "{}", std::fs::read_to_string(log.with_extension("err")).unwrap());
        assert!(start.elapsed() < Duration::from_secs(1800), "no gdb session after 30 min");
        std::thread::sleep(Duration::from_millis(500));
    }
    // A second qemu --gdb would take the running one's socket: refused, naming it.
    let out = xtask(&["qemu", "--kernel", "fast", "--gdb"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("--gdb: the qemu of an earlier `cargo xtask qemu --gdb`") && !err.contains("\n$ "), "{err}");
    let out = xtask(&[
        "gdb",
        "--",
        "-batch",
        "-ex",
        "hbreak start_kernel",
        "-ex",
        "continue",
        "-ex",
        "bt",
        "-ex",
        "lx-version",
    ]);
    let _ = qemu.kill();
    let _ = qemu.wait();
    let gdb = stdout(&out);
    assert!(out.status.success(), "{gdb}\n{}", stderr(&out));
    assert!(gdb.lines().any(|l| l.starts_with("#0") && l.contains("start_kernel")), "{gdb}");
    let version = format!("Linux version {} ", release_of("fast-debug"));
    assert!(gdb.contains(&version), "lx-version: {version} in {gdb}");
    no_qemu_left();
    // No qemu --gdb running any more: gdb says so instead of hanging.
    let out = xtask(&["gdb", "--", "-batch"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has ended: start it again"), "{}", stderr(&out));
}

#[test]
fn a_modules_config_boots_with_its_modules_and_modprobe_loads_one() {
    let _g = serial();
    if !shipped("modules").is_file() {
        eprintln!("skipped: {} has no modules config", host().name);
        return;
    }
    // With --share and --net, as the share and network tests: one kernel for the three.
    let dir = temp_dir("modules");
    let share = dir.to_str().unwrap();
    let out = xtask(&["qemu", "--kernel", "modules", "--share", share, "--net", "--", "modprobe crc-itu-t && lsmod"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("crc_itu_t"), "{}", stdout(&out));
    // The shared busybox archive is as it was; the booted one is it plus the modules layer,
    // which `make modules_install` filled.
    let obj = obj_of(&share_net());
    assert!(obj.join("teeny-modules/lib/modules").join(release_of(&share_net())).join("modules.dep").is_file());
    let boot = obj.join("initramfs-with-modules.cpio.gz");
    let (busybox, layer) = (initramfs(), obj.join("teeny-modules.cpio.gz"));
    let [boot, busybox, layer] = [boot, busybox, layer].map(|p| std::fs::read(p).unwrap());
    assert_eq!(boot, [busybox, layer].concat());
    std::fs::remove_dir_all(dir).unwrap();
}
