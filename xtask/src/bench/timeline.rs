//! One boot from qemu start to the shell prompt, in named phases: the host's (qemu start until
//! the guest's clock starts; init's shell starting) on the host's clock, the guest's (early
//! setup, initcalls, unpacking the initramfs, freeing init memory, init) from its printk
//! timestamps; bootgraph.rs draws them on one time axis.

use crate::elf::{Symbol, symbol_at};
use crate::qemu::Line;
use anyhow::{Result, bail};
use serde::Serialize;

#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Host,
    Guest,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub side: Side,
    /// Host phases on the host's clock (seconds since qemu started), guest phases on the guest's.
    pub start_s: f64,
    pub duration_s: f64,
    /// Where it lies on the host's clock, which the chart and the profile use.
    pub host_start_s: f64,
    pub host_end_s: f64,
    /// 0: a phase of the boot; 1: a part of the phase above it (an initcall, the calibration).
    #[serde(skip)]
    pub depth: u8,
}

/// A moment of the boot on both clocks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Moment {
    guest_s: f64,
    host_s: f64,
}

impl Phase {
    fn new(name: &str, side: Side, from: Moment, to: Moment, depth: u8) -> Phase {
        let (start_s, end_s) = match side {
            Side::Host => (from.host_s, to.host_s),
            Side::Guest => (from.guest_s, to.guest_s),
        };
        Phase {
            name: name.to_owned(),
            side,
            start_s,
            duration_s: (end_s - start_s).max(0.0),
            host_start_s: from.host_s,
            host_end_s: to.host_s.max(from.host_s),
            depth,
        }
    }

    pub fn end_s(&self) -> f64 {
        self.start_s + self.duration_s
    }
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Timeline {
    /// init's "Boot took" (/proc/uptime).
    pub guest_uptime_s: f64,
    /// Host seconds since qemu started at which the guest's clock read 0.
    pub guest_clock_zero_host_s: f64,
    /// The printk clock's step (jiffies give 0.004 on x86 under TCG, when the TSC cannot be
    /// calibrated): lines printed while the console was live are refined by their arrival
    /// times, to within this step.
    pub guest_clock_step_s: f64,
    /// Host seconds from qemu start to the shell prompt.
    pub host_prompt_s: f64,
    /// Share of the guest's uptime at init that falls in a named phase.
    pub attributed: f64,
    pub phases: Vec<Phase>,
}

/// `[    0.123456] rest` → (0.123456, rest).
fn printk_time(line: &str) -> Option<(f64, &str)> {
    let (t, rest) = line.trim_start().strip_prefix('[')?.split_once(']')?;
    Some((t.trim().parse().ok()?, rest.trim_start()))
}

/// A console line with a printk timestamp: when it was printed, and its text after the stamp.
struct Printk<'a> {
    at: Moment,
    rest: &'a str,
}

/// The smallest step between distinct printk timestamps: the clock's resolution.
fn step(stamps: impl Iterator<Item = f64>) -> f64 {
    let mut times: Vec<f64> = stamps.filter(|t| *t > 0.0).collect();
    times.sort_by(f64::total_cmp);
    let step = times.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 1e-7).fold(f64::INFINITY, f64::min);
    if step.is_finite() { step } else { 0.0 }
}

/// When each line of the kernel's log was printed, on both clocks. `log` is the whole log
/// (dmesg): (timestamp, text). `console` is what reached the console, with arrival times.
///
/// Lines printed before the console was enabled came in one burst when it was; after it,
/// printk writes to the console as it goes, so a line's arrival is when it was printed: such a
/// line anchors the host's clock, and refines a coarse guest clock to within its step. Any other
/// line (not on the console, or buffered) is placed from its timestamp and the anchor before it,
/// or the first one after it. The guest's clock cannot simply be shifted onto the host's as a
/// whole: under TCG it is calibrated against an emulated timer, and can run some percent off or
/// jump when it is marked stable.
fn moments<'a>(log: &[(f64, &'a str)], console: &[(f64, f64, &str)]) -> (Vec<Printk<'a>>, f64, f64) {
    let step = step(log.iter().map(|s| s.0));
    let arrived: std::collections::HashMap<(u64, &str), f64> =
        console.iter().rev().map(|&(host, t, rest)| ((t.to_bits(), rest), host)).collect();
    let enabled = log.iter().position(|(_, rest)| rest.contains("console [") && rest.contains("] enabled"));
    // (index, host arrival) of each anchor.
    let anchors: Vec<(usize, f64)> = log
        .iter()
        .enumerate()
        .filter(|(i, _)| enabled.is_none_or(|e| *i >= e))
        // "Calibrating delay loop... 4000.00 BogoMIPS": printed as one line when the work after
        // "..." (pr_cont) is done, so it arrives then, not at its timestamp.
        .filter(|(_, (_, rest))| !rest.contains("... "))
        .filter_map(|(i, (t, rest))| arrived.get(&(t.to_bits(), *rest)).map(|h| (i, *h)))
        .collect();
    let Some(&(first, first_host)) = anchors.first() else {
        // Nothing reached the console: the guest's clock is all there is.
        return (
            log.iter().map(|&(t, rest)| Printk { at: Moment { guest_s: t, host_s: t }, rest }).collect(),
            0.0,
            step,
        );
    };
    let mut lines = Vec::new();
    // The last anchor, on both clocks.
    let mut before = Moment { guest_s: log[first].0, host_s: first_host };
    let mut next = anchors.iter().peekable();
    for (i, &(t, rest)) in log.iter().enumerate() {
        let at = match next.next_if(|a| a.0 == i) {
            Some(&(_, host_s)) => {
                before = Moment { guest_s: (before.guest_s + host_s - before.host_s).clamp(t, t + step), host_s };
                before
            }
            None => Moment { guest_s: t, host_s: before.host_s + t - before.guest_s },
        };
        lines.push(Printk { at, rest });
    }
    (lines, first_host - log[first].0, step)
}

