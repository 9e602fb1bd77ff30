//! What the end-to-end tiers share: running the built `xtask` binary as a user does, one test
//! at a time, per-arch data, the build record as JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests run one at a time: each holds this guard. On drop it appends the test's name and
/// seconds to target/tmp/e2e-times.txt, which `.ci/run` prints, so slow tests are visible.
pub struct Serial {
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

pub fn serial() -> Serial {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Serial { _lock: lock, start: Instant::now() }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The download cache the user's builds use, so tests do not download again.
pub fn downloads() -> PathBuf {
    std::env::var_os("TEENY_DOWNLOADS").map(PathBuf::from).unwrap_or_else(|| root().join("build/downloads"))
}

/// A fresh folder under the system's temporary folder, named for the test and this process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teeny-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The architectures as the tests know them: per-arch data, the one place that names them.
#[derive(Clone, Copy, Debug)]
pub struct Arch {
    /// What `--arch` takes and `kernel-configs/` names.
    pub name: &'static str,
    /// In build folder names (`obj/linux-DIR-NAME`).
    pub dir: &'static str,
    /// What the guest's `uname -m` says.
    pub machine: &'static str,
    /// Rust's name for it (`std::env::consts::ARCH`).
    pub rust: &'static str,
    /// Its cross compilers' prefix, as every make of another host names it.
    pub cross: &'static str,
    /// The qemu that boots it.
    pub qemu: &'static str,
}

pub const ARCHES: [Arch; 6] = [
    Arch {
        name: "x86_64",
        dir: "x86",
        machine: "x86_64",
        rust: "x86_64",
        cross: "x86_64-linux-gnu-",
        qemu: "qemu-system-x86_64",
    },
    Arch {
        name: "arm64",
        dir: "arm64",
        machine: "aarch64",
        rust: "aarch64",
        cross: "aarch64-linux-gnu-",
        qemu: "qemu-system-aarch64",
    },
    Arch {
        name: "riscv64",
        dir: "riscv64",
        machine: "riscv64",
        rust: "riscv64",
        cross: "riscv64-linux-gnu-",
        qemu: "qemu-system-riscv64",
    },
    Arch {
        name: "armhf",
        dir: "armhf",
        machine: "armv7l",
        rust: "arm",
        cross: "arm-linux-gnueabihf-",
        qemu: "qemu-system-arm",
    },
    Arch {
        name: "ppc64le",
        dir: "ppc64le",
        machine: "ppc64le",
        rust: "powerpc64",
        cross: "powerpc64le-linux-gnu-",
        qemu: "qemu-system-ppc64",
    },
    Arch {
        name: "s390x",
        dir: "s390x",
        machine: "s390x",
        rust: "s390x",
        cross: "s390x-linux-gnu-",
        qemu: "qemu-system-s390x",
    },
];

/// The `O=` folder name of config NAME on `arch`, as xtask's kernel/make.rs names it, with the
/// tail of another kernel source (its version) or toolchain (`clang`) after it.
pub fn kernel_folder(arch: Arch, name: &str, tail: &[&str]) -> String {
    let tail: String = tail.iter().map(|t| format!("-{t}")).collect();
    format!("linux-{}-{name}{tail}", arch.dir)
}

/// kernel-configs/HOST/NAME.config in the repository.
pub fn shipped(name: &str) -> PathBuf {
    root().join(format!("kernel-configs/{}/{name}.config", host().name))
}

/// A private copy of kernel-configs/HOST/allnoconfig.config, plus `extra`, named NAME in a folder
/// of its own (for TEENY_KERNEL_CONFIGS), for tests that need an `O=` folder nobody else uses;
/// its `O=` folder in `build` (named with `tail`, as [`kernel_folder`] does) is removed first.
/// Returns the folder.
pub fn private_config(build: &Path, name: &str, extra: &str, tail: &[&str]) -> PathBuf {
    private_copy(build, "allnoconfig", name, extra, tail)
}

/// [`private_config`] of the shipped config `of` instead of allnoconfig.
pub fn private_copy(build: &Path, of: &str, name: &str, extra: &str, tail: &[&str]) -> PathBuf {
    let dir = temp_dir(&format!("configs-{name}"));
    let text = std::fs::read_to_string(shipped(of)).unwrap();
    std::fs::write(dir.join(format!("{name}.config")), text + extra).unwrap();
    let _ = std::fs::remove_dir_all(build.join("obj").join(kernel_folder(host(), name, tail)));
    dir
}

/// The host's architecture: what `cargo xtask` builds without `--arch`.
pub fn host() -> Arch {
    *ARCHES.iter().find(|a| a.rust == std::env::consts::ARCH).expect("a host architecture that xtask supports")
}

/// The architectures other than the host's.
pub fn others() -> Vec<Arch> {
    ARCHES.iter().filter(|a| a.rust != std::env::consts::ARCH).copied().collect()
}

/// The xtask binary, built once per test run: a signal reaches it and not cargo, and a call
/// costs no cargo start-up.
pub fn xtask_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-q", "-p", "xtask"]).current_dir(root());
        // What cargo sets for this test process (CARGO_MANIFEST_DIR=…/tests, CARGO_PKG_NAME=
        // tests, …) would reach build scripts that watch those names (ring's does), rebuild
        // them and xtask (a minute and a half), and again at the next plain `cargo xtask`.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let ours =
                ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"];
            if key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_MANIFEST_") || ours.contains(&key.as_ref()) {
                cargo.env_remove(key.as_ref());
            }
        }
        let built = cargo.status();
        assert!(built.unwrap().success(), "cargo build -p xtask failed");
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("debug/xtask")
    })
}

