//! Runs build steps: in the builder container (docker or podman, its command line from
//! [`crate::engine::container_argv`]) or, with `--runner host`, directly on this machine; their
//! logs, the live status line, and stopping them on a signal.

use crate::engine::{Container, Engine, container_argv};
use crate::step::Step;
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where build steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerKind {
    /// In the builder image, with Docker.
    Docker,
    /// In the builder image, with Podman.
    Podman,
    /// Directly on this machine, with its own tools (you install them).
    Host,
}

impl RunnerKind {
    /// The container engine, if this runner uses one.
    pub fn engine(self) -> Option<Engine> {
        match self {
            RunnerKind::Docker => Some(Engine::DOCKER),
            RunnerKind::Podman => Some(Engine::PODMAN),
            RunnerKind::Host => None,
        }
    }
}

/// Quotes an argv for display only (commands are never run through a shell).
pub fn display(argv: &[String]) -> String {
    crate::shell::join(argv)
}

/// Runs steps in the container or on the host. Output goes to a log under `logs`; the terminal
/// gets the command, one live status line and, on failure, the log's end (`verbose`: everything).
pub struct Runner {
    container: Option<Container>,
    logs: Utf8PathBuf,
    verbose: bool,
    /// `--dry-run`: steps are printed, with the engine's command line, and not run.
    dry_run: bool,
    /// Logs already started by this process: the first step of a run truncates, later ones append.
    opened: RefCell<HashSet<String>>,
}

/// Lines of a failed step's log shown on the terminal.
const FAILURE_TAIL: usize = 40;

impl Runner {
    pub fn new(container: Option<Container>, logs: Utf8PathBuf, verbose: bool, dry_run: bool) -> Runner {
        Runner { container, logs, verbose, dry_run, opened: RefCell::default() }
    }