/// One initcall: when it started and ended.
#[derive(Debug, PartialEq)]
struct Initcall<'a> {
    name: &'a str,
    start: Moment,
    end: Moment,
}

/// An initcall's name: `fn+0x0/0x10` with kallsyms, else its address, found in `symbols`.
fn initcall_name(printed: &str, symbols: &[Symbol]) -> String {
    let address = printed.strip_prefix("0x").and_then(|a| u64::from_str_radix(a, 16).ok());
    match address.and_then(|a| symbol_at(symbols, a)) {
        Some(s) => s.name.clone(),
        None => printed.split('+').next().unwrap_or(printed).to_owned(),
    }
}

/// Pairs `calling  fn+0x0/0x10 @ 1` with `initcall fn+0x0/0x10 returned 0 after N usecs`; the
/// duration is the kernel's own measure, finer than a coarse printk clock.
fn initcalls<'a>(lines: &[Printk<'a>]) -> Vec<Initcall<'a>> {
    let mut started = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for l in lines {
        if let Some(call) = l.rest.strip_prefix("calling") {
            if let Some(name) = call.split_whitespace().next() {
                started.insert(name, l.at);
            }
        } else if let Some(ret) = l.rest.strip_prefix("initcall ") {
            let name = ret.split_whitespace().next().unwrap_or_default();
            let usecs = ret.split(" after ").nth(1).and_then(|a| a.split_whitespace().next()?.parse::<f64>().ok());
            if let (Some(&start), Some(us)) = (started.get(name), usecs) {
                let end = Moment { guest_s: start.guest_s + us / 1e6, host_s: l.at.host_s };
                calls.push(Initcall { name, start, end });
            }
        }
    }
    calls
}

/// How many of the slowest initcalls the timeline opens up.
const SLOWEST: usize = 8;

