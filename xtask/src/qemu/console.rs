//! The headless console protocol: the serial console is a pipe; we wait for init's "Boot took"
//! line and the shell prompt, type one command between two markers, pass what it prints on and
//! read its exit status from the end marker.
//!
//! The markers carry a token this boot chose, so that a command's output cannot end the command
//! or change its status unless it knows the token. A kernel panic counts only when qemu ends
//! (`panic=-1 -no-reboot`), so a command that prints the panic text is not one. Memory stays
//! bounded whatever the guest prints: a line longer than [`super::protocol::MAX_LINE`] is passed on in pieces,
//! and only the boot's lines and the last [`TAIL`] lines are kept.

use super::process::{Event, causes, failure, is_kvm, is_qemu_error, spawn};
use super::protocol::{Marker, Text, command_line, is_prompt, marker, new_token, split};
use anyhow::{Context, Result, bail};
use std::collections::VecDeque;
use std::io::Write;
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Console lines shown when a run fails.
const TAIL: usize = 20;

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

/// A line of the console (or of qemu's stderr), and when it reached us.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Host seconds since qemu started.
    pub host_s: f64,
    pub text: String,
    /// From the serial console (else qemu's stderr).
    pub console: bool,
}

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
    token: String,
    /// Bytes received that do not yet end in a newline (a prompt, for one).
    partial: Vec<u8>,
    /// How many bytes of `partial` hold no newline.
    scanned: usize,
    /// The boot's console lines and qemu's stderr lines (boot timelines parse it); a command's
    /// own output is not kept.
    log: Vec<Line>,
    /// Keep console lines in `log`: until a command begins.
    logging: bool,
    /// The last console lines, for errors.
    recent: VecDeque<String>,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one wake-up of a [`Guest`]'s reader brought.
enum Woke {
    /// Console text: whole lines, and pieces of an overlong one.
    Text(Vec<Text>),
    /// A line of qemu's stderr that is not fatal.
    Qemu(String),
    TimedOut,
    /// qemu ended.
    Exited(std::process::ExitStatus),
}

/// Console bytes [`Guest::run_to_end`] keeps.
pub const MAX_KEPT: usize = 64 << 20;

/// What a run to the end printed, and how it ended.
#[derive(Debug)]
pub struct Ended {
    pub lines: Vec<String>,
    /// The time limit ended it (qemu killed).
    pub timed_out: bool,
    /// Host wall time from starting qemu to its end.
    pub host_s: f64,
    /// Lines past [`MAX_KEPT`], not kept.
    pub dropped: usize,
}

/// Timing of one headless boot.
#[derive(Clone, Copy, Debug)]
pub struct BootTimes {
    /// The guest's uptime when init ran ("Boot took X seconds").
    pub guest_s: f64,
    /// Host wall time from starting qemu to the shell prompt.
    pub host_s: f64,
}

impl Guest {
    /// Starts qemu and waits for the shell prompt after init's "Boot took" line; `timeout`
    /// bounds the boot and any later `run`.
    pub fn boot(argv: &[String], timeout: Option<Duration>) -> Result<(Guest, BootTimes)> {
        let mut guest = Guest::start(argv, timeout)?;
        let start = guest.start;
        let mut guest_s = None;
        loop {
            for line in guest.read("boot")? {
                match marker(&line.text, &guest.token) {
                    Some(Marker::BootTook(s)) => guest_s = Some(s),
                    Some(Marker::Panic) => bail!("the kernel panicked: {}\n{}", line.text.trim(), guest.tail()),
                    // What init could not do (a module, a mount, the network) is the user's to see.
                    _ if line.text.starts_with("init: ") => eprintln!("{}", line.text.trim_end()),
                    _ => {}
                }
            }
            if let Some(guest_s) = guest_s.filter(|_| is_prompt(&guest.partial)) {
                return Ok((guest, BootTimes { guest_s, host_s: start.elapsed().as_secs_f64() }));
            }
        }
    }

    fn start(argv: &[String], timeout: Option<Duration>) -> Result<Guest> {
        let start = Instant::now();
        let (mut child, rx) = spawn(argv, true)?;
        let stdin = child.stdin.take().unwrap();
        Ok(Guest {
            child,
            stdin,
            rx,
            kvm: is_kvm(argv),
            start,
            timeout,
            token: new_token(),
            partial: Vec::new(),
            scanned: 0,
            log: Vec::new(),
            logging: true,
            recent: VecDeque::new(),
        })
    }

    /// Starts qemu and reads its console until qemu exits (the guest shut down or rebooted under
    /// `-no-reboot`) or `timeout` passes (qemu is then killed): for a kernel that runs its tests
    /// and ends by itself. `each` sees every console line as it comes. At most [`MAX_KEPT`]
    /// bytes of lines are kept; later ones are only counted.
    pub fn run_to_end(argv: &[String], timeout: Option<Duration>, mut each: impl FnMut(&str)) -> Result<Ended> {
        let mut guest = Guest::start(argv, timeout)?;
        // Its lines are kept here, within the bound, not in the boot log.
        guest.logging = false;
        let mut ended = Ended { lines: Vec::new(), timed_out: false, host_s: 0.0, dropped: 0 };
        let mut kept = 0;
        loop {
            match guest.wake()? {
                Woke::Text(texts) => {
                    for t in texts {
                        each(&t.text);
                        kept += t.text.len();
                        match kept <= MAX_KEPT {
                            true => ended.lines.push(t.text),
                            false => ended.dropped += 1,
                        }
                    }
                }
                Woke::Qemu(_) => {}
                Woke::TimedOut => {
                    ended.timed_out = true;
                    break;
                }
                Woke::Exited(_) => break,
            }
        }
        if !guest.partial.is_empty() {
            ended.lines.push(String::from_utf8_lossy(&guest.partial).into_owned());
        }
        ended.host_s = guest.start.elapsed().as_secs_f64();
        Ok(ended)
    }