/// `cargo xtask` as a test runs it: the built binary in the repository, in the build folder
/// `build`, with the shared download cache, never reading stdin. Variables of the user's
/// environment that would change what is built are removed.
pub fn command(build: &Path, args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(xtask_bin());
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    let user = [
        "TEENY_ARCH",
        "TEENY_KERNEL_CONFIGS",
        "TEENY_KERNEL_VERSION",
        "TEENY_TOOLCHAIN",
        "TEENY_CCACHE_DIR",
        "TEENY_DISTCC_HOSTS",
        "TEENY_RUNNER",
    ];
    for k in user {
        cmd.env_remove(k);
    }
    cmd.env("TEENY_BUILD_DIR", build).env("TEENY_DOWNLOADS", downloads());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cargo xtask ARGS` to the end; its output is echoed for the test's log.
pub fn run(build: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let out = command(build, args, env).output().expect("cannot run xtask");
    eprintln!(
        "$ cargo xtask {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A JSON file (a build record, bench's report), parsed.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string at `pointer` (`/source/version`) of a JSON value; panics naming what is missing.
pub fn str_at<'a>(v: &'a serde_json::Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(|x| x.as_str()).unwrap_or_else(|| panic!("no string at {pointer} in {v:#}"))
}

/// The number at `pointer` of a JSON value.
pub fn f64_at(v: &serde_json::Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(|x| x.as_f64()).unwrap_or_else(|| panic!("no number at {pointer} in {v:#}"))
}

/// `(SYMBOL, VALUE)` of every line of a .config or config file; `n` for `# CONFIG_X is not set`.
pub fn config_of(path: &Path) -> Vec<(String, String)> {
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

/// Edits a .config the way scripts/config or menuconfig would.
pub fn edit_config(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "{from} in {}", config.display());
    std::fs::write(config, text.replace(from, to)).unwrap();
}

/// Names of the running builder containers that process `pid` started.
pub fn containers_of(pid: u32) -> Vec<String> {
    let filter = format!("name=^teeny-{pid}-");
    let out = Command::new("docker").args(["ps", "-q", "--filter", &filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}
