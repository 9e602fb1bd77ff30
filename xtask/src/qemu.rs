//! Step 5: boot the kernel and the initramfs in qemu, on the terminal or headless.
//!
//! Headless, the serial console is a pipe: we wait for init's "Boot took" line and the shell
//! prompt, type one command wrapped in markers, stream its output and return its exit status.
//! In both modes qemu's stderr goes through us, so that its fatal errors (a failing KVM stops
//! the guest without ending qemu) end the run at once with their cause.

pub mod share;

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::kernel::Kernel;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// What to boot and how (the `cargo xtask qemu` flags).
pub struct Options {
    pub kernel: String,
    /// Boot what is built, checking nothing (a source tree's make takes seconds even with nothing to do).
    pub no_build: bool,
    pub initrd: Option<Utf8PathBuf>,
    pub kvm: bool,
    pub append: Vec<String>,
    pub qemu_args: Vec<String>,
    /// Bounds the whole headless run, boot and command; `None`: no bound.
    pub timeout: Option<Duration>,
    /// A command for the guest shell; empty: interactive console.
    pub command: Vec<String>,
    /// Host folders to mount in the guest.
    pub share: Vec<share::Share>,
    /// Boot the `-debug` variant halted, for `cargo xtask gdb`.
    pub gdb: bool,
}

/// Inputs of the qemu command line.
pub struct Machine<'a> {
    pub arch: &'a Arch,
    pub kernel: &'a Utf8Path,
    pub initrd: &'a Utf8Path,
    pub kvm: bool,
    pub append: &'a [String],
    pub qemu_args: &'a [String],
}

/// The walk-through's boot line, with the arch's qemu, board and console. `panic=-1` and
/// `-no-reboot` turn a kernel panic into a prompt qemu exit instead of a reboot loop.
pub fn qemu_argv(m: &Machine) -> Vec<String> {
    let mut append = vec![format!("console={}", m.arch.console), "panic=-1".to_owned()];
    append.extend(m.append.iter().cloned());
    let mut argv: Vec<String> = [m.arch.qemu, "-kernel", m.kernel.as_str(), "-initrd", m.initrd.as_str(), "-nographic"]
        .map(String::from)
        .into();
    argv.extend(["-append".into(), append.join(" "), "-no-reboot".into()]);
    if m.kvm {
        argv.push("-enable-kvm".into());
    }
    // Before the caller's arguments, which can so pick another board or CPU.
    argv.extend(m.arch.machine_args(m.kvm));
    argv.extend(m.qemu_args.iter().cloned());
    argv
}

/// The command line for a built kernel: its config's own kernel and qemu arguments first, then
/// the caller's, which can so override them.
pub fn boot_argv(
    kernel: &Kernel,
    initrd: &Utf8Path,
    kvm: bool,
    append: &[String],
    qemu_args: &[String],
) -> Vec<String> {
    let append = [&kernel.append[..], append].concat();
    let qemu_args = [&kernel.qemu_args[..], qemu_args].concat();
    qemu_argv(&Machine {
        arch: kernel.arch,
        kernel: &kernel.image,
        initrd,
        kvm,
        append: &append,
        qemu_args: &qemu_args,
    })
}

