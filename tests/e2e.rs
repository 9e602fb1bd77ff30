//! End-to-end tests: they run `cargo xtask …` exactly as a user does, with the real builder
//! image, the real busybox and allnoconfig kernel builds, and real qemu boots (TCG).
//!
//! They need Docker and qemu-system-x86_64 (and -aarch64, -riscv64 for the other arches' boots), and sources: either network access or the offline
//! variables of the README (TEENY_DOWNLOADS, TEENY_KERNEL_SOURCE). Tests run one at a time in
//! a build folder of their own (target/tmp/e2e-build), so a user's build/ and work in progress
//! are never touched; only the download cache is shared.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests run one at a time: each holds this guard. On drop it appends the test's name and
/// seconds to target/tmp/e2e-times.txt, which `.ci/run` prints, so slow tests are visible.
struct Serial {
    _lock: MutexGuard<'static, ()>,
    start: Instant,
}

impl Drop for Serial {
    fn drop(&mut self) {
        use std::io::Write;
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        let outcome = if std::thread::panicking() { "FAILED" } else { "ok" };
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-times.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{:7.1} s  {outcome:6} {name}", self.start.elapsed().as_secs_f64());
        }
    }
}

fn serial() -> Serial {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Serial { _lock: lock, start: Instant::now() }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-build")
}

/// The download cache the user's builds use, so tests do not download again.
fn downloads() -> PathBuf {
    std::env::var_os("TEENY_DOWNLOADS").map(PathBuf::from).unwrap_or_else(|| root().join("build/downloads"))
}

/// `cargo xtask ARGS` with extra environment variables; never reads stdin.
fn xtask_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "-p", "xtask", "--"]).args(args).current_dir(root()).stdin(std::process::Stdio::null());
    cmd.env("TEENY_BUILD_DIR", build_dir()).env("TEENY_DOWNLOADS", downloads());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot run cargo");
    eprintln!(
        "$ cargo xtask {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn xtask(args: &[&str]) -> Output {
    xtask_env(args, &[])
}