    pub fn image(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.image.as_str())
    }

    /// Prints the step as the user would type it, then runs it to completion, logging its
    /// output. In a dry run, prints where it would run (the container's command line) instead.
    pub fn run(&self, step: &Step) -> Result<()> {
        eprintln!("$ {}", display(&step.argv));
        if self.dry_run {
            eprintln!("  {}", self.dry_line(step));
            return Ok(());
        }
        let (mut cmd, argv, name) = self.command(step, !step.interactive);
        if step.interactive {
            let status = cmd.status().with_context(|| format!("cannot start {}", argv[0]))?;
            anyhow::ensure!(status.success(), "`{}` failed: {status}", display(&step.argv));
            return Ok(());
        }
        // Like a CI job: build steps never wait for input. Their own process group, so that a
        // Ctrl-C reaches them only through `stop_steps_on_signals` (which also stops the container).
        // In a container, stdin is a pipe that only this process holds: when it dies, even by
        // SIGKILL, the container's command sees its input end and stops (docker/teeny-run); the
        // engine's client gets SIGKILL then too.
        cmd.stdin(if self.container.is_some() { Stdio::piped() } else { Stdio::null() }).process_group(0);
        crate::proc::die_with_parent(&mut cmd);
        let log_path = self.log_path(step);
        let mut log = self.open_log(&log_path, &step.log)?;
        let logged = || format!("writing {log_path}");
        writeln!(log, "$ {}", display(&step.argv)).with_context(logged)?;
        let (reader, writer) = std::io::pipe().context("creating a pipe")?;
        cmd.stdout(writer.try_clone()?).stderr(writer);
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", argv[0]))?;
        let _stdin = child.stdin.take();
        // The Command holds the pipe's write end: drop it, or the output never ends.
        drop(cmd);
        let current = Current { pid: child.id(), container: self.container.as_ref().map(|c| (c.engine, name)) };
        *CURRENT.lock().unwrap() = Some(current);
        let status = Status::new(self.verbose);
        let mut tail = std::collections::VecDeque::new();
        let mut reader = std::io::BufReader::new(reader);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).context("reading the step's output")? > 0 {
            log.write_all(&line).with_context(logged)?;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            status.line(text);
            if tail.len() == FAILURE_TAIL {
                tail.pop_front();
            }
            tail.push_back(text.to_owned());
            line.clear();
        }
        let result = child.wait();
        *CURRENT.lock().unwrap() = None;
        let status_code = result.with_context(|| format!("waiting for {}", argv[0]))?;
        log.flush().with_context(logged)?;
        status.finish();
        if INTERRUPTED.load(Ordering::SeqCst) {
            // The signal thread is stopping everything and exits with the signal's status.
            loop {
                std::thread::park();
            }
        }
        if !status_code.success() {
            let shown: Vec<String> = tail.iter().map(|l| format!("  | {l}")).collect();
            bail!("`{}` failed: {status_code}; last lines of {log_path}:\n{}", display(&step.argv), shown.join("\n"));
        }
        Ok(())
    }

    /// What a dry run says of a step besides its own command: the container's command line,
    /// or on the host the folder and environment it would get.
    fn dry_line(&self, step: &Step) -> String {
        let (_, argv, _) = self.command(step, !step.interactive);
        if self.container.is_some() {
            return format!("(in the builder: {})", display(&argv));
        }
        let env: Vec<String> = step.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match env.is_empty() {
            true => format!("(on this machine, in {})", step.cwd),
            false => format!("(on this machine, in {}, with {})", step.cwd, display(&env)),
        }
    }

    /// Runs a short step quietly and returns its output (probes, not builds; none in a dry run).
    pub fn output(&self, step: &Step) -> Result<std::process::Output> {
        anyhow::ensure!(!self.dry_run, "a dry run runs no probe: {}", display(&step.argv));
        let (mut cmd, _, _) = self.command(step, false);
        cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {}", display(&step.argv)))
    }

    /// The command for a step (in a container named for this process, or on the host), its
    /// argv, and the container's name.
    fn command(&self, step: &Step, watched: bool) -> (std::process::Command, Vec<String>, String) {
        let name = format!("teeny-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let argv = match &self.container {
            Some(c) => container_argv(c, step, &name, watched),
            None => step.argv.clone(),
        };
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if self.container.is_none() {
            cmd.current_dir(&step.cwd).envs(step.env.iter().map(|(k, v)| (k, v)));
        }
        (cmd, argv, name)
    }

    /// Where a step's output goes.
    pub fn log_path(&self, step: &Step) -> Utf8PathBuf {
        self.logs.join(format!("{}.log", step.log))
    }

    /// The step's log, written line by line as the output comes (a user can `tail -f` it). The
    /// first step of a run starts it anew and keeps the previous run's as `NAME.log.1`.
    fn open_log(&self, path: &Utf8Path, name: &str) -> Result<std::io::LineWriter<fs::File>> {
        fs::create_dir_all(&self.logs)?;
        let first = self.opened.borrow_mut().insert(name.to_owned());
        if first && path.exists() {
            fs::rename(path, format!("{path}.1"))?;
        }
        let file = fs::OpenOptions::new().create(true).append(true).open(path)?;
        if first {
            eprintln!("  (output: {path})");
        }
        Ok(std::io::LineWriter::new(file))
    }
}

/// The terminal's view of a running step: every line with `-v`, else one status line (elapsed
/// time, the last output line) redrawn in place on a terminal, or every 30 s in a log.
struct Status {
    verbose: bool,
    tty: bool,
    start: Instant,
    last: Cell<Option<Instant>>,
}

impl Status {
    fn new(verbose: bool) -> Status {
        Status { verbose, tty: std::io::stderr().is_terminal(), start: Instant::now(), last: Cell::new(None) }
    }

    fn line(&self, text: &str) {
        if self.verbose {
            eprintln!("{text}");
            return;
        }
        let every = if self.tty { Duration::from_millis(100) } else { Duration::from_secs(30) };
        let now = Instant::now();
        if self.last.get().is_some_and(|t| now - t < every) || text.is_empty() {
            return;
        }
        self.last.set(Some(now));
        let line = status_line(now - self.start, text, terminal_width());
        if self.tty { eprint!("\r\x1b[K{line}") } else { eprintln!("{line}") }
    }

