//! Processes: whether another one, by pid, still runs and as what; and a child that dies with us.

/// Makes the process that `cmd` starts get SIGKILL when this one dies, even by SIGKILL, which
/// runs no Drop (PR_SET_PDEATHSIG).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The command name of process `pid` if it runs: a zombie does not (where no init reaps
/// orphans, in containers and CI, a killed process stays one with its /proc entry).
pub fn live_comm(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    live_comm_of(&stat).map(str::to_owned)
}

/// [`live_comm`] of a `/proc/PID/stat` line: `PID (COMM) STATE …`; COMM may hold `)`.
fn live_comm_of(stat: &str) -> Option<&str> {
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map_or("", |(_, comm)| comm);
    let state = tail.trim_start().chars().next();
    (!matches!(state, None | Some('Z' | 'X' | 'x'))).then_some(comm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_does_not_run() {
        assert_eq!(live_comm_of("42 (qemu-system-x86) S 1 42 42 0 -1"), Some("qemu-system-x86"));
        assert_eq!(live_comm_of("42 (a) b) R 1 42"), Some("a) b"));
        assert_eq!(live_comm_of("42 (qemu-system-x86) Z 1 42 42 0 -1"), None);
        assert_eq!(live_comm_of("garbage"), None);
        assert!(live_comm(std::process::id()).is_some());
        assert_eq!(live_comm(0), None);
    }
}
