//! `bench --profile`: samples the guest's program counter through qemu's monitor (QMP on a unix
//! socket, `info registers`) every few milliseconds while it boots, maps each address to a
//! function of vmlinux, and reports the top functions by share of samples, per phase of the
//! boot's timeline: a table and build/bench/profile-ARCH-NAME.svg.

use super::svg::Svg;
use super::timeline::Timeline;
use crate::elf::{Symbol, symbol_at};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between samples. A monitor round trip costs well under a millisecond.
pub const INTERVAL: Duration = Duration::from_millis(2);

/// The name of an address outside vmlinux's code: firmware, boot code or user space.
const OUTSIDE: &str = "(not in vmlinux)";

/// qemu's arguments for the monitor the sampler reads.
pub fn qemu_args(socket: &Utf8Path) -> Vec<String> {
    vec!["-qmp".into(), format!("unix:{socket},server=on,wait=off")]
}

/// Samples in the background until `finish`, or until qemu closes the monitor.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<(Instant, u64)>>>,
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

    /// The samples: when each was taken, and the program counter.
    pub fn finish(self) -> Result<Vec<(Instant, u64)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the sampler thread panicked"))?
    }
}

fn sample(socket: &Utf8Path, register: &str, stop: &AtomicBool) -> Result<Vec<(Instant, u64)>> {
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
            samples.push((answered, pc));
        }
        std::thread::sleep(INTERVAL.saturating_sub(asked.elapsed()));
    }
    Ok(samples)
}

/// The program counter in `info registers` output: `RIP=…` (x86), `PC=…` (arm64) or a
/// `pc       …` line (riscv).
pub fn program_counter(info: &str, register: &str) -> Option<u64> {
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    for line in info.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if first == register {
            return words.next().and_then(hex);
        }
        for word in line.split_whitespace() {
            if let Some(value) = word.strip_prefix(register).and_then(|w| w.strip_prefix('=')) {
                return hex(value);
            }
        }
    }
    None
}

/// One function's samples in one phase.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Entry {
    pub function: String,
    pub phase: String,
    /// Of all the boot's samples.
    pub share: f64,
    pub samples: usize,
}

/// Names each sample (host seconds since qemu started, program counter) by its function and
/// phase; the (function, phase) pairs by samples, most first.
pub fn attribute(samples: &[(f64, u64)], symbols: &[Symbol], timeline: &Timeline) -> Vec<Entry> {
    let mut counts: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    for &(host_s, pc) in samples {
        let function = symbol_at(symbols, pc).map_or(OUTSIDE, |s| s.name.as_str());
        let phase = timeline.phase_at(host_s).map_or("after the prompt", |p| p.name.as_str());
        *counts.entry((function, phase)).or_default() += 1;
    }
    let total = samples.len().max(1) as f64;
    let mut entries: Vec<Entry> = counts
        .into_iter()
        .map(|((function, phase), n)| Entry {
            function: function.to_owned(),
            phase: phase.to_owned(),
            share: n as f64 / total,
            samples: n,
        })
        .collect();
    entries.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.function.cmp(&b.function)));
    entries
}

/// Per phase of the timeline, in boot order: its samples and its top functions.
pub fn table(entries: &[Entry], timeline: &Timeline) -> String {
    let total: usize = entries.iter().map(|e| e.samples).sum();
    let mut t = format!("| phase | samples | top functions (share of all {total} samples) |\n|---|---|---|\n");
    let mut phases: Vec<&str> = timeline.phases.iter().filter(|p| p.depth == 0).map(|p| p.name.as_str()).collect();
    phases.push("after the prompt");
    for phase in phases {
        let of: Vec<&Entry> = entries.iter().filter(|e| e.phase == phase).collect();
        if of.is_empty() {
            continue;
        }
        let n: usize = of.iter().map(|e| e.samples).sum();
        let top: Vec<String> = of.iter().take(4).map(|e| format!("{} {:.1}%", e.function, e.share * 100.0)).collect();
        t += &format!("| {phase} | {n} | {} |\n", top.join(", "));
    }
    t
}

/// How many (function, phase) bars the chart shows.
const BARS: usize = 25;