fn ok(args: &[&str]) -> String {
    let out = xtask(args);
    assert!(out.status.success(), "cargo xtask {} failed", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teeny-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn builder_image_is_built_once() {
    let _g = serial();
    ok(&["builder"]);
    let start = Instant::now();
    let out = xtask(&["builder"]);
    assert!(out.status.success());
    assert!(start.elapsed() < Duration::from_secs(10), "second `builder` took {:?}", start.elapsed());
    assert!(!stderr(&out).contains("docker build"), "the unchanged Dockerfile was rebuilt");
}

#[test]
fn fetch_verifies_the_busybox_tarball() {
    let _g = serial();
    ok(&["fetch"]);
    let good = std::fs::read(downloads().join("busybox-1.37.0.tar.bz2")).unwrap();
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
    std::fs::remove_dir_all(dir).unwrap();
}

fn initramfs() -> PathBuf {
    ok(&["initramfs"]);
    build_dir().join("initramfs-busybox-x86.cpio.gz")
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

fn obj_of(config: &str) -> PathBuf {
    build_dir().join(format!("obj/linux-x86-{config}"))
}

fn obj() -> PathBuf {
    obj_of("allnoconfig")
}

fn config_of(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| {
            if let Some(s) = l.strip_prefix("# CONFIG_").and_then(|s| s.strip_suffix(" is not set")) {
                return Some((s.to_owned(), "n".to_owned()));
            }
            let (k, v) = l.strip_prefix("CONFIG_")?.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[test]
fn allnoconfig_builds_with_every_requested_symbol_and_is_incremental() {
    let _g = serial();
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(out.status.success());
    let report = stderr(&out);
    assert!(report.contains("bzImage (") && report.contains("kernel release"), "{report}");
    let effective = config_of(&obj().join(".config"));
    for (symbol, value) in config_of(&root().join("kernel-configs/x86_64/allnoconfig.config")) {
        let got = effective.iter().find(|(k, _)| *k == symbol).map(|(_, v)| v.as_str()).unwrap_or("n");
        assert_eq!(got, value, "CONFIG_{symbol}");
    }
    // Nothing changed: .config is not rewritten (so nothing is rebuilt).
    let mtime = || std::fs::metadata(obj().join(".config")).unwrap().modified().unwrap();
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

/// A private copy of kernel-configs/x86_64/allnoconfig.config named NAME in a folder of its own, for
/// tests that need an `O=` folder nobody else uses; returns that folder.
fn private_config(name: &str, extra: &str) -> PathBuf {
    let dir = temp_dir(&format!("configs-{name}"));
    let text = std::fs::read_to_string(root().join("kernel-configs/x86_64/allnoconfig.config")).unwrap();
    std::fs::write(dir.join(format!("{name}.config")), text + extra).unwrap();
    let _ = std::fs::remove_dir_all(obj_of(name));
    dir
}

/// Edits the object folder's .config the way scripts/config or menuconfig would.
fn edit_config(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "{from} in {}", config.display());
    std::fs::write(config, text.replace(from, to)).unwrap();
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
    let release = std::fs::read_to_string(obj_of(config).join("include/config/kernel.release")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), release.trim());
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

#[test]
fn fast_profile_boots_vmlinux_on_microvm_and_runs_commands() {
    let _g = serial();
    guest_runs_commands("fast");
    let out = guest("fast", &["true"]);
    let err = stderr(&out);
    assert!(err.contains("linux-x86-fast/vmlinux") && err.contains("-M microvm"), "{err}");
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

#[test]
fn bench_reports_a_row_with_json_and_charts() {
    let _g = serial();
    let dir = temp_dir("bench");
    let json = dir.join("bench.json");
    let out = ok(&[
        "bench",
        "--configs",
        "allnoconfig",
        "--runs",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--profile",
        "fast",
    ]);
    assert!(out.lines().any(|l| l.starts_with("| allnoconfig |") && l.ends_with("| 6.1M | 0.28 s |")), "{out}");
    assert!(out.contains("find . | cpio") || out.contains("find | cpio"), "packing comparison: {out}");
    let report = std::fs::read_to_string(&json).unwrap();
    for key in [
        "\"vmlinux_bytes\"",
        "\"guest_boot_s_median\"",
        "\"host_wall_s_median\"",
        "\"accel\": \"tcg\"",
        "\"runs\": 2",
        "\"machine\"",
    ] {
        assert!(report.contains(key), "{key} in {report}");
    }
    let svg = std::fs::read_to_string(build_dir().join("bench/bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("allnoconfig"));
    // --profile fast: a row for it too, its boot in named phases, and the functions in them.
    assert!(out.lines().any(|l| l.starts_with("| fast |")), "{out}");
    timeline_accounts_for_the_boot(&out, &report, "x86_64", "fast");
    assert!(out.contains("| freeing init memory |") && out.contains("free_reserved_area"), "{out}");
    for key in ["\"profile\": [", "\"function\": \"free_reserved_area\"", "\"share\""] {
        assert!(report.contains(key), "{key} in {report}");
    }
    let profile = std::fs::read_to_string(build_dir().join("bench/profile-x86_64-fast.svg")).unwrap();
    assert!(profile.starts_with("<svg") && profile.contains(">free_reserved_area</text>"), "{profile}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The instrumented boot of ARCH/CONFIG in bench's output and JSON: its phases in the table,
/// at least 95% of the guest's uptime in named phases, and the chart written.
fn timeline_accounts_for_the_boot(out: &str, report: &str, arch: &str, config: &str) {
    let summary = format!("{arch}/{config}: guest uptime at init ");
    let line = out.lines().find(|l| l.starts_with(&summary)).unwrap_or_else(|| panic!("{summary} in {out}"));
    let attributed: f64 = field(report, "attributed").parse().unwrap();
    assert!(attributed >= 0.95, "{attributed} of the uptime in named phases: {line}");
    for phase in ["| early setup, until the first initcall | guest |", "| initcalls | guest |", "| init: mounts until"]
    {
        assert!(out.contains(phase), "{phase} in {out}");
    }
    for key in ["\"timeline\": {", "\"guest_uptime_s\"", "\"side\": \"host\"", "\"side\": \"guest\"", "\"duration_s\""]
    {
        assert!(report.contains(key), "{key} in {report}");
    }
    let chart = std::fs::read_to_string(build_dir().join(format!("bench/bootgraph-{arch}-{config}.svg"))).unwrap();
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
    let text = std::fs::read_to_string(root().join("kernel-configs/x86_64/allnoconfig.config")).unwrap();
    std::fs::write(dir.join("allnoconfig.config"), text + "# CONFIG_PRINTK_TIME is not set\n").unwrap();
    let out = xtask_env(&["kernel", "allnoconfig"], &[("TEENY_KERNEL_CONFIGS", &dir)]);
    assert!(out.status.success() && stderr(&out).contains("$ make"), "{}", stderr(&out));
    // Back to the repository's file: a change again, so make runs once more.
    let out = xtask(&["kernel", "allnoconfig"]);
    assert!(out.status.success() && stderr(&out).contains("$ make"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn build_output_goes_to_a_log_and_verbose_streams_it() {
    let _g = serial();
    let dir = private_config("logs", "");
    let env = [("TEENY_KERNEL_CONFIGS", dir.as_path())];
    let out = xtask_env(&["kernel", "logs", "--configure"], &env);
    assert!(out.status.success());
    let err = stderr(&out);
    let log = build_dir().join("logs/linux-x86-logs.log");
    assert!(err.contains("$ make") && err.contains(log.to_str().unwrap()), "{err}");
    assert!(!err.contains("HOSTCC"), "make's own output is in the log only: {err}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("HOSTCC"));
    std::fs::remove_dir_all(obj_of("logs")).unwrap();
    let out = xtask_env(&["-v", "kernel", "logs", "--configure"], &env);
    assert!(out.status.success() && stderr(&out).contains("HOSTCC"), "-v streams it");
    // An unusable compiler cache is named before anything runs.
    std::fs::remove_dir_all(obj_of("logs")).unwrap();
    let out = xtask_env(&["kernel", "logs", "--configure"], &[env[0], ("TEENY_CCACHE_DIR", Path::new("/proc/teeny"))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the ccache folder /proc/teeny is not writable"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn user_errors_are_caught_before_any_work() {
    let _g = serial();
    let bench_svg = build_dir().join("bench/bench.svg");
    let before = std::fs::metadata(&bench_svg).and_then(|m| m.modified()).ok();
    let out = xtask(&["bench", "--configs", "allnoconfig,fsat", "--runs", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown kernel config `fsat`: choose one of") && !err.contains("boot 1/1"), "{err}");
    assert_eq!(before, std::fs::metadata(&bench_svg).and_then(|m| m.modified()).ok(), "the chart was replaced");
    let out = xtask(&["bench", "--configs", "allnoconfig", "--runs", "1", "--profile", "arm64/fsat"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("unknown kernel config `fsat`") && !err.contains("boot 1/1"),
        "{err}"
    );

    let spaced = temp_dir("with space").join("build dir");
    let out = xtask_env(&["kernel", "allnoconfig"], &[("TEENY_BUILD_DIR", &spaced)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("contains a space"), "{}", stderr(&out));

    let out = xtask(&["--kernel", "fast", "qemu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--kernel is an option of `cargo xtask qemu --kernel`"), "{}", stderr(&out));
}

/// The xtask binary itself, so that a signal reaches it and not cargo.
fn xtask_bin() -> PathBuf {
    let built = Command::new(env!("CARGO")).args(["build", "-q", "-p", "xtask"]).current_dir(root()).status();
    assert!(built.unwrap().success());
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("debug/xtask")
}

/// Names of the running builder containers that process `pid` started.
fn containers_of(pid: u32) -> Vec<String> {
    let filter = format!("name=^teeny-{pid}-");
    let out = Command::new("docker").args(["ps", "-q", "--filter", &filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Starts `kernel NAME` (its own process group, as a shell job), waits for its first builder
/// container, sends `signal` (to the whole group with `group`, as a terminal's Ctrl-C does),
/// and checks that the container is gone within 5 s and the exit status is 128 + signal.
fn interrupt_build(name: &str, env: &[(&str, &Path)], signal: i32, group: bool) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(xtask_bin());
    cmd.args(["kernel", name]).current_dir(root()).stdin(std::process::Stdio::null()).process_group(0);
    cmd.env("TEENY_BUILD_DIR", build_dir()).env("TEENY_DOWNLOADS", downloads());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let start = Instant::now();
    while containers_of(pid).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(120), "no builder container started");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let target = if group { -(pid as i32) } else { pid as i32 };
    assert_eq!(unsafe { libc::kill(target, signal) }, 0);
    let sent = Instant::now();
    while !containers_of(pid).is_empty() {
        assert!(sent.elapsed() < Duration::from_secs(5), "builder container still running 5 s after signal {signal}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(child.wait().unwrap().code(), Some(128 + signal));
}

/// The build record's vmlinux and bzImage objects: sizes and sha256.
fn images(record: &str) -> [String; 2] {
    ["\"vmlinux\"", "\"bzimage\""].map(|k| record[record.find(k).unwrap()..].split('}').next().unwrap().to_owned())
}

fn record_of(name: &str) -> String {
    std::fs::read_to_string(obj_of(name).join("teeny-build.json")).unwrap()
}

/// `"key": value` of the build record, by plain text search (the tests have no JSON parser).
fn field<'a>(record: &'a str, key: &str) -> &'a str {
    let at = record.find(&format!("\"{key}\": ")).unwrap_or_else(|| panic!("no {key} in {record}")) + key.len() + 4;
    record[at..].split([',', '\n', '}']).next().unwrap().trim().trim_matches('"')
}

#[test]
fn concurrent_builds_wait_interrupts_stop_the_container_and_a_warm_cache_rebuilds_the_same_kernel() {
    let _g = serial();
    // `locks` is allnoconfig in an O= folder of its own. Built after it with the same compiler
    // cache, it compiles from the cache (a build's commands name no O= path) into the same bytes.
    ok(&["kernel", "allnoconfig"]);
    let reference = record_of("allnoconfig");
    let dir = private_config("locks", "");
    let env = [("TEENY_KERNEL_CONFIGS", dir.as_path())];
    // Two builds of one O= folder: the second waits for the first, then finds it built.
    let first = std::thread::scope(|s| {
        let a = s.spawn(|| xtask_env(&["kernel", "locks"], &env));
        std::thread::sleep(Duration::from_secs(3));
        let b = xtask_env(&["kernel", "locks"], &env);
        let a = a.join().unwrap();
        assert!(a.status.success() && b.status.success());
        assert!([&a, &b].iter().any(|o| stderr(o).contains("waiting for")), "the second build did not wait");
        record_of("locks")
    });
    assert_ne!(field(&first, "hits"), "0", "allnoconfig's objects come from the cache: {first}");
    assert_eq!(images(&first), images(&reference), "the same config in another O= folder gave other bytes");

    // Interrupted builds leave no container behind.
    std::fs::remove_dir_all(obj_of("locks")).unwrap();
    interrupt_build("locks", &env, libc::SIGTERM, false);
    interrupt_build("locks", &env, libc::SIGINT, true);

    // After the O= folder is gone (as after `clean`), the warm cache rebuilds the same bytes.
    std::fs::remove_dir_all(obj_of("locks")).unwrap();
    let out = xtask_env(&["kernel", "locks"], &env);
    assert!(out.status.success());
    assert!(stderr(&out).contains("ccache: "), "{}", stderr(&out));
    let warm = record_of("locks");
    assert_ne!(field(&warm, "hits"), "0", "{warm}");
    assert_eq!(images(&warm), images(&reference), "a warm-cache build differs from the cold one");
    std::fs::remove_dir_all(dir).unwrap();
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
fn a_failing_kvm_is_reported_with_its_cause_and_the_way_out() {
    let _g = serial();
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        eprintln!("skipped: no usable /dev/kvm here");
        return;
    }
    initramfs();
    // Where KVM fails, qemu says so when the guest reaches an instruction KVM cannot emulate:
    // about 145 s after start on the machine this was written on. Before, that message ended
    // up hidden above a register dump, after a timeout, with qemu left stopped.
    let out = xtask(&["qemu", "--kvm", "--timeout", "280", "--", "true"]);
    if out.status.success() {
        eprintln!("skipped: KVM works on this host");
        return;
    }
    let err = stderr(&out);
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
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["run", "-q", "-p", "xtask", "--"]).args(args).current_dir(root());
        cmd.env("TEENY_BUILD_DIR", build_dir()).env("TEENY_DOWNLOADS", downloads());
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe. The pty becomes the controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot run cargo");
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
}

impl Drop for Terminal {
    fn drop(&mut self) {
        eprintln!("terminal transcript:\n{}", self.seen);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interactive_console_has_job_control_and_ctrl_c_interrupts() {
    let _g = serial();
    initramfs();
    let mut term = Terminal::start(&["qemu", "--kernel", "allnoconfig"]);
    let prompt = |s: &str| s.trim_end_matches(' ').ends_with('#');
    assert!(term.wait(0, Duration::from_secs(300), |s| s.contains("Boot took")), "no boot");
    let booted = term.seen.find("Boot took").unwrap();
    assert!(term.wait(booted, Duration::from_secs(30), prompt), "no prompt");
    term.type_in("sleep 30\r");
    let typed = term.seen.len();
    assert!(term.wait(typed, Duration::from_secs(10), |s| s.contains("sleep 30")), "no echo");
    std::thread::sleep(Duration::from_secs(1));
    let sent = term.seen.len();
    term.type_in("\x03");
    assert!(term.wait(sent, Duration::from_secs(5), prompt), "Ctrl-C did not end `sleep 30`");
    assert!(!term.seen.contains("job control turned off"), "no job control");
    // Ctrl-a x quits qemu, and so the command.
    term.type_in("\x01x");
    let deadline = Instant::now() + Duration::from_secs(10);
    while term.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(term.child.try_wait().unwrap().is_some(), "Ctrl-a x did not end qemu");
    no_qemu_left();
}

/// Another architecture's allnoconfig and fast, cross-built with its own busybox and initramfs,
/// boot under emulation and run commands: the guest's `uname -m` is `machine`, and an exit
/// status comes back.
fn other_arch_boots(arch: &str, machine: &str) {
    for config in ["allnoconfig", "fast"] {
        let out = xtask(&["qemu", "--arch", arch, "--kernel", config, "--", "uname", "-m"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), machine, "{config}");
        let record = build_dir().join(format!("obj/linux-{arch}-{config}/teeny-build.json"));
        let record = std::fs::read_to_string(record).unwrap();
        assert_eq!(field(&record, "arch"), arch);
        assert!(record.contains(" CROSS_COMPILE="), "every make names its compiler: {record}");
        assert!(build_dir().join(format!("obj/linux-{arch}-{config}/vmlinux")).is_file());
    }
    let out = xtask(&["qemu", "--arch", arch, "--kernel", "fast", "--no-build", "--", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // allnoconfig boots the gzip archive, fast the uncompressed one.
    for built in [format!("obj/busybox-{arch}/busybox"), format!("initramfs-busybox-{arch}.cpio.gz")] {
        assert!(build_dir().join(&built).is_file(), "{built}");
    }
    assert!(build_dir().join(format!("initramfs-busybox-{arch}.cpio")).is_file());
    no_qemu_left();
}

#[test]
fn arm64_allnoconfig_and_fast_boot_and_say_aarch64() {
    let _g = serial();
    other_arch_boots("arm64", "aarch64");
}

#[test]
fn riscv64_allnoconfig_and_fast_boot_and_say_riscv64() {
    let _g = serial();
    other_arch_boots("riscv64", "riscv64");
}

#[test]
fn bench_measures_several_arches_in_one_table() {
    let _g = serial();
    let dir = temp_dir("bench-arches");
    let json = dir.join("bench.json");
    let json_path = json.to_str().unwrap();
    let args = ["bench", "--configs", "arm64/fast,riscv64/fast", "--runs", "1", "--json", json_path, "--bootgraph"];
    let out = ok(&[&args[..], &["riscv64/fast"]].concat());
    for arch in ["arm64", "riscv64"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("| {arch}/fast | "))), "{out}");
    }
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(report.contains("\"arch\": \"arm64\"") && report.contains("qemu-system-riscv64: QEMU"), "{report}");
    timeline_accounts_for_the_boot(&out, &report, "riscv64", "fast");
    // arm64's timeline and profile, on their own.
    let out = ok(&["bench", "--configs", "arm64/fast", "--runs", "1", "--json", json_path, "--profile", "arm64/fast"]);
    let report = std::fs::read_to_string(&json).unwrap();
    timeline_accounts_for_the_boot(&out, &report, "arm64", "fast");
    assert!(report.contains("\"profile\": [") && out.contains("| freeing init memory |"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn kvm_for_another_architecture_and_a_missing_qemu_fail_before_anything_starts() {
    let _g = serial();
    let other = if std::env::consts::ARCH == "aarch64" { "riscv64" } else { "arm64" };
    let out = xtask(&["qemu", "--arch", other, "--kvm", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // No step ran: every step echoes its command line (`$ make …`, `$ docker build …`).
    assert!(err.contains("--kvm runs guests of the host's own architecture") && !err.contains("\n$ "), "{err}");
    let out = xtask(&["--arch", "sparc", "kernel", "--list"]);
    assert!(stderr(&out).contains("unknown architecture `sparc`"), "{}", stderr(&out));
    // No qemu on the PATH: the package to install is named before anything is built.
    let empty = temp_dir("no-qemu");
    let out = Command::new(xtask_bin())
        .args(["qemu", "--arch", "riscv64", "--", "true"])
        .env("PATH", &empty)
        .env("TEENY_BUILD_DIR", build_dir())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("qemu-system-riscv64 is not installed: install it with `sudo apt install qemu-system-misc`"),
        "{err}"
    );
}

#[test]
fn share_round_trips_files_on_fast_and_allnoconfig() {
    let _g = serial();
    let dir = temp_dir("share");
    std::fs::write(dir.join("in.txt"), "from the host\n").unwrap();
    let spec = format!("{}:/mnt/host", dir.display());
    for config in ["fast", "allnoconfig"] {
        let write = format!("cat /mnt/host/in.txt && echo {config} > /mnt/host/out-{config}.txt");
        let out = xtask(&["qemu", "--kernel", config, "--share", &spec, "--", &write]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from the host");
        let written = std::fs::read_to_string(dir.join(format!("out-{config}.txt"))).unwrap();
        assert_eq!(written, format!("{config}\n"), "the guest's file on the host");
    }
    // The checkout, shared at its own path: the shell starts in it, a script of it runs, and
    // its exit status comes back. Read-only: a write fails.
    let out = xtask(&["qemu", "--kernel", "fast", "--share", ".:ro", "--", "./tests/guest/smoke.sh", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = format!("smoke: x86_64 6.1.192 in {}", root().display());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&line), "{}", String::from_utf8_lossy(&out.stdout));
    let out = xtask(&["qemu", "--kernel", "fast", "--no-build", "--share", ".:ro", "--", "touch teeny-ro-test"]);
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
    let session = build_dir().join("gdb-x86_64.session");
    let _ = std::fs::remove_file(&session);
    let log = temp_dir("gdb").join("qemu.log");
    let mut qemu = Command::new(xtask_bin())
        .args(["qemu", "--kernel", "fast", "--gdb"])
        .current_dir(root())
        .env("TEENY_BUILD_DIR", build_dir())
        .env("TEENY_DOWNLOADS", downloads())
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.lines().any(|l| l.starts_with("#0") && l.contains("start_kernel")), "{stdout}");
    assert!(stdout.contains("Linux version 6.1.192"), "lx-version: {stdout}");
    no_qemu_left();
    // No qemu --gdb running any more: gdb says so instead of hanging.
    let out = xtask(&["gdb", "--", "-batch"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has ended: start it again"), "{}", stderr(&out));
}

#[test]
fn a_modules_config_boots_with_its_modules_and_modprobe_loads_one() {
    let _g = serial();
    let out = xtask(&["qemu", "--kernel", "modules", "--", "modprobe crc-itu-t && lsmod"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("crc_itu_t"), "{}", String::from_utf8_lossy(&out.stdout));
    let err = stderr(&out);
    assert!(err.contains("modules_install") && err.contains("teeny-modules.cpio.gz"), "{err}");
    // The shared busybox archive is as it was; the booted one is it plus the modules layer.
    let boot = obj_of("modules").join("initramfs-with-modules.cpio.gz");
    let (busybox, layer) = (initramfs(), obj_of("modules").join("teeny-modules.cpio.gz"));
    let [boot, busybox, layer] = [boot, busybox, layer].map(|p| std::fs::read(p).unwrap());
    assert_eq!(boot, [busybox, layer].concat());
}

#[test]
fn a_kernel_source_tree_is_built_and_an_edit_in_it_is_rebuilt() {
    let _g = serial();
    // A tree of our own: a copy of the unpacked pinned source, in a build folder of its own.
    ok(&["fetch"]);
    let pinned = std::fs::read_dir(build_dir().join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("linux"))
        .expect("an unpacked kernel tree");
    let dir = temp_dir("tree");
    let tree = dir.join("linux");
    assert!(Command::new("cp").arg("-a").arg(&pinned).arg(&tree).status().unwrap().success());
    let build = dir.join("build");
    // busybox comes from the shared compiler cache; the kernel's paths differ, so it compiles.
    let ccache = build_dir().join("ccache");
    let env =
        [("TEENY_BUILD_DIR", build.as_path()), ("TEENY_KERNEL_SOURCE", tree.as_path()), ("TEENY_CCACHE_DIR", &ccache)];
    let uname = |env: &[(&str, &Path)]| {
        let out = xtask_env(&["qemu", "--kernel", "fast", "--", "uname", "-r"], env);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(uname(&env), "6.1.192");
    // One edit in the tree: make sees it, and the guest runs the rebuilt kernel.
    let makefile = tree.join("Makefile");
    let text = std::fs::read_to_string(&makefile).unwrap();
    std::fs::write(&makefile, text.replacen("\nEXTRAVERSION =", "\nEXTRAVERSION = -teeny", 1)).unwrap();
    assert_eq!(uname(&env), "6.1.192-teeny");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Compiles a distcc worker on this machine has done, from its statistics port (PORT + 1).
fn worker_compiles(port: u16) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port + 1)).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).ok()?;
    page.lines().find_map(|l| l.strip_prefix("dcc_compile_ok ")?.trim().parse().ok())
}

#[test]
fn distcc_workers_build_allnoconfig_to_the_same_bytes_and_a_lost_worker_falls_back_to_local() {
    let _g = serial();
    ok(&["kernel", "allnoconfig"]);
    let reference = record_of("allnoconfig");
    let (one, two, other, dead) = (3710u16, 3712u16, 3714u16, 3716u16);
    for port in [one, two] {
        // Only this test's workers: a user's own keep running.
        let _ = xtask(&["distcc", "stop", "--port", &port.to_string()]);
        let out = ok(&["distcc", "serve", "--port", &port.to_string(), "-j", "2"]);
        assert!(out.contains(&format!("cargo xtask --distcc 127.0.0.1:{port}/2")), "{out}");
    }
    // Bad input: a taken port, a malformed network, a malformed worker.
    let out = xtask(&["distcc", "serve", "--port", &one.to_string()]);
    assert!(!out.status.success() && stderr(&out).contains(&format!("already runs on port {one}")), "{}", stderr(&out));
    let out = xtask(&["distcc", "serve", "--port", "3720", "--allow", "10.0.0/8"]);
    assert!(!out.status.success() && stderr(&out).contains("--allow 10.0.0/8: not an IPv4 address"));
    let out = xtask(&["--distcc", "host:port", "kernel", "allnoconfig"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A worker that runs another builder image: distccd from ours, told it is another tag.
    let image = field(&reference, "builder_image").to_owned();
    let fake = temp_dir("distcc-other").join("tag");
    std::fs::write(&fake, "teeny-linux-builder:other\n").unwrap();
    std::fs::set_permissions(fake.parent().unwrap(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let volume = format!("--volume={}:/etc/teeny-builder-tag:ro", fake.display());
    let _ = Command::new("docker").args(["rm", "-f", "teeny-e2e-distcc-other"]).output();
    let started = Command::new("docker")
        .args(["run", "--detach", "--rm", "--name=teeny-e2e-distcc-other", "--network=host", "--user=65534:65534"])
        .args([volume.as_str(), image.as_str(), "distccd", "--daemon", "--no-detach", "--listen", "127.0.0.1"])
        .args(["--port", &other.to_string(), "--allow", "127.0.0.1/32"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", stderr(&started));
    std::thread::sleep(Duration::from_secs(1));
    let status = ok(&["distcc", "status"]);
    for port in [one, two] {
        assert!(
            status.contains(&format!("127.0.0.1:{port} answers: {image} (the same as this checkout's)")),
            "{status}"
        );
    }

    // allnoconfig in an O= folder of its own, with a cold compiler cache so that every compile is
    // sent, by two workers, one of another image and one that is not there.
    let dir = private_config("distcc", "");
    let cache = temp_dir("distcc-ccache");
    let hosts = format!("127.0.0.1:{one}/2,127.0.0.1:{two}/2,127.0.0.1:{other},127.0.0.1:{dead}");
    let log = temp_dir("distcc-log").join("build.err");
    let mut build = Command::new(xtask_bin())
        .args(["--distcc", &hosts, "kernel", "distcc"])
        .current_dir(root())
        .env("TEENY_BUILD_DIR", build_dir())
        .env("TEENY_DOWNLOADS", downloads())
        .env("TEENY_KERNEL_CONFIGS", &dir)
        .env("TEENY_CCACHE_DIR", &cache)
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Once the second worker has done some compiles, it goes away; the build goes on without it.
    let start = Instant::now();
    while worker_compiles(two).unwrap_or(0) < 30 {
        assert!(build.try_wait().unwrap().is_none(), "{}", std::fs::read_to_string(&log).unwrap());
        assert!(start.elapsed() < Duration::from_secs(1200), "worker {two} compiled nothing in 20 min");
        std::thread::sleep(Duration::from_millis(500));
    }
    let two_done = worker_compiles(two).unwrap();
    ok(&["distcc", "stop", "--port", &two.to_string()]);
    let status = build.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    eprintln!("{err}");
    assert!(status.success(), "the build failed after losing a worker");
    assert!(err.contains(&format!("distcc: dropping 127.0.0.1:{other}: it runs teeny-linux-builder:other")), "{err}");
    assert!(err.contains(&format!("distcc: dropping 127.0.0.1:{dead}: it does not answer")), "{err}");
    let one_done = worker_compiles(one).unwrap();
    assert!(one_done >= 30 && two_done >= 30, "compiles on the workers: {one_done} and {two_done}");
    let record = record_of("distcc");
    assert_eq!(images(&record), images(&reference), "the distcc build gave other bytes than the local one");

    ok(&["distcc", "stop", "--port", &one.to_string()]);
    let _ = Command::new("docker").args(["rm", "-f", "teeny-e2e-distcc-other"]).output();
    let status = ok(&["distcc", "status"]);
    assert!(!status.contains(&format!("port {one}")) && !status.contains(&format!("port {two}")), "{status}");
    let out = xtask(&["distcc", "stop", "--port", &two.to_string()]);
    assert!(!out.status.success() && stderr(&out).contains(&format!("no distcc worker runs on port {two}")));
    for d in [dir, cache, fake.parent().unwrap().to_owned(), log.parent().unwrap().to_owned()] {
        let _ = std::fs::remove_dir_all(d);
    }
}