/// The phases of a boot with `initcall_debug printk.time=1`, from the kernel's log (`dmesg`
/// after the boot; empty: the console's timestamped lines are the log), the console log,
/// init's uptime, when the prompt came, and vmlinux's symbols.
pub fn timeline(
    console: &[Line],
    dmesg: &[String],
    guest_uptime_s: f64,
    host_prompt_s: f64,
    symbols: &[Symbol],
) -> Result<Timeline> {
    // Up to the prompt: later lines are the output of commands (dmesg's, for one).
    let on_console: Vec<(f64, f64, &str)> = console
        .iter()
        .filter(|l| l.console && l.host_s <= host_prompt_s)
        .filter_map(|l| printk_time(&l.text).map(|(t, rest)| (l.host_s, t, rest)))
        .collect();
    let from_dmesg: Vec<(f64, &str)> = dmesg.iter().filter_map(|l| printk_time(l)).collect();
    let log =
        if from_dmesg.is_empty() { on_console.iter().map(|&(_, t, rest)| (t, rest)).collect() } else { from_dmesg };
    if log.is_empty() {
        bail!("no printk timestamps in the kernel's log (a config without PRINTK?)");
    }
    let (lines, zero, step) = moments(&log, &on_console);
    let boot_took = console.iter().find(|l| l.console && l.text.trim_start().starts_with("Boot took "));
    let init = Moment { guest_s: guest_uptime_s, host_s: boot_took.map_or(zero + guest_uptime_s, |l| l.host_s) };
    let at = |prefix: &str| lines.iter().position(|l| l.rest.starts_with(prefix));
    let after = |i: usize| lines.get(i + 1).map_or(init, |l| l.at);
    let latest = |a: Moment, b: Moment| if b.guest_s > a.guest_s { b } else { a };

    let calls = initcalls(&lines);
    let Some(first_call) = calls.iter().map(|c| c.start).reduce(|a, b| if b.guest_s < a.guest_s { b } else { a })
    else {
        bail!("no initcall lines in the kernel's log (booted without initcall_debug?)");
    };
    let calls_end = calls.iter().map(|c| c.end).fold(first_call, latest);
    let clock_zero = Moment { guest_s: 0.0, host_s: zero };
    let host_zero = Moment { guest_s: 0.0, host_s: 0.0 };
    let mut phases = vec![Phase::new(
        "qemu, firmware and early kernel, until the guest's clock starts",
        Side::Host,
        host_zero,
        clock_zero,
        0,
    )];
    phases.push(Phase::new("early setup, until the first initcall", Side::Guest, clock_zero, first_call, 0));
    if let Some(i) = at("Calibrating delay loop") {
        phases.push(Phase::new("delay-loop calibration", Side::Guest, lines[i].at, after(i), 1));
    }
    phases.push(Phase::new("initcalls", Side::Guest, first_call, calls_end, 0));
    let mut slowest: Vec<&Initcall> = calls.iter().filter(|c| c.end.guest_s - c.start.guest_s >= 0.0005).collect();
    slowest.sort_by(|a, b| (b.end.guest_s - b.start.guest_s).total_cmp(&(a.end.guest_s - a.start.guest_s)));
    slowest.truncate(SLOWEST);
    slowest.sort_by(|a, b| a.start.guest_s.total_cmp(&b.start.guest_s));
    phases.extend(slowest.iter().map(|c| Phase::new(&initcall_name(c.name, symbols), Side::Guest, c.start, c.end, 1)));
    // Unpacking runs beside the initcalls (initramfs_async), ending when the initrd is freed.
    let mut settled = calls_end;
    // "Trying to unpack rootfs image as initramfs..." with BLK_DEV_RAM, else "Unpacking initramfs...".
    if let Some(i) = at("Trying to unpack rootfs").or_else(|| at("Unpacking initramfs")) {
        let end = at("Freeing initrd memory").map_or(after(i), |j| lines[j].at);
        phases.push(Phase::new("unpacking the initramfs", Side::Guest, lines[i].at, end, 0));
        settled = latest(settled, end);
    }
    // free_initmem() says "Freeing unused kernel …" when it is done; init starts after
    // write-protecting the kernel.
    let run_init = at("Run /init").map_or(init, |i| lines[i].at);
    let freed = latest(settled, at("Freeing unused kernel").map_or(settled, |i| lines[i].at));
    phases.push(Phase::new("freeing init memory", Side::Guest, settled, freed, 0));
    phases.push(Phase::new("write-protecting the kernel, starting init", Side::Guest, freed, run_init, 0));
    phases.push(Phase::new("init: mounts until \"Boot took\"", Side::Guest, run_init, init, 0));
    let prompt = Moment { guest_s: f64::NAN, host_s: host_prompt_s };
    phases.push(Phase::new("init's shell starting, until the prompt", Side::Host, init, prompt, 0));

    let spans: Vec<(f64, f64)> =
        phases.iter().filter(|p| p.side == Side::Guest && p.depth == 0).map(|p| (p.start_s, p.end_s())).collect();
    let attributed = covered(&spans, guest_uptime_s) / guest_uptime_s.max(1e-9);
    Ok(Timeline {
        guest_uptime_s,
        guest_clock_zero_host_s: zero,
        guest_clock_step_s: step,
        host_prompt_s,
        attributed,
        phases,
    })
}

/// Length of the union of `spans` within [0, until].
fn covered(spans: &[(f64, f64)], until: f64) -> f64 {
    let mut spans: Vec<(f64, f64)> =
        spans.iter().map(|&(a, b)| (a.max(0.0), b.min(until))).filter(|s| s.1 > s.0).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut total, mut reach) = (0.0, 0.0f64);
    for (a, b) in spans {
        total += (b - a.max(reach)).max(0.0);
        reach = reach.max(b);
    }
    total
}

impl Timeline {
    /// The phase a moment (host seconds) belongs to: of the phases of the boot holding it, the
    /// one that started last (unpacking, rather than the initcalls it runs beside).
    pub fn phase_at(&self, host_s: f64) -> Option<&Phase> {
        let holding = self.phases.iter().filter(|p| p.depth == 0 && p.host_start_s <= host_s && host_s < p.host_end_s);
        holding.max_by(|a, b| a.host_start_s.total_cmp(&b.host_start_s))
    }
}

#[cfg(test)]
pub(super) mod tests;
