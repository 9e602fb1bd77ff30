//! The container engine (docker or podman): the one module that knows its command lines. The
//! builder image's check and build, a build step's `run` in the builder container, distcc's
//! workers (`ps`, `rm`, `logs`) and stopping containers on a signal or after a crash.

use crate::step::{Mount, Step};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::IsTerminal;
use std::process::{Command, Output, Stdio};

/// A container engine, by its binary's name (see [`crate::runner::RunnerKind::engine`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine(&'static str);

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Engine {
    pub const DOCKER: Engine = Engine("docker");
    pub const PODMAN: Engine = Engine("podman");

    fn command(self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.0);
        cmd.args(args);
        cmd
    }

    fn output(self, args: &[&str]) -> Result<Output> {
        self.command(args).output().with_context(|| format!("cannot run {self}"))
    }

    /// Runs a command whose outcome does not matter (stopping what may be gone already).
    fn quietly(self, args: &[&str]) {
        let _ = self.command(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// One line saying why the engine cannot be used, and what to do.
    pub fn check(self) -> Result<()> {
        let out = match self.command(&["version", "--format", "{{.Server.Version}}"]).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{self} not found on PATH: install it, or build with your own tools using --runner host")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot run {self}")),
        };
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("permission denied") {
            bail!(
                "{self} daemon refuses this user (permission denied): add yourself to the `{self}` group and log in again, or use --runner host"
            )
        }
        bail!(
            "{self} daemon is not running ({}): start it (e.g. `sudo systemctl start {self}`), or use --runner host",
            err.lines().last().unwrap_or("no answer").trim()
        )
    }

    /// Whether the image `tag` is here.
    pub fn has_image(self, tag: &str) -> Result<bool> {
        Ok(self.output(&["image", "inspect", "--format", "{{.Id}}", tag])?.status.success())
    }

    /// `ENGINE build` of `context` with `dockerfile`, tagged `tag`, with `--build-arg KEY=VALUE`s.
    pub fn build_argv(
        self,
        tag: &str,
        args: &[(&str, &str)],
        dockerfile: &Utf8Path,
        context: &Utf8Path,
    ) -> Vec<String> {
        let mut argv: Vec<String> = [self.0, "build", "--tag", tag].map(String::from).into();
        for (k, v) in args {
            argv.extend(["--build-arg".to_owned(), format!("{k}={v}")]);
        }
        argv.extend(["--file".to_owned(), dockerfile.to_string(), context.to_string()]);
        argv
    }

    /// `ENGINE run OPTIONS… IMAGE COMMAND…`.
    pub fn run_argv(self, options: Vec<String>, image: &str, command: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut argv = vec![self.0.to_owned(), "run".to_owned()];
        argv.extend(options);
        argv.push(image.to_owned());
        argv.extend(command);
        argv
    }

    /// Starts a detached container, `argv` being its `ENGINE run --detach …` ([`Engine::run_argv`]).
    pub fn start(self, argv: &[String]) -> Result<()> {
        let out = Command::new(&argv[0]).args(&argv[1..]).output().with_context(|| format!("cannot run {self}"))?;
        if !out.status.success() {
            bail!("{self} run failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// `ENGINE ps --filter FILTER --format FORMAT`: one line per running container, with `all`
    /// stopped ones too.
    pub fn ps(self, filter: &str, format: &str, all: bool) -> Result<String> {
        let mut args = vec!["ps", "--filter", filter, "--format", format];
        if all {
            args.push("--all");
        }
        Ok(String::from_utf8_lossy(&self.output(&args)?.stdout).into_owned())
    }

    /// Removes the container `name`, running or stopped.
    pub fn remove(self, name: &str) -> Result<()> {
        let out = self.output(&["rm", "-f", name])?;
        anyhow::ensure!(
            out.status.success(),
            "{self} rm -f {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// [`Engine::remove`] as a step the user asked for: the command is printed first.
    pub fn remove_shown(self, name: &str) -> Result<()> {
        eprintln!("$ {self} rm -f {name}");
        self.remove(name)
    }

    /// The last `lines` lines the container `name` wrote: its stdout's, then its stderr's.
    pub fn logs_tail(self, name: &str, lines: usize) -> Result<String> {
        let out = self.output(&["logs", "--tail", &lines.to_string(), name])?;
        Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// SIGINT to every process in the container `name` (make deletes the target it was writing).
    pub fn interrupt(self, name: &str) {
        self.quietly(&["exec", name, "sh", "-c", "kill -INT -1"]);
    }

    /// SIGKILL to the container `name`, which also removes it (it runs with `--rm`).
    pub fn kill(self, name: &str) {
        self.quietly(&["kill", name]);
    }

    /// Stops the builder containers left by process `pid` (named `teeny-PID-N`), e.g. one
    /// killed with SIGKILL, which could not stop them itself.
    pub fn stop_containers_of(self, pid: &str) {
        let filter = format!("name=^teeny-{pid}-");
        let Ok(out) = self.command(&["ps", "-q", "--filter", &filter]).output() else { return };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            eprintln!("stopping its container {id}");
            self.kill(id);
        }
    }
}

/// What the container command line depends on besides the step itself.
#[derive(Clone, Debug)]
pub struct Container {
    pub engine: Engine,
    pub image: String,
    pub uid: u32,
    pub gid: u32,
    /// Always mounted read-write at the same absolute path: the repository and the build folder.
    pub workdirs: Vec<Utf8PathBuf>,
    pub stdin_is_tty: bool,
    /// The user's locale is UTF-8 (LC_ALL, LC_CTYPE or LANG says so).
    pub utf8: bool,
}

impl Container {
    /// The container settings for `engine` and `image`, as this user with this terminal.
    pub fn new(engine: Engine, image: &str, workdirs: Vec<Utf8PathBuf>) -> Container {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Container {
            engine,
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
}

/// The image's wrapper that ends a step's command when its standard input closes
/// (docker/teeny-run): xtask holds it open, so the build dies with the xtask that started it.
pub const WATCHDOG: &str = "teeny-run";

/// The full `docker run …` argv for a step, in a container called `name` (so that it can be
/// stopped by name on an interrupt); with `watched`, the command runs under [`WATCHDOG`] with
/// stdin kept open. Pure, so it is unit-tested.
pub fn container_argv(c: &Container, step: &Step, name: &str, watched: bool) -> Vec<String> {
    let mut options: Vec<String> = vec!["--rm".into(), "--init".into()];
    if watched {
        options.push("--interactive".into());
    }
    options.push(format!("--name={name}"));
    // Files in build/ belong to the user, not to root.
    options.push(format!("--user={}:{}", c.uid, c.gid));
    if c.engine == Engine::PODMAN {
        options.push("--userns=keep-id".into());
    }
    // Build steps need no network (sources are fetched and verified on the host), except to
    // reach distcc workers.
    options.push(if step.network { "--network=host" } else { "--network=none" }.into());
    if step.interactive && c.stdin_is_tty {
        options.push("-it".into());
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
        options.push(format!("--volume={0}:{0}{1}", m.path, if m.read_only { ":ro" } else { "" }));
    }
    options.push(format!("--workdir={}", step.cwd));
    // make and menuconfig want a HOME and a TERM; the user inside has no passwd entry.
    options.push("--env=HOME=/tmp".into());
    if step.interactive {
        options.push(format!("--env=TERM={}", std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
        if c.utf8 {
            // Box lines as Unicode characters: tmux and screen show the VT100 line-drawing
            // set that ncurses uses otherwise as `qqqq` and `x`.
            options.extend(["--env=LANG=C.UTF-8".into(), "--env=NCURSES_NO_UTF8_ACS=1".into()]);
        }
    }
    for (k, v) in &step.env {
        options.push(format!("--env={k}={v}"));
    }
    let watchdog = watched.then(|| WATCHDOG.to_owned());
    c.engine.run_argv(options, &c.image, watchdog.into_iter().chain(step.argv.iter().cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(tty: bool) -> Container {
        Container {
            engine: Engine::DOCKER,
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
    fn the_image_is_built_with_its_tag_and_build_args() {
        let argv = Engine::PODMAN.build_argv(
            "teeny-linux-builder:abc",
            &[("TEENY_TAG", "teeny-linux-builder:abc")],
            "/r/docker/Dockerfile".into(),
            "/r/docker".into(),
        );
        assert_eq!(
            argv.join(" "),
            "podman build --tag teeny-linux-builder:abc --build-arg TEENY_TAG=teeny-linux-builder:abc \
             --file /r/docker/Dockerfile /r/docker"
        );
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
        c.engine = Engine::PODMAN;
        let argv = container_argv(&c, &make_step(), "n", false);
        assert!(argv[0] == "podman" && argv.contains(&"--userns=keep-id".to_string()), "{argv:?}");
    }

    #[test]
    fn containers_are_named_so_they_can_be_stopped() {
        let argv = container_argv(&container(false), &make_step(), "teeny-42-0", false);
        assert!(argv.contains(&"--name=teeny-42-0".to_string()));
    }
}
