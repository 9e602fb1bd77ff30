//! Container-engine commands that are not a build step: stopping the containers of a run.

use std::process::{Command, Stdio};

/// Stops the builder containers left by process `pid` (named `teeny-PID-N`), e.g. one killed
/// with SIGKILL, which could not stop them itself.
pub fn stop_containers_of(engine: &str, pid: &str) {
    let filter = format!("name=^teeny-{pid}-");
    let Ok(out) = Command::new(engine).args(["ps", "-q", "--filter", &filter]).output() else { return };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        eprintln!("stopping its container {id}");
        let _ = Command::new(engine).args(["kill", id]).stdout(Stdio::null()).status();
    }
}