/// Fails with the cause when this user cannot use KVM; never falls back to emulation. Warns when
/// KVM has no hardware virtualization under it.
fn check_kvm(dev: &Utf8Path) -> Result<()> {
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => {
            // Such a /dev/kvm virtualizes in software (e.g. kvm_pvm in a cloud VM). On one, the
            // guest ran far slower than under TCG and died with "KVM internal error" ~145 s in.
            if fs_err::read_to_string("/proc/cpuinfo").is_ok_and(|c| !has_hardware_virtualization(&c)) {
                eprintln!(
                    "warning: --kvm: the CPU shows no hardware virtualization (no vmx or svm flag in /proc/cpuinfo); KVM may be slower than without --kvm, or fail"
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--kvm: {dev} does not exist: load the module (`sudo modprobe kvm_intel` or `kvm_amd`) and enable virtualization in the firmware, or drop --kvm"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "--kvm: no permission to use {dev}: add yourself to the kvm group (`sudo usermod -aG kvm $USER`, then log in again)"
        ),
        Err(e) => Err(e).with_context(|| format!("--kvm: cannot open {dev}")),
    }
}

/// Whether /proc/cpuinfo's flags show Intel VT-x (vmx) or AMD-V (svm).
fn has_hardware_virtualization(cpuinfo: &str) -> bool {
    let flags = cpuinfo.lines().filter(|l| l.starts_with("flags"));
    flags.flat_map(str::split_whitespace).any(|f| f == "vmx" || f == "svm")
}

/// Timing of one headless boot.
#[derive(Clone, Copy, Debug)]
pub struct BootTimes {
    /// The guest's uptime when init ran ("Boot took X seconds").
    pub guest_s: f64,
    /// Host wall time from starting qemu to the shell prompt.
    pub host_s: f64,
}

/// What must hold before anything is built for a boot: the arch's qemu is installed and, with
/// `kvm`, KVM can run it.
pub fn preflight(arch: &Arch, kvm: bool) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|dir| dir.join(arch.qemu).is_file()) {
        bail!(
            "{} is not installed: install it with `sudo apt install {}` (Debian/Ubuntu)",
            arch.qemu,
            arch.qemu_package
        );
    }
    if kvm {
        arch.check_kvm()?;
        check_kvm("/dev/kvm".into())?;
    }
    Ok(())
}

/// A headless run's exit status when nothing could be built to boot: what `git bisect run`
/// takes as "cannot test this commit".
const NOT_RUN: i32 = 125;

/// `cargo xtask qemu`: builds what is missing, then boots; returns the exit code to exit with.
pub fn run(ctx: &Ctx, opts: &Options) -> Result<i32> {
    preflight(ctx.arch, opts.kvm)?;
    if opts.gdb && !opts.command.is_empty() {
        bail!(
            "--gdb halts the guest until gdb continues it, so it boots to the console, without a command: script gdb instead (`cargo xtask gdb -- -batch -ex …`)"
        );
    }
    let gdb_socket = opts.gdb.then(|| crate::gdb::socket(ctx)).transpose()?;
    // A typo is the user's error (1), not a commit that does not build (125).
    crate::kernel::check_name(ctx, &opts.kernel)?;
    let built = kernel(ctx, opts).and_then(|kernel| {
        let initrd = match &opts.initrd {
            Some(p) => p.clone(),
            None => crate::initramfs::for_kernel(ctx, &kernel, opts.no_build)?,
        };
        Ok((kernel, initrd))
    });
    let (kernel, initrd) = match built {
        Err(e) if !opts.command.is_empty() => {
            eprintln!("error: {e:#}");
            eprintln!("(exit status {NOT_RUN}: the command did not run; `git bisect run` skips such a commit)");
            return Ok(NOT_RUN);
        }
        built => built?,
    };
    let cwd = crate::ctx::absolute(".".into())?;
    let mut append = share::append(&opts.share, &cwd);
    let mut qemu_args = share::qemu_args(&opts.share, kernel.virtio);
    if let Some(socket) = &gdb_socket {
        append.push(crate::gdb::APPEND.to_owned());
        qemu_args.extend(crate::gdb::qemu_args(socket));
        // A socket left by an earlier qemu would make this one fail to listen.
        let _ = std::fs::remove_file(socket);
    }
    append.extend(opts.append.iter().cloned());
    qemu_args.extend(opts.qemu_args.iter().cloned());
    let argv = boot_argv(&kernel, &initrd, opts.kvm, &append, &qemu_args);
    eprintln!("$ {}", crate::runner::display(&argv));
    if opts.command.is_empty() {
        eprintln!("(the terminal is the guest's serial console: Ctrl-a x quits qemu)");
        return interactive(&argv, |pid| match &gdb_socket {
            Some(socket) => crate::gdb::started(ctx, &kernel.vmlinux, socket, pid),
            None => Ok(()),
        });
    }
    match headless(&argv, opts) {
        Err(e) if e.downcast_ref::<TimedOut>().is_some() => {
            eprintln!("error: {e:#}\n(--timeout bounds boot and command; --timeout 0 for none)");
            // As timeout(1) does.
            Ok(124)
        }
        result => result,
    }
}

