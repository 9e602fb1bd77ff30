//! The one place that turns a build step into a command line: in the builder container
//! (docker or podman) or, with `--runner host`, directly on this machine.

use crate::step::{Mount, Step};
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
    /// The container engine's binary, if this runner uses one.
    pub fn engine(self) -> Option<&'static str> {
        match self {
            RunnerKind::Docker => Some("docker"),
            RunnerKind::Podman => Some("podman"),
            RunnerKind::Host => None,
        }
    }
}

/// What the container command line depends on besides the step itself.
#[derive(Clone, Debug)]
pub struct Container {
    pub engine: String,
    pub image: String,
    pub uid: u32,
    pub gid: u32,
    /// Always mounted read-write at the same absolute path: the repository and the build folder.
    pub workdirs: Vec<Utf8PathBuf>,
    pub stdin_is_tty: bool,
    /// The user's locale is UTF-8 (LC_ALL, LC_CTYPE or LANG says so).
    pub utf8: bool,
}

/// The image's wrapper that ends a step's command when its standard input closes
/// (docker/teeny-run): xtask holds it open, so the build dies with the xtask that started it.
pub const WATCHDOG: &str = "teeny-run";

/// The full `docker run …` argv for a step, in a container called `name` (so that it can be
/// stopped by name on an interrupt); with `watched`, the command runs under [`WATCHDOG`] with
/// stdin kept open. Pure, so it is unit-tested.
pub fn container_argv(c: &Container, step: &Step, name: &str, watched: bool) -> Vec<String> {
    let mut argv: Vec<String> = vec![c.engine.clone(), "run".into(), "--rm".into(), "--init".into()];
    if watched {
        argv.push("--interactive".into());
    }
    argv.push(format!("--name={name}"));
    // Files in build/ belong to the user, not to root.
    argv.push(format!("--user={}:{}", c.uid, c.gid));
    if c.engine == "podman" {
        argv.push("--userns=keep-id".into());
    }
    // Build steps need no network (sources are fetched and verified on the host), except to
    // reach distcc workers.
    argv.push(if step.network { "--network=host" } else { "--network=none" }.into());
    if step.interactive && c.stdin_is_tty {
        argv.push("-it".into());
    }
    let mut mounts: Vec<Mount> = c.workdirs.iter().map(|p| Mount { path: p.clone(), read_only: false }).collect();
    for m in &step.mounts {
        // A path inside an already mounted folder needs no mount of its own.
        if !mounts.iter().any(|have| m.path.starts_with(&have.path)) {
            mounts.push(m.clone());
        }
    }
    for m in &mounts {
        // Same absolute path inside: paths printed by make and the kernel's O= logic stay valid.
        argv.push(format!("--volume={0}:{0}{1}", m.path, if m.read_only { ":ro" } else { "" }));
    }
    argv.push(format!("--workdir={}", step.cwd));
    // make and menuconfig want a HOME and a TERM; the user inside has no passwd entry.
    argv.push("--env=HOME=/tmp".into());
    if step.interactive {
        argv.push(format!("--env=TERM={}", std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
        if c.utf8 {
            // Box lines as Unicode characters: tmux and screen show the VT100 line-drawing
            // set that ncurses uses otherwise as `qqqq` and `x`.
            argv.extend(["--env=LANG=C.UTF-8".into(), "--env=NCURSES_NO_UTF8_ACS=1".into()]);
        }
    }
    for (k, v) in &step.env {
        argv.push(format!("--env={k}={v}"));
    }
    argv.push(c.image.clone());
    if watched {
        argv.push(WATCHDOG.into());
    }
    argv.extend(step.argv.iter().cloned());
    argv
}

/// Quotes an argv for display only (commands are never run through a shell).
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs steps in the container or on the host. Output goes to a log under `logs`; the terminal
/// gets the command, one live status line and, on failure, the log's end (`verbose`: everything).
pub struct Runner {
    container: Option<Container>,
    logs: Utf8PathBuf,
    verbose: bool,
    /// Logs already started by this process: the first step of a run truncates, later ones append.
    opened: RefCell<HashSet<String>>,
}

/// Lines of a failed step's log shown on the terminal.
const FAILURE_TAIL: usize = 40;

impl Runner {
    pub fn new(container: Option<Container>, logs: Utf8PathBuf, verbose: bool) -> Runner {
        Runner { container, logs, verbose, opened: RefCell::default() }
    }

    /// The container settings for `engine` and `image`, as this user with this terminal.
    pub fn container(engine: &str, image: &str, workdirs: Vec<Utf8PathBuf>) -> Container {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Container {
            engine: engine.into(),
            image: image.into(),
            uid,
            gid,
            workdirs,
            stdin_is_tty: std::io::stdin().is_terminal(),
            utf8: ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .is_some_and(|v| v.to_uppercase().replace('-', "").contains("UTF8")),
        }
    }

    pub fn image(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.image.as_str())
    }

    /// Prints the step as the user would type it, then runs it to completion, logging its output.
    pub fn run(&self, step: &Step) -> Result<()> {
        eprintln!("$ {}", display(&step.argv));
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
        let current = Current { pid: child.id(), container: self.container.as_ref().map(|c| (c.engine.clone(), name)) };
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

    /// Runs a short step quietly and returns its output (probes, not builds).
    pub fn output(&self, step: &Step) -> Result<std::process::Output> {
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
    container: Option<(String, String)>,
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
    let quiet = |argv: &[&str]| {
        std::process::Command::new(argv[0]).args(&argv[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status()
    };
    let pgid = current.pid as libc::pid_t;
    match &current.container {
        Some((engine, name)) => {
            let _ = quiet(&[engine, "exec", name, "sh", "-c", "kill -INT -1"]);
        }
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
        Some((engine, name)) => {
            let _ = quiet(&[engine, "kill", name]);
        }
        // SAFETY: as above.
        None => unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(tty: bool) -> Container {
        Container {
            engine: "docker".into(),
            image: "teeny-linux-builder:abc".into(),
            uid: 1000,
            gid: 100,
            workdirs: vec!["/home/u/teeny".into()],
            stdin_is_tty: tty,
            utf8: true,
        }
    }

    fn make_step() -> Step {
        Step::new("/home/u/teeny/build/src/linux".into(), &["make", "O=/home/u/teeny/build/obj/x", "allnoconfig"])
            .env("KBUILD_BUILD_USER", "teeny")
    }

    #[test]
    fn a_watched_step_keeps_stdin_open_and_runs_under_the_watchdog() {
        let argv = container_argv(&container(false), &make_step(), "n", true);
        assert!(argv.contains(&"--interactive".to_string()), "{argv:?}");
        let image = argv.iter().position(|a| a == "teeny-linux-builder:abc").unwrap();
        assert_eq!(argv[image + 1], WATCHDOG);
        assert_eq!(argv[image + 2..], make_step().argv[..]);
    }

    #[test]
    fn runs_as_the_user_without_network_with_same_path_mounts() {
        let argv = container_argv(&container(false), &make_step(), "n", false);
        let s = argv.join(" ");
        assert_eq!(&argv[..4], ["docker", "run", "--rm", "--init"]);
        assert!(argv.contains(&"--user=1000:100".to_string()), "{s}");
        assert!(argv.contains(&"--network=none".to_string()), "{s}");
        assert!(argv.contains(&"--volume=/home/u/teeny:/home/u/teeny".to_string()), "{s}");
        assert!(argv.contains(&"--workdir=/home/u/teeny/build/src/linux".to_string()), "{s}");
        assert!(argv.contains(&"--env=KBUILD_BUILD_USER=teeny".to_string()), "{s}");
        // The image comes right before the step's own argv, which is passed through unchanged.
        let image = argv.iter().position(|a| a == "teeny-linux-builder:abc").unwrap();
        assert_eq!(argv[image + 1..], make_step().argv[..]);
        assert!(!argv.contains(&"-it".to_string()));
        let argv = container_argv(&container(false), &make_step().network(), "n", false);
        assert!(argv.contains(&"--network=host".to_string()) && !argv.contains(&"--network=none".to_string()));
    }

    #[test]
    fn terminal_only_for_interactive_steps_with_a_terminal() {
        let step = make_step().interactive();
        assert!(container_argv(&container(true), &step, "n", false).contains(&"-it".to_string()));
        assert!(!container_argv(&container(false), &step, "n", false).contains(&"-it".to_string()));
        assert!(!container_argv(&container(true), &make_step(), "n", false).contains(&"-it".to_string()));
    }

    #[test]
    fn configurators_draw_unicode_lines_in_a_utf8_terminal() {
        let step = make_step().interactive();
        let utf8 = container_argv(&container(true), &step, "n", false);
        assert!(
            utf8.contains(&"--env=NCURSES_NO_UTF8_ACS=1".to_string())
                && utf8.contains(&"--env=LANG=C.UTF-8".to_string())
        );
        let mut c = container(true);
        c.utf8 = false;
        assert!(!container_argv(&c, &step, "n", false).iter().any(|a| a.contains("NCURSES")));
        assert!(!container_argv(&container(true), &make_step(), "n", false).iter().any(|a| a.contains("NCURSES")));
    }

    #[test]
    fn extra_mounts_are_added_once_and_read_only_when_asked() {
        let step = make_step().mount("/usr/src/linux".into(), true).mount("/home/u/teeny/build/downloads".into(), true);
        let argv = container_argv(&container(false), &step, "n", false);
        assert!(argv.contains(&"--volume=/usr/src/linux:/usr/src/linux:ro".to_string()));
        assert_eq!(argv.iter().filter(|a| a.starts_with("--volume=")).count(), 2);
    }

    #[test]
    fn podman_keeps_the_user_id() {
        let mut c = container(false);
        c.engine = "podman".into();
        assert!(container_argv(&c, &make_step(), "n", false).contains(&"--userns=keep-id".to_string()));
    }

    #[test]
    fn containers_are_named_so_they_can_be_stopped() {
        let argv = container_argv(&container(false), &make_step(), "teeny-42-0", false);
        assert!(argv.contains(&"--name=teeny-42-0".to_string()));
    }

    #[test]
    fn status_line_shows_elapsed_time_and_the_last_output_fitting_the_terminal() {
        let line = status_line(Duration::from_secs(65), "  CC      kernel/fork.o", 80);
        assert_eq!(line, "  [1m05s] CC kernel/fork.o");
        assert_eq!(status_line(Duration::from_millis(4200), &"x".repeat(200), 30).chars().count(), 29);
        assert_eq!(elapsed(Duration::from_millis(4270)), "4.2s");
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let argv: Vec<String> = ["make", "O=/a b", "it's"].iter().map(|s| s.to_string()).collect();
        assert_eq!(display(&argv), r"make 'O=/a b' 'it'\''s'");
    }
}
