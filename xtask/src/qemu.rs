//! Step 5: boot the kernel and the initramfs in qemu, on the terminal or headless.
//!
//! Headless, the serial console is a pipe: we wait for init's "Boot took" line and the shell
//! prompt, type one command wrapped in markers, stream its output and return its exit status.

use crate::ctx::Ctx;
use crate::kernel::Kernel;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// What to boot and how (the `cargo xtask qemu` flags).
pub struct Options {
    pub kernel: String,
    pub initrd: Option<Utf8PathBuf>,
    pub kvm: bool,
    pub append: Vec<String>,
    pub qemu_args: Vec<String>,
    pub timeout: Duration,
    /// A command for the guest shell; empty: interactive console.
    pub command: Vec<String>,
}

/// Inputs of the qemu command line.
pub struct Machine<'a> {
    pub kernel: &'a Utf8Path,
    pub initrd: &'a Utf8Path,
    pub kvm: bool,
    pub append: &'a [String],
    pub qemu_args: &'a [String],
}

/// The walk-through's boot line. `panic=-1` and `-no-reboot` turn a kernel panic into a prompt
/// qemu exit instead of a reboot loop.
pub fn qemu_argv(m: &Machine) -> Vec<String> {
    let mut append = vec!["console=ttyS0".to_owned(), "panic=-1".to_owned()];
    append.extend(m.append.iter().cloned());
    let mut argv: Vec<String> =
        ["qemu-system-x86_64", "-kernel", m.kernel.as_str(), "-initrd", m.initrd.as_str(), "-nographic"]
            .map(String::from)
            .into();
    argv.extend(["-append".into(), append.join(" "), "-no-reboot".into()]);
    if m.kvm {
        argv.push("-enable-kvm".into());
    }
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
    qemu_argv(&Machine { kernel: &kernel.image, initrd, kvm, append: &append, qemu_args: &qemu_args })
}

/// Fails with the cause when this user cannot use KVM; never falls back to emulation.
pub fn check_kvm(dev: &Utf8Path) -> Result<()> {
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--kvm: {dev} does not exist: load the module (`sudo modprobe kvm_intel` or `kvm_amd`) and enable virtualization in the firmware, or drop --kvm"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "--kvm: no permission to use {dev}: add yourself to the kvm group (`sudo usermod -aG kvm $USER`, then log in again)"
        ),
        Err(e) => Err(e).with_context(|| format!("--kvm: cannot open {dev}")),
    }
}

/// Timing of one headless boot.
#[derive(Clone, Copy, Debug)]
pub struct BootTimes {
    /// The guest's uptime when init ran ("Boot took X seconds").
    pub guest_s: f64,
    /// Host wall time from starting qemu to the shell prompt.
    pub host_s: f64,
}

/// `cargo xtask qemu`: builds what is missing, then boots; returns the exit code to exit with.
pub fn run(ctx: &Ctx, opts: &Options) -> Result<i32> {
    if opts.kvm {
        check_kvm("/dev/kvm".into())?;
    }
    let kernel = crate::kernel::build(ctx, &opts.kernel)?;
    let initrd = match &opts.initrd {
        Some(p) => p.clone(),
        None => crate::initramfs::build(ctx, kernel.initramfs)?,
    };
    let argv = boot_argv(&kernel, &initrd, opts.kvm, &opts.append, &opts.qemu_args);
    eprintln!("$ {}", crate::runner::display(&argv));
    if opts.command.is_empty() {
        eprintln!("(the terminal is the guest's serial console: Ctrl-a x quits qemu)");
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .context("cannot start qemu-system-x86_64")?;
        return Ok(status.code().unwrap_or(1));
    }
    let (mut guest, times) = Guest::boot(&argv, opts.timeout)?;
    eprintln!(
        "booted: guest uptime at init {:.3} s, host {:.3} s from qemu start to the shell",
        times.guest_s, times.host_s
    );
    guest.run(&opts.command)
}

/// A qemu process whose serial console we read; killed and reaped on drop.
pub struct Guest {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    /// Bytes received that do not yet end in a newline (a prompt, for one).
    partial: Vec<u8>,
    /// Every complete console line so far (boot graphs parse it; errors show its end).
    log: Vec<String>,
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
    /// Starts qemu and waits for the shell prompt after init's "Boot took" line.
    pub fn boot(argv: &[String], timeout: Duration) -> Result<(Guest, BootTimes)> {
        let start = Instant::now();
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe. If we die without running Drop, qemu dies too.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", argv[0]))?;
        let (tx, rx) = channel();
        for mut out in
            [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = out.read(&mut buf) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        let mut guest = Guest { child, stdin, rx, partial: Vec::new(), log: Vec::new() };
        let deadline = start + timeout;
        let mut guest_s = None;
        loop {
            for line in guest.read(deadline, "boot")? {
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

    /// Waits for more console output; returns the complete lines it finished.
    fn read(&mut self, deadline: Instant, what: &str) -> Result<Vec<String>> {
        let chunk = match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) => {
                bail!("no {what} within the timeout; last console lines:\n{}", self.tail())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                bail!("qemu exited ({status}) during {what}; last console lines:\n{}", self.tail())
            }
        };
        self.partial.extend(chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_owned();
            self.log.push(line.clone());
            lines.push(line);
        }
        Ok(lines)
    }

    fn tail(&self) -> String {
        self.log[self.log.len().saturating_sub(20)..].iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
    }

    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Runs `argv` in the guest shell, streams its output to stdout, returns its exit status.
    pub fn run(&mut self, argv: &[String]) -> Result<i32> {
        self.stdin.write_all(command_line(argv).as_bytes()).context("writing to the guest console")?;
        self.stdin.flush()?;
        let mut begun = false;
        let mut stdout = std::io::stdout().lock();
        loop {
            // The command may run as long as it likes; only qemu exiting ends the wait early.
            for line in self.read(Instant::now() + Duration::from_secs(365 * 24 * 3600), "command")? {
                match marker(&line) {
                    Some(Marker::Begin) => begun = true,
                    Some(Marker::End(code, before)) if begun => {
                        write!(stdout, "{before}")?;
                        return Ok(code);
                    }
                    Some(Marker::Panic) => bail!("the kernel panicked: {}", line.trim()),
                    _ if begun => writeln!(stdout, "{line}")?,
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
        let append = vec!["quiet".to_owned()];
        let extra = vec!["-m".to_owned(), "512M".to_owned()];
        qemu_argv(&Machine {
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
    fn a_configs_own_settings_come_before_the_users() {
        let kernel = Kernel {
            bzimage: "/o/bzImage".into(),
            vmlinux: "/o/vmlinux".into(),
            release: "6.1".into(),
            image: "/o/vmlinux".into(),
            qemu_args: vec!["-M".into(), "microvm".into()],
            append: vec!["quiet".into()],
            initramfs: crate::initramfs::Compression::None,
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
    fn prompts() {
        assert!(is_prompt(b"~ # "));
        assert!(is_prompt(b"/ $ "));
        assert!(!is_prompt(b"Boot took"));
    }
}