/// The kernel to boot: the config's, or a variant of it with what `--share` (9p and the
/// board's virtio transport) and `--gdb` (debug info, gdb scripts) need, such as
/// `fast-share-debug` (the saved config stays as it is).
fn kernel(ctx: &Ctx, opts: &Options) -> Result<Kernel> {
    let (mut variant, mut options) = (Vec::new(), Vec::new());
    if !opts.share.is_empty() {
        let virtio = crate::kernel::profile(ctx, &opts.kernel)?.virtio.unwrap_or(ctx.arch.virtio);
        variant.push("share");
        options.extend(share::KERNEL_OPTIONS.iter().chain(virtio.kernel_options()));
    }
    if opts.gdb {
        variant.push("debug");
        options.extend(crate::gdb::KERNEL_OPTIONS.iter().chain(ctx.arch.frame_pointer));
    }
    let variant = (!variant.is_empty()).then(|| variant.join("-"));
    match (opts.no_build, variant) {
        (true, variant) => crate::kernel::existing(ctx, &opts.kernel, variant.as_deref()),
        (false, None) => crate::kernel::build(ctx, &opts.kernel),
        (false, Some(variant)) => crate::kernel::build_variant(ctx, &opts.kernel, &variant, &options),
    }
}

/// Boots, runs the command, returns its exit status.
fn headless(argv: &[String], opts: &Options) -> Result<i32> {
    let (mut guest, times) = Guest::boot(argv, opts.timeout)?;
    eprintln!(
        "booted: guest uptime at init {:.3} s, host {:.3} s from qemu start to the shell",
        times.guest_s, times.host_s
    );
    guest.run(&opts.command)
}

/// qemu on the terminal, its stderr watched: on a fatal error, qemu is ended (SIGTERM, so it
/// restores the terminal) instead of sitting stopped. `started` gets qemu's pid.
fn interactive(argv: &[String], started: impl FnOnce(u32) -> Result<()>) -> Result<i32> {
    let (mut child, rx) = spawn(argv, false)?;
    if let Err(e) = started(child.id()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let mut stderr = std::io::stderr();
    while let Ok(event) = rx.recv() {
        let Event::Qemu(line) = event else { continue };
        if is_qemu_error(&line) {
            let causes = causes(line, &rx);
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            bail!("{}", failure(&causes, is_kvm(argv)));
        }
        // qemu's own lines; the terminal is raw while qemu runs.
        write!(stderr, "{line}\r\n")?;
    }
    let status = child.wait().context("waiting for qemu")?;
    Ok(status.code().unwrap_or(1))
}

/// What qemu's reader threads send.
enum Event {
    /// Serial console bytes (headless only).
    Console(Vec<u8>),
    /// A line qemu wrote to its stderr.
    Qemu(String),
}

/// Starts qemu with stderr read line by line; `console`: also stdin and stdout piped (headless).
/// Both threads end, so the channel disconnects, when qemu exits.
fn spawn(argv: &[String], console: bool) -> Result<(Child, Receiver<Event>)> {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).stderr(Stdio::piped());
    if console {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    }
    // SAFETY: prctl is async-signal-safe. If we die without running Drop, qemu dies too.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", argv[0]))?;
    let (tx, rx) = channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let qemu = tx.clone();
    std::thread::spawn(move || {
        for line in stderr.split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
            if qemu.send(Event::Qemu(line)).is_err() {
                break;
            }
        }
    });
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                if tx.send(Event::Console(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    }
    Ok((child, rx))
}

/// qemu stderr lines that state why it cannot go on. A failing KVM prints "KVM internal error",
/// then a register dump, and stops the guest without exiting.
const QEMU_ERRORS: [&str; 8] = [
    "KVM internal error",
    "emulation failure",
    "KVM: entry failed",
    "kvm run failed",
    "Could not access KVM kernel module",
    "failed to initialize kvm",
    "qemu: could not",
    "qemu: linux kernel too old",
];

