//! `bench --profile`'s sampler: the guest's program counter, read through qemu's monitor (QMP
//! on a unix socket, `info registers`) every few milliseconds while it boots.

use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The time the sampler asks for between samples. What it gets is longer: each sample is a
/// round trip through qemu's monitor, which answers when its main loop gets to the command, and
/// the report says what the mean interval was (see `profile::Sampling`).
pub const INTERVAL: Duration = Duration::from_millis(2);

/// One reading of the program counter: when it was asked for, when qemu answered, the value.
pub struct Sample {
    pub asked: Instant,
    pub answered: Instant,
    pub pc: u64,
}

/// qemu's arguments for the monitor the sampler reads.
pub fn qemu_args(socket: &Utf8Path) -> Vec<String> {
    vec!["-qmp".into(), format!("unix:{socket},server=on,wait=off")]
}

/// Samples in the background until `finish`, or until qemu closes the monitor.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<Sample>>>,
}

impl Sampler {
    /// Connects to `socket` as soon as qemu creates it; `register` is the program counter's name
    /// in the arch's `info registers`.
    pub fn start(socket: Utf8PathBuf, register: &'static str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || sample(&socket, register, &stopped));
        Sampler { stop, thread }
    }

    /// The samples, in the order they were taken.
    pub fn finish(self) -> Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the sampler thread panicked"))?
    }
}

fn sample(socket: &Utf8Path, register: &str, stop: &AtomicBool) -> Result<Vec<Sample>> {
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(10) && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot reach qemu's monitor at {socket}")),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    // qemu greets, then answers each command with one line; events may come between.
    let mut reply = |writer: &mut UnixStream, command: &str| -> Result<Option<serde_json::Value>> {
        writer.write_all(command.as_bytes())?;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(None); // qemu exited
            }
            let v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("qemu monitor: {line}"))?;
            if let Some(r) = v.get("return") {
                return Ok(Some(r.clone()));
            }
            if let Some(e) = v.get("error") {
                bail!("qemu monitor: {e}");
            }
        }
    };
    let mut samples = Vec::new();
    if reply(&mut writer, "{\"execute\":\"qmp_capabilities\"}\n")?.is_none() {
        return Ok(samples);
    }
    let info = "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info registers\"}}\n";
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let Ok(Some(text)) = reply(&mut writer, info) else { break };
        // qemu reads the registers when its main loop gets to the command, which can be many
        // milliseconds after we ask (while it writes console output), and answers at once.
        let answered = Instant::now();
        if let Some(pc) = text.as_str().and_then(|t| program_counter(t, register)) {
            samples.push(Sample { asked, answered, pc });
        }
        std::thread::sleep(INTERVAL.saturating_sub(asked.elapsed()));
    }
    Ok(samples)
}

/// The program counter in `info registers` output: `RIP=…` (x86), `PC=…` (arm64), `R15=…`
/// (arm), or the word after the register's name: `pc       …` (riscv), `NIP …` (powerpc),
/// `PSW=mask … addr …` (s390).
pub fn program_counter(info: &str, register: &str) -> Option<u64> {
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    for line in info.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word == register {
                return words.next().and_then(hex);
            }
            if let Some(value) = word.strip_prefix(register).and_then(|w| w.strip_prefix('=')) {
                return hex(value);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_counter_is_read_from_each_arch_s_info_registers() {
        let x86 = "\r\nCPU#0\r\nRAX=0000000000000000 RBX=ffffffff82a03e30\nRIP=ffffffff81000f2e RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        let arm64 = "\nCPU#0\n PC=ffff800008010000 X00=0000000000000000 X01=0000000000000000\n X02=0000000000000000\n";
        let riscv = " V      =   0\n pc       ffffffff80002000\n mhartid  0000000000000000\n";
        let arm = "R00=00000000 R01=ffffffff R02=00000000 R03=00000000\nR12=00000000 R13=c1201f58 R14=c0100c7c R15=c0101234\nPSR=600001d3 -ZC- A S svc32\n";
        let ppc = "NIP c000000000012344   LR c000000000012300 CTR 0000000000000000 XER 0000000000000000 CPU#0\nMSR 8000000000001033 HID0 0000000000000000  HF 6c000000 iidx 3 didx 3\n";
        let s390 = "PSW=mask 0704c00180000000 addr 0000000000123456 cc 00\nR00=0000000000000000 R01=0000000000000000\n";
        // Every arch's register is in one of the formats: a new format needs its example here.
        let examples = [x86, arm64, riscv, arm, ppc, s390];
        for arch in crate::arch::ARCHES {
            let found = examples.iter().any(|text| program_counter(text, arch.monitor_pc).is_some());
            assert!(found, "{}: no `info registers` example has {}", arch.name, arch.monitor_pc);
        }
        assert_eq!(program_counter(x86, "RIP"), Some(0xffffffff81000f2e));
        assert_eq!(program_counter(arm64, "PC"), Some(0xffff800008010000));
        assert_eq!(program_counter(riscv, "pc"), Some(0xffffffff80002000));
        assert_eq!(program_counter(arm, "R15"), Some(0xc0101234));
        assert_eq!(program_counter(ppc, "NIP"), Some(0xc000000000012344));
        assert_eq!(program_counter(s390, "addr"), Some(0x123456));
        assert_eq!(program_counter("EIP=0000fff0 EFL=00000002", "RIP"), None);
    }
}