    /// Waits for more output; returns the console text it completed. qemu's stderr lines go to
    /// the log, and a fatal one ends the run. The deadline is checked on every wake-up.
    fn read(&mut self, what: &'static str) -> Result<Vec<Text>> {
        match self.wake()? {
            Woke::Text(texts) => Ok(texts),
            Woke::Qemu(text) => {
                self.log.push(Line { host_s: self.start.elapsed().as_secs_f64(), text, console: false });
                Ok(Vec::new())
            }
            Woke::TimedOut => Err(TimedOut { after: self.timeout.unwrap_or_default(), what, tail: self.tail() }.into()),
            Woke::Exited(status) => {
                if let Some(panic) = self.recent.iter().find(|l| marker(l, &self.token) == Some(Marker::Panic)) {
                    bail!("the kernel panicked during the {what}: {}\n{}", panic.trim(), self.tail());
                }
                bail!("qemu exited ({status}) during the {what}; last console lines:\n{}", self.tail())
            }
        }
    }

    /// Waits, until the deadline, for what qemu sends next; a fatal stderr line is an error. The
    /// console text it completes goes to the boot log (while `logging`) and the recent lines.
    fn wake(&mut self) -> Result<Woke> {
        let deadline = self.timeout.map(|t| self.start + t);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Woke::TimedOut);
        }
        let event = match deadline {
            Some(d) => self.rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let chunk = match event {
            Ok(Event::Console(chunk)) => chunk,
            Ok(Event::Qemu(line)) if is_qemu_error(&line) => bail!("{}", failure(&causes(line, &self.rx), self.kvm)),
            Ok(Event::Qemu(text)) => return Ok(Woke::Qemu(text)),
            Err(RecvTimeoutError::Timeout) => return Ok(Woke::TimedOut),
            Err(RecvTimeoutError::Disconnected) => {
                return Ok(Woke::Exited(self.child.wait().context("waiting for qemu")?));
            }
        };
        self.partial.extend(chunk);
        let texts = split(&mut self.partial, &mut self.scanned);
        let host_s = self.start.elapsed().as_secs_f64();
        for t in texts.iter().filter(|t| t.whole) {
            if self.logging {
                self.log.push(Line { host_s, text: t.text.clone(), console: true });
            }
            if self.recent.len() == TAIL {
                self.recent.pop_front();
            }
            self.recent.push_back(t.text.clone());
        }
        Ok(Woke::Text(texts))
    }

    fn tail(&self) -> String {
        self.recent.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
    }

    /// When qemu was started: the zero of the log's host times.
    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn log(&self) -> &[Line] {
        &self.log
    }

    /// Runs `argv` in the guest shell with `stdin` as its input (None: /dev/null), streams its
    /// output to stdout, returns its exit status.
    pub fn run(&mut self, argv: &[String], stdin: Option<&str>) -> Result<i32> {
        let mut stdout = std::io::stdout().lock();
        self.command(argv, stdin, &mut |text| Ok(stdout.write_all(text.as_bytes())?))
    }

    /// Runs `argv` in the guest shell; returns its exit status and its output lines.
    pub fn output(&mut self, argv: &[String]) -> Result<(i32, Vec<String>)> {
        let mut out = String::new();
        let code = self.command(argv, None, &mut |text| {
            out.push_str(text);
            Ok(())
        })?;
        Ok((code, out.lines().map(str::to_owned).collect()))
    }

    /// Runs `argv` in the guest shell, passing what it prints to `sink` as it comes (pieces of
    /// text, not lines), so a caller keeps it even when the run times out; returns its exit status.
    pub fn run_with(&mut self, argv: &[String], sink: &mut dyn FnMut(&str) -> Result<()>) -> Result<i32> {
        self.command(argv, None, sink)
    }

    /// Types `argv` between markers and passes what it prints to `sink`.
    fn command(
        &mut self,
        argv: &[String],
        stdin: Option<&str>,
        sink: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<i32> {
        let line = command_line(argv, &self.token, stdin);
        self.stdin.write_all(line.as_bytes()).context("writing to the guest console")?;
        self.stdin.flush()?;
        self.logging = false;
        let mut begun = false;
        loop {
            for t in self.read("command")? {
                if !t.whole {
                    if begun {
                        sink(&t.text)?;
                    }
                    continue;
                }
                match marker(&t.text, &self.token) {
                    Some(Marker::Begin) => begun = true,
                    Some(Marker::End(code, before)) if begun => {
                        sink(&before)?;
                        return Ok(code);
                    }
                    Some(Marker::Halted) => {
                        bail!("the guest halted before the command ended ({}): qemu stopped", t.text.trim())
                    }
                    _ if begun => sink(&format!("{}\n", t.text))?,
                    _ => {}
                }
            }
        }
    }
}