pub fn is_qemu_error(line: &str) -> bool {
    // Besides the known ones, anything qemu reports under its name, except warnings.
    let named = line.starts_with("qemu-system-") && !line.contains("warning:");
    named || QEMU_ERRORS.iter().any(|e| line.contains(e))
}

/// The first error line and the error lines that follow it within a moment (not the register
/// dump between them).
fn causes(first: String, rx: &Receiver<Event>) -> Vec<String> {
    let mut causes = vec![first];
    let until = Instant::now() + Duration::from_secs(1);
    while let Ok(event) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        if let Event::Qemu(line) = event
            && is_qemu_error(&line)
        {
            causes.push(line);
        }
    }
    causes
}

/// The error for qemu's fatal lines, with the way out when KVM is the cause.
pub fn failure(causes: &[String], kvm: bool) -> String {
    let mut msg = format!("qemu failed:\n{}", causes.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"));
    if kvm && causes.iter().any(|l| l.to_lowercase().contains("kvm")) {
        msg.push_str("\nKVM does not work on this host; run without --kvm");
    }
    msg
}

fn is_kvm(argv: &[String]) -> bool {
    argv.iter().any(|a| a == "-enable-kvm")
}

/// The run outlived its `--timeout`.
#[derive(Debug)]
pub struct TimedOut {
    after: Duration,
    what: &'static str,
    tail: String,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let (after, what, tail) = (self.after.as_secs(), self.what, &self.tail);
        write!(f, "timed out after {after} s during the {what}, qemu killed; last console lines:\n{tail}")
    }
}

impl std::error::Error for TimedOut {}

/// A qemu process whose serial console we read; killed and reaped on drop.
pub struct Guest {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Event>,
    /// Booted with -enable-kvm: a KVM failure then says to drop --kvm.
    kvm: bool,
    start: Instant,
    /// For boot and command together.
    timeout: Option<Duration>,
    /// Bytes received that do not yet end in a newline (a prompt, for one).
    partial: Vec<u8>,
    /// Every complete console line and qemu stderr line so far (boot timelines parse it; errors
    /// show its end).
    log: Vec<Line>,
}

/// A line of the console (or of qemu's stderr), and when it reached us.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Host seconds since qemu started.
    pub host_s: f64,
    pub text: String,
    /// From the serial console (else qemu's stderr).
    pub console: bool,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a console line means to us.
#[derive(Debug, PartialEq)]
pub enum Marker {
    BootTook(f64),
    Panic,
    Begin,
    /// The command's exit status, and output printed before the marker without a newline.
    End(i32, String),
}

// Typed with quotes in the middle, so the tty's echo of our input never matches.
const BEGIN: &str = "TEENY_BEGIN";
const END: &str = "TEENY_END:";

pub fn marker(line: &str) -> Option<Marker> {
    if let Some(rest) = line.trim().strip_prefix("Boot took ") {
        return rest.strip_suffix(" seconds")?.trim().parse().ok().map(Marker::BootTook);
    }
    if line.contains("Kernel panic - not syncing") {
        return Some(Marker::Panic);
    }
    if line.trim() == BEGIN {
        return Some(Marker::Begin);
    }
    let (before, code) = line.rsplit_once(END)?;
    code.trim().parse().ok().map(|c| Marker::End(c, before.to_owned()))
}

/// One line for the guest shell, between markers: several words run verbatim (each one
/// single-quoted); a single one is a command line of its own (`sh -c`), as `ssh host 'cmd'` runs.
pub fn command_line(argv: &[String]) -> String {
    let quote = |a: &String| format!("'{}'", a.replace('\'', r"'\''"));
    let command = match argv {
        // A shell of its own, so that an `exit` ends the command and not the console.
        [line] => format!("sh -c {}", quote(line)),
        words => words.iter().map(quote).collect::<Vec<_>>().join(" "),
    };
    let split = |m: &str| format!("{}''{}", &m[..5], &m[5..]);
    format!("echo {}; {command}; echo {}$?\n", split(BEGIN), split(END))
}

