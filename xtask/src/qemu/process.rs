//! qemu as a child process: started so that it dies with us, its console and stderr read by
//! threads into one channel, and the stderr lines that say it cannot go on.

use anyhow::{Context, Result};
use std::io::{BufRead, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// What qemu's reader threads send.
pub enum Event {
    /// Serial console bytes (headless only).
    Console(Vec<u8>),
    /// A line qemu wrote to its stderr.
    Qemu(String),
}

/// Starts qemu with stderr read line by line; `console`: also stdin and stdout piped (headless).
/// Both threads end, so the channel disconnects, when qemu exits.
pub fn spawn(argv: &[String], console: bool) -> Result<(Child, Receiver<Event>)> {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).stderr(Stdio::piped());
    if console {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    }
    // If we die without running Drop, qemu dies too.
    crate::proc::die_with_parent(&mut cmd);
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
pub fn causes(first: String, rx: &Receiver<Event>) -> Vec<String> {
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

pub fn is_kvm(argv: &[String]) -> bool {
    argv.iter().any(|a| a == "-enable-kvm")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
