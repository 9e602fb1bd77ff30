//! The one place that turns a build step into a command line: in the builder container
//! (docker or podman) or, with `--runner host`, directly on this machine.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::IsTerminal;

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

/// A bind mount besides the repository and the build folder, which are always mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub path: Utf8PathBuf,
    pub read_only: bool,
}

/// One command of the walk-through, as the user would type it inside the builder.
#[derive(Clone, Debug, Default)]
pub struct Step {
    pub argv: Vec<String>,
    pub cwd: Utf8PathBuf,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Needs the user's terminal (menuconfig and friends).
    pub interactive: bool,
}

impl Step {
    pub fn new(cwd: &Utf8Path, argv: &[&str]) -> Step {
        Step { argv: argv.iter().map(|s| s.to_string()).collect(), cwd: cwd.to_owned(), ..Step::default() }
    }
    pub fn env(mut self, key: &str, value: &str) -> Step {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
    pub fn mount(mut self, path: &Utf8Path, read_only: bool) -> Step {
        self.mounts.push(Mount { path: path.to_owned(), read_only });
        self
    }
    pub fn interactive(mut self) -> Step {
        self.interactive = true;
        self
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
}

/// The full `docker run …` argv for a step. Pure, so it is unit-tested.
pub fn container_argv(c: &Container, step: &Step) -> Vec<String> {
    let mut argv: Vec<String> = vec![c.engine.clone(), "run".into(), "--rm".into(), "--init".into()];
    // Files in build/ belong to the user, not to root.
    argv.push(format!("--user={}:{}", c.uid, c.gid));
    if c.engine == "podman" {
        argv.push("--userns=keep-id".into());
    }
    // Build steps never need the network: sources are fetched and verified on the host.
    argv.push("--network=none".into());
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
    }
    for (k, v) in &step.env {
        argv.push(format!("--env={k}={v}"));
    }
    argv.push(c.image.clone());
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

/// Runs steps in the container or on the host.
pub struct Runner {
    container: Option<Container>,
}

impl Runner {
    pub fn host() -> Runner {
        Runner { container: None }
    }

    pub fn container(engine: &str, image: &str, workdirs: Vec<Utf8PathBuf>) -> Runner {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Runner {
            container: Some(Container {
                engine: engine.into(),
                image: image.into(),
                uid,
                gid,
                workdirs,
                stdin_is_tty: std::io::stdin().is_terminal(),
            }),
        }
    }

    /// The argv that really runs: the container wrapper around the step, or the step itself.
    fn argv(&self, step: &Step) -> Vec<String> {
        match &self.container {
            Some(c) => container_argv(c, step),
            None => step.argv.clone(),
        }
    }

    /// Prints the step as the user would type it, then runs it to completion. Its output goes to
    /// stderr: stdout carries only results (a guest command's output, tables).
    pub fn run(&self, step: &Step) -> Result<()> {
        eprintln!("$ {}", display(&step.argv));
        let argv = self.argv(step);
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if self.container.is_none() {
            cmd.current_dir(&step.cwd).envs(step.env.iter().map(|(k, v)| (k, v)));
        }
        if !step.interactive {
            // Like a CI job: build steps never wait for input.
            cmd.stdin(std::process::Stdio::null()).stdout(std::io::stderr());
        }
        let status = cmd.status().with_context(|| format!("cannot start {}", argv[0]))?;
        anyhow::ensure!(status.success(), "`{}` failed: {status}", display(&step.argv));
        Ok(())
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
        }
    }

    fn make_step() -> Step {
        Step::new("/home/u/teeny/build/src/linux".into(), &["make", "O=/home/u/teeny/build/obj/x", "allnoconfig"])
            .env("KBUILD_BUILD_USER", "teeny")
    }

    #[test]
    fn runs_as_the_user_without_network_with_same_path_mounts() {
        let argv = container_argv(&container(false), &make_step());
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
    }

    #[test]
    fn terminal_only_for_interactive_steps_with_a_terminal() {
        let step = make_step().interactive();
        assert!(container_argv(&container(true), &step).contains(&"-it".to_string()));
        assert!(!container_argv(&container(false), &step).contains(&"-it".to_string()));
        assert!(!container_argv(&container(true), &make_step()).contains(&"-it".to_string()));
    }

    #[test]
    fn extra_mounts_are_added_once_and_read_only_when_asked() {
        let step = make_step().mount("/usr/src/linux".into(), true).mount("/home/u/teeny/build/downloads".into(), true);
        let argv = container_argv(&container(false), &step);
        assert!(argv.contains(&"--volume=/usr/src/linux:/usr/src/linux:ro".to_string()));
        assert_eq!(argv.iter().filter(|a| a.starts_with("--volume=")).count(), 2);
    }

    #[test]
    fn podman_keeps_the_user_id() {
        let mut c = container(false);
        c.engine = "podman".into();
        assert!(container_argv(&c, &make_step()).contains(&"--userns=keep-id".to_string()));
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let argv: Vec<String> = ["make", "O=/a b", "it's"].iter().map(|s| s.to_string()).collect();
        assert_eq!(display(&argv), r"make 'O=/a b' 'it'\''s'");
    }
}