/// A shell prompt: the console's last partial line ends in `# ` or `$ `.
fn is_prompt(partial: &[u8]) -> bool {
    partial.ends_with(b"# ") || partial.ends_with(b"$ ")
}

impl Guest {
    /// Starts qemu and waits for the shell prompt after init's "Boot took" line; `timeout`
    /// bounds the boot and any later `run`.
    pub fn boot(argv: &[String], timeout: Option<Duration>) -> Result<(Guest, BootTimes)> {
        let start = Instant::now();
        let (mut child, rx) = spawn(argv, true)?;
        let stdin = child.stdin.take().unwrap();
        let kvm = is_kvm(argv);
        let mut guest = Guest { child, stdin, rx, kvm, start, timeout, partial: Vec::new(), log: Vec::new() };
        let mut guest_s = None;
        loop {
            for line in guest.read("boot")? {
                match marker(&line) {
                    Some(Marker::BootTook(s)) => guest_s = Some(s),
                    Some(Marker::Panic) => bail!("the kernel panicked: {}\n{}", line.trim(), guest.tail()),
                    _ => {}
                }
            }
            if let Some(guest_s) = guest_s.filter(|_| is_prompt(&guest.partial)) {
                return Ok((guest, BootTimes { guest_s, host_s: start.elapsed().as_secs_f64() }));
            }
        }
    }