    fn finish(&self) {
        if self.tty && !self.verbose && self.last.get().is_some() {
            eprint!("\r\x1b[K");
        }
        if !self.verbose {
            eprintln!("  done in {}", elapsed(self.start.elapsed()));
        }
    }
}

/// `  [1m05s] CC kernel/fork.o`, cut to `width` columns.
fn status_line(elapsed_time: Duration, text: &str, width: usize) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = format!("  [{}] {words}", elapsed(elapsed_time));
    line.chars().take(width.saturating_sub(1)).collect()
}

/// `4.2s` or `3m05s`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{}.{}s", s, d.subsec_millis() / 100) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        100
    }
}

/// The step running now, for the signal handler.
struct Current {
    pid: u32,
    /// Engine and container name.
    container: Option<(Engine, String)>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// On SIGINT, SIGTERM or SIGHUP: stop the running step (its container by name: the docker
/// client does not reliably forward signals) and exit with 128 + the signal, as a shell does.
pub fn stop_steps_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            INTERRUPTED.store(true, Ordering::SeqCst);
            if let Some(current) = CURRENT.lock().unwrap().take() {
                eprintln!("\ninterrupted: stopping the running step");
                stop(&current);
            }
            // After the step is stopped: a build waiting for the lock must not start beside it.
            crate::lock::release_locks();
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// SIGINT to every process of the step (make deletes the target it was writing), then after a
/// grace period SIGKILL; a container is stopped the same way by name, which also removes it.
fn stop(current: &Current) {
    let pgid = current.pid as libc::pid_t;
    match &current.container {
        Some((engine, name)) => engine.interrupt(name),
        // SAFETY: signals our own child's process group.
        None => unsafe {
            libc::kill(-pgid, libc::SIGINT);
        },
    }
    let grace = Instant::now() + Duration::from_secs(2);
    // SAFETY: kill with signal 0 only checks that the process exists.
    while Instant::now() < grace && unsafe { libc::kill(pgid, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    match &current.container {
        Some((engine, name)) => engine.kill(name),
        // SAFETY: as above.
        None => unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_elapsed_time_and_the_last_output_fitting_the_terminal() {
        let line = status_line(Duration::from_secs(65), "  CC      kernel/fork.o", 80);
        assert_eq!(line, "  [1m05s] CC kernel/fork.o");
        assert_eq!(status_line(Duration::from_millis(4200), &"x".repeat(200), 30).chars().count(), 29);
        assert_eq!(elapsed(Duration::from_millis(4270)), "4.2s");
    }

    #[test]
    fn a_dry_run_prints_the_step_and_runs_nothing() {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-dry-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let made = dir.join("made");
        let step = Step::new(&dir, &["touch", made.as_str()]).env("K", "a b").log("dry");
        let runner = Runner::new(None, dir.join("logs"), false, true);
        runner.run(&step).unwrap();
        assert_eq!(runner.dry_line(&step), format!("(on this machine, in {dir}, with 'K=a b')"));
        assert!(runner.output(&step).is_err(), "a probe in a dry run");
        assert!(!made.exists() && !dir.join("logs").exists(), "the dry run ran the step or opened its log");
        // The same step, run.
        Runner::new(None, dir.join("logs"), false, false).run(&step).unwrap();
        assert!(made.exists() && dir.join("logs/dry.log").exists());
        let container = Container {
            engine: crate::engine::Engine::DOCKER,
            image: "teeny-linux-builder:abc".into(),
            uid: 1,
            gid: 1,
            workdirs: vec![dir.clone()],
            stdin_is_tty: false,
            utf8: false,
        };
        let line = Runner::new(Some(container), dir.join("logs"), false, true).dry_line(&step);
        assert!(line.starts_with("(in the builder: docker run --rm --init --interactive --name=teeny-"), "{line}");
        assert!(line.ends_with(&format!(" teeny-linux-builder:abc teeny-run touch {made})")), "{line}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let argv: Vec<String> = ["make", "O=/a b", "it's"].iter().map(|s| s.to_string()).collect();
        assert_eq!(display(&argv), r"make 'O=/a b' 'it'\''s'");
    }
}