/// The top functions as bars of their share, coloured by phase.
pub fn svg(entries: &[Entry], title: &str) -> String {
    const COLORS: [&str; 8] = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"];
    let top = &entries[..entries.len().min(BARS)];
    let mut phases: Vec<&str> = Vec::new();
    for e in top {
        if !phases.contains(&e.phase.as_str()) {
            phases.push(&e.phase);
        }
    }
    let color = |phase: &str| COLORS[phases.iter().position(|p| *p == phase).unwrap_or(0) % COLORS.len()];
    // Room for the longest name, at about 6.5 px a character.
    let longest = top.iter().map(|e| e.function.chars().count()).max().unwrap_or(0);
    let (left, width, row_h) = (20.0 + longest as f64 * 6.5, 420.0, 17.0);
    let legend_h = 16.0 * phases.len() as f64;
    let top_y = 30.0 + legend_h + 8.0;
    let mut svg = Svg::new(left + width + 70.0, top_y + top.len() as f64 * row_h + 50.0);
    svg.text(10.0, 16.0, "font-weight=\"bold\" font-size=\"13\"", title);
    for (i, p) in phases.iter().enumerate() {
        svg.key(10.0, 34.0 + i as f64 * 16.0, color(p), p);
    }
    let max = top.iter().map(|e| e.share).fold(1e-9, f64::max);
    for (i, e) in top.iter().enumerate() {
        let y = top_y + i as f64 * row_h;
        svg.text(left - 6.0, y + 11.0, "text-anchor=\"end\"", &e.function);
        let w = e.share / max * width;
        svg.rect(left, y, w, 13.0, color(&e.phase), Some(&format!("{}: {} samples", e.phase, e.samples)));
        svg.text(left + w + 4.0, y + 11.0, "", &format!("{:.1}%", e.share * 100.0));
    }
    let axis_y = top_y + top.len() as f64 * row_h + 4.0;
    svg.line((left, top_y - 4.0), (left, axis_y), "#333");
    svg.text(left, axis_y + 16.0, "", "share of the boot's samples");
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::super::timeline::{Phase, Side};
    use super::*;

    #[test]
    fn the_program_counter_is_read_from_each_arch_s_info_registers() {
        let x86 = "\r\nCPU#0\r\nRAX=0000000000000000 RBX=ffffffff82a03e30\nRIP=ffffffff81000f2e RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        let arm64 = "\nCPU#0\n PC=ffff800008010000 X00=0000000000000000 X01=0000000000000000\n X02=0000000000000000\n";
        let riscv = " V      =   0\n pc       ffffffff80002000\n mhartid  0000000000000000\n";
        for arch in crate::arch::ARCHES {
            let text = match arch.name {
                "x86_64" => x86,
                "arm64" => arm64,
                _ => riscv,
            };
            assert!(program_counter(text, arch.monitor_pc).is_some(), "{}", arch.name);
        }
        assert_eq!(program_counter(x86, "RIP"), Some(0xffffffff81000f2e));
        assert_eq!(program_counter(arm64, "PC"), Some(0xffff800008010000));
        assert_eq!(program_counter(riscv, "pc"), Some(0xffffffff80002000));
        assert_eq!(program_counter("EIP=0000fff0 EFL=00000002", "RIP"), None);
    }

    fn timeline() -> Timeline {
        // Guest phases lie 0.2 s later on the host's clock.
        let phase = |name: &str, side, start_s: f64, duration_s: f64| {
            let host_start_s = if side == Side::Guest { start_s + 0.2 } else { start_s };
            let host_end_s = host_start_s + duration_s;
            Phase { name: name.into(), side, start_s, duration_s, host_start_s, host_end_s, depth: 0 }
        };
        Timeline {
            guest_uptime_s: 0.3,
            guest_clock_zero_host_s: 0.2,
            guest_clock_step_s: 0.004,
            host_prompt_s: 0.6,
            attributed: 1.0,
            phases: vec![
                phase("qemu, firmware and early kernel, until the guest's clock starts", Side::Host, 0.0, 0.2),
                phase("early setup, until the first initcall", Side::Guest, 0.0, 0.1),
                phase("freeing init memory", Side::Guest, 0.1, 0.2),
            ],
            profile: Vec::new(),
        }
    }

    #[test]
    fn samples_are_named_by_function_and_phase_and_ranked() {
        let symbols = vec![
            Symbol { addr: 0x1000, name: "calibrate_delay".into() },
            Symbol { addr: 0x2000, name: "memset".into() },
        ];
        let samples = [
            (0.05, 0x100),
            (0.25, 0x1010),
            (0.26, 0x1020),
            (0.35, 0x2008),
            (0.36, 0x2010),
            (0.37, 0x2000),
            (0.9, 0x2000),
        ];
        let entries = attribute(&samples, &symbols, &timeline());
        let rows: Vec<(&str, &str, usize)> =
            entries.iter().map(|e| (e.function.as_str(), e.phase.as_str(), e.samples)).collect();
        assert_eq!(
            rows,
            [
                ("memset", "freeing init memory", 3),
                ("calibrate_delay", "early setup, until the first initcall", 2),
                (OUTSIDE, "qemu, firmware and early kernel, until the guest's clock starts", 1),
                ("memset", "after the prompt", 1),
            ]
        );
        assert!((entries[0].share - 3.0 / 7.0).abs() < 1e-9);
        let t = table(&entries, &timeline());
        assert!(t.contains("| freeing init memory | 3 | memset 42.9% |"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("| qemu, firmware") && lines[5].starts_with("| after the prompt"), "{t}");
        let svg = svg(&entries, "x86_64/fast");
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(svg.contains(">memset</text>") && svg.contains("42.9%"), "{svg}");
    }
}