    /// Waits for more output; returns the console lines it completed. qemu's stderr lines go to
    /// the log, and a fatal one ends the run.
    fn read(&mut self, what: &'static str) -> Result<Vec<String>> {
        let event = match self.timeout {
            Some(t) => self.rx.recv_timeout((self.start + t).saturating_duration_since(Instant::now())),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let chunk = match event {
            Ok(Event::Console(chunk)) => chunk,
            Ok(Event::Qemu(line)) if is_qemu_error(&line) => bail!("{}", failure(&causes(line, &self.rx), self.kvm)),
            Ok(Event::Qemu(text)) => {
                self.log.push(Line { host_s: self.start.elapsed().as_secs_f64(), text, console: false });
                return Ok(Vec::new());
            }
            Err(RecvTimeoutError::Timeout) => {
                let after = self.timeout.unwrap_or_default();
                return Err(TimedOut { after, what, tail: self.tail() }.into());
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                bail!("qemu exited ({status}) during the {what}; last console lines:\n{}", self.tail())
            }
        };
        self.partial.extend(chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_owned();
            self.log.push(Line { host_s: self.start.elapsed().as_secs_f64(), text: line.clone(), console: true });
            lines.push(line);
        }
        Ok(lines)
    }

    fn tail(&self) -> String {
        let tail = &self.log[self.log.len().saturating_sub(20)..];
        tail.iter().map(|l| format!("  | {}", l.text)).collect::<Vec<_>>().join("\n")
    }

    /// When qemu was started: the zero of the log's host times.
    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn log(&self) -> &[Line] {
        &self.log
    }

    /// Runs `argv` in the guest shell, streams its output to stdout, returns its exit status.
    pub fn run(&mut self, argv: &[String]) -> Result<i32> {
        let mut stdout = std::io::stdout().lock();
        self.command(argv, &mut |text| Ok(stdout.write_all(text.as_bytes())?))
    }

    /// Runs `argv` in the guest shell; returns its exit status and its output lines.
    pub fn output(&mut self, argv: &[String]) -> Result<(i32, Vec<String>)> {
        let mut out = String::new();
        let code = self.command(argv, &mut |text| {
            out.push_str(text);
            Ok(())
        })?;
        Ok((code, out.lines().map(str::to_owned).collect()))
    }

    /// Types `argv` between markers and passes what it prints to `sink`.
    fn command(&mut self, argv: &[String], sink: &mut dyn FnMut(&str) -> Result<()>) -> Result<i32> {
        self.stdin.write_all(command_line(argv).as_bytes()).context("writing to the guest console")?;
        self.stdin.flush()?;
        let mut begun = false;
        loop {
            for line in self.read("command")? {
                match marker(&line) {
                    Some(Marker::Begin) => begun = true,
                    Some(Marker::End(code, before)) if begun => {
                        sink(&before)?;
                        return Ok(code);
                    }
                    Some(Marker::Panic) => bail!("the kernel panicked: {}", line.trim()),
                    _ if begun => sink(&format!("{line}\n"))?,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(kvm: bool) -> Vec<String> {
        machine_of("x86_64", kvm)
    }

    fn machine_of(arch: &str, kvm: bool) -> Vec<String> {
        let append = vec!["quiet".to_owned()];
        let extra = vec!["-m".to_owned(), "512M".to_owned()];
        qemu_argv(&Machine {
            arch: crate::arch::parse(arch).unwrap(),
            kernel: "/b/bzImage".into(),
            initrd: "/b/i.cpio.gz".into(),
            kvm,
            append: &append,
            qemu_args: &extra,
        })
    }

    #[test]
    fn boots_like_the_walk_through() {
        let argv = machine(false);
        assert_eq!(
            argv[..7],
            ["qemu-system-x86_64", "-kernel", "/b/bzImage", "-initrd", "/b/i.cpio.gz", "-nographic", "-append"]
        );
        assert_eq!(argv[7], "console=ttyS0 panic=-1 quiet");
        assert!(argv.contains(&"-no-reboot".to_owned()));
        assert!(!argv.contains(&"-enable-kvm".to_owned()));
        assert_eq!(argv[argv.len() - 2..], ["-m", "512M"]);
    }

    #[test]
    fn arm64_boots_virt_on_a_cortex_a57_with_the_pl011_console() {
        let argv = machine_of("arm64", false);
        assert_eq!(argv[0], "qemu-system-aarch64");
        assert_eq!(argv[7], "console=ttyAMA0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 6..], ["-M", "virt", "-cpu", "cortex-a57", "-m", "512M"]);
        let kvm = machine_of("arm64", true);
        assert_eq!(kvm[kvm.len() - 7..kvm.len() - 2], ["-enable-kvm", "-M", "virt", "-cpu", "host"]);
    }

    #[test]
    fn riscv64_boots_virt_through_opensbi_on_ttys0() {
        let argv = machine_of("riscv64", false);
        assert_eq!(argv[0], "qemu-system-riscv64");
        assert_eq!(argv[7], "console=ttyS0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 4..], ["-M", "virt", "-m", "512M"]);
    }

    #[test]
    fn a_configs_own_settings_come_before_the_users() {
        let kernel = Kernel {
            arch: crate::arch::parse("x86_64").unwrap(),
            obj: "/o".into(),
            boot_image: "/o/bzImage".into(),
            vmlinux: "/o/vmlinux".into(),
            release: "6.1".into(),
            image: "/o/vmlinux".into(),
            qemu_args: vec!["-M".into(), "microvm".into()],
            append: vec!["quiet".into()],
            initramfs: crate::initramfs::Compression::None,
            virtio: crate::arch::Virtio::Mmio,
            modules: None,
        };
        let argv = boot_argv(&kernel, "/i.cpio".into(), false, &["loglevel=8".into()], &["-m".into(), "64M".into()]);
        assert_eq!(argv[2], "/o/vmlinux", "boots the image the config names");
        assert!(argv.contains(&"console=ttyS0 panic=-1 quiet loglevel=8".to_owned()), "{argv:?}");
        assert_eq!(argv[argv.len() - 4..], ["-M", "microvm", "-m", "64M"]);
    }

    #[test]
    fn kvm_adds_enable_kvm() {
        assert!(machine(true).contains(&"-enable-kvm".to_owned()));
    }

    #[test]
    fn kvm_check_names_the_cause() {
        let err = check_kvm("/nonexistent/kvm".into()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/kvm does not exist") && err.contains("modprobe"), "{err}");
        let dir = std::env::temp_dir().join(format!("teeny-kvm-{}", std::process::id()));
        std::fs::write(&dir, b"").unwrap();
        check_kvm(Utf8Path::from_path(&dir).unwrap()).unwrap();
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn hardware_virtualization_is_a_cpu_flag() {
        assert!(has_hardware_virtualization("flags\t\t: fpu vme svm lm\n"));
        assert!(has_hardware_virtualization("model name\t: Intel\nflags\t\t: fpu vmx\n"));
        // An AMD EPYC cloud VM whose /dev/kvm is kvm_pvm: guests failed with KVM internal errors.
        assert!(!has_hardware_virtualization("model name\t: AMD EPYC\nflags\t\t: fpu vme hypervisor lm\n"));
    }

    #[test]
    fn parses_console_markers() {
        assert_eq!(marker("Boot took 0.28 seconds"), Some(Marker::BootTook(0.28)));
        assert_eq!(marker("[    1.2] Kernel panic - not syncing: No working init found."), Some(Marker::Panic));
        assert_eq!(marker("TEENY_BEGIN"), Some(Marker::Begin));
        assert_eq!(marker("TEENY_END:7"), Some(Marker::End(7, String::new())));
        assert_eq!(marker("no newlineTEENY_END:0"), Some(Marker::End(0, "no newline".into())));
        // The tty echoes what we type: that echo must not count as a marker.
        for echoed in command_line(&["true".into()]).lines() {
            assert_eq!(marker(&format!("~ # {echoed}")), None, "{echoed}");
        }
        assert_eq!(marker("Boot took a while"), None);
    }

    #[test]
    fn guest_command_quotes_every_word() {
        let line = command_line(&["sh".into(), "-c".into(), "exit 7".into(), "it's".into()]);
        assert_eq!(line, "echo TEENY''_BEGIN; 'sh' '-c' 'exit 7' 'it'\\''s'; echo TEENY''_END:$?\n");
    }

    #[test]
    fn a_single_argument_is_a_shell_command_line() {
        let line = command_line(&["dmesg | head -3; exit 3".into()]);
        assert_eq!(line, "echo TEENY''_BEGIN; sh -c 'dmesg | head -3; exit 3'; echo TEENY''_END:$?\n");
        assert!(command_line(&["it's".into()]).contains(r"sh -c 'it'\''s';"));
    }

    #[test]
    fn recognises_qemu_fatal_errors() {
        // Captured from `qemu --kvm` on a host whose KVM fails, and from other failures.
        for line in [
            "KVM internal error. Suberror: 1",
            "emulation failure",
            "Could not access KVM kernel module: No such file or directory",
            "qemu-system-x86_64: failed to initialize kvm: No such file or directory",
            "qemu: could not load kernel '/nonexistent': No such file or directory",
            "qemu-system-x86_64: -m foo: Parameter 'size' expects a non-negative number below 2^64",
        ] {
            assert!(is_qemu_error(line), "{line}");
        }
        for line in [
            "RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000663",
            "extra data[0]: 0x0000000000000000",
            "qemu-system-x86_64: warning: host doesn't support requested feature",
        ] {
            assert!(!is_qemu_error(line), "{line}");
        }
    }

    #[test]
    fn a_kvm_failure_says_to_drop_kvm() {
        let causes = ["KVM internal error. Suberror: 1".to_owned(), "emulation failure".to_owned()];
        let msg = failure(&causes, true);
        assert!(msg.contains("  | KVM internal error. Suberror: 1\n  | emulation failure"), "{msg}");
        assert!(msg.ends_with("KVM does not work on this host; run without --kvm"), "{msg}");
        assert!(!failure(&causes, false).contains("--kvm"));
        let not_kvm = failure(&["qemu: could not load kernel '/x': No such file or directory".into()], true);
        assert!(!not_kvm.contains("--kvm"), "{not_kvm}");
    }

    #[test]
    fn prompts() {
        assert!(is_prompt(b"~ # "));
        assert!(is_prompt(b"/ $ "));
        assert!(!is_prompt(b"Boot took"));
    }
}
