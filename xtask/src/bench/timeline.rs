//! One boot from qemu start to the shell prompt, in named phases: the host's (qemu start until
//! the guest's clock starts; init's shell starting) on the host's clock, the guest's (early
//! setup, initcalls, unpacking the initramfs, freeing init memory, init) from its printk
//! timestamps, and build/bench/bootgraph-ARCH-NAME.svg drawing them on one time axis.

use super::svg::Svg;
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<super::profile::Entry>,
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
        profile: Vec::new(),
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

    /// The boot on one host time axis: a row per phase, parts indented under it, each labelled
    /// with its duration.
    pub fn svg(&self, title: &str) -> String {
        // Room for the longest name (indented ones 16 px in), at about 6.2 px a character.
        let longest = self.phases.iter().map(|p| p.name.chars().count() as f64 * 6.2 + f64::from(p.depth) * 16.0);
        let (left, width, row_h) = (20.0 + longest.fold(200.0, f64::max), 620.0, 18.0);
        let end = self.host_prompt_s.max(1e-6);
        let x = |t: f64| left + t / end * width;
        let top = 62.0;
        let height = top + self.phases.len() as f64 * row_h + 60.0;
        let mut svg = Svg::new(left + width + 90.0, height);
        svg.text(10.0, 16.0, "font-weight=\"bold\" font-size=\"13\"", title);
        let summary = format!(
            "guest uptime at init {:.3} s ({:.0}% in named phases), shell prompt {:.3} s after qemu started",
            self.guest_uptime_s,
            self.attributed * 100.0,
            self.host_prompt_s
        );
        svg.text(10.0, 32.0, "", &summary);
        for (i, (color, name)) in
            [("#f28e2b", "host"), ("#4e79a7", "guest"), ("#a0cbe8", "part of the phase above")].into_iter().enumerate()
        {
            svg.key(10.0 + i as f64 * 70.0, 50.0, color, name);
        }
        for (i, p) in self.phases.iter().enumerate() {
            let y = top + i as f64 * row_h;
            let (a, b) = (p.host_start_s, p.host_end_s);
            let indent = if p.depth > 0 { 16.0 } else { 0.0 };
            let color = match (p.side, p.depth) {
                (Side::Host, _) => "#f28e2b",
                (Side::Guest, 0) => "#4e79a7",
                _ => "#a0cbe8",
            };
            svg.text(10.0 + indent, y + 11.0, "", &p.name);
            let w = (x(b) - x(a)).max(1.0);
            let label = format!("{} {:.1} ms", p.name, p.duration_s * 1e3);
            svg.rect(x(a), y, w, 13.0, color, Some(&label));
            svg.text(x(a) + w + 4.0, y + 11.0, "", &format!("{:.1} ms", p.duration_s * 1e3));
        }
        let axis_y = top + self.phases.len() as f64 * row_h + 6.0;
        svg.time_axis(left, width, axis_y, end, "seconds since qemu started (host clock)");
        svg.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console log: (host seconds, text).
    fn log(lines: &[(f64, &str)]) -> Vec<Line> {
        lines.iter().map(|&(host_s, t)| Line { host_s, text: t.to_owned(), console: true }).collect()
    }

    /// The shape of the fast profile's instrumented boot: lines buffered until the console is
    /// enabled, calibration, initcalls with unpacking beside them, freeing, init.
    fn boot() -> Vec<Line> {
        log(&[
            (0.3000, "[    0.000000] Linux version 6.1.192"),
            (0.3001, "[    0.000000] printk: console [ttyS0] enabled"),
            (0.3390, "[    0.004000] Calibrating delay loop... 4000.00 BogoMIPS (lpj=8000000)"),
            (0.3410, "[    0.040000] pid_max: default: 32768 minimum: 301"),
            (0.3605, "[    0.060000] calling  init_a+0x0/0x20 @ 1"),
            (0.3651, "[    0.064000] initcall init_a+0x0/0x20 returned 0 after 4500 usecs"),
            (0.3700, "[    0.068000] calling  populate_rootfs+0x0/0x20 @ 1"),
            (0.3701, "[    0.068000] initcall populate_rootfs+0x0/0x20 returned 0 after 10 usecs"),
            (0.3702, "[    0.068000] Trying to unpack rootfs image as initramfs..."),
            (0.3810, "[    0.080000] calling  serial8250_init+0x0/0x1a0 @ 1"),
            (0.3900, "[    0.088000] initcall serial8250_init+0x0/0x1a0 returned 0 after 9000 usecs"),
            (0.4410, "[    0.140000] Freeing initrd memory: 2300K"),
            (0.4900, "[    0.188000] Freeing unused kernel image (initmem) memory: 800K"),
            (0.4950, "[    0.192000] Run /init as init process"),
            (0.6000, ""),
            (0.6001, "Boot took 0.30 seconds"),
        ])
    }

    fn phase<'a>(t: &'a Timeline, name: &str) -> &'a Phase {
        t.phases.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name} in {:#?}", t.phases))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn lines_are_placed_on_both_clocks_buffered_ones_by_their_timestamps() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        // The console came on at 0.000 on the guest's clock, 0.3001 on the host's.
        assert!(close(t.guest_clock_zero_host_s, 0.3001), "{}", t.guest_clock_zero_host_s);
        assert!(close(t.guest_clock_step_s, 0.004), "{}", t.guest_clock_step_s);
        // The calibration line is printed when the calibration is done: it is placed by its
        // timestamp, and the calibration ends with the next line.
        let cal = phase(&t, "delay-loop calibration");
        assert!(close(cal.start_s, 0.004) && close(cal.host_start_s, 0.3041), "{cal:?}");
        assert!(close(cal.end_s(), 0.0409) && close(cal.host_end_s, 0.341), "{cal:?}");
        // Printed live, a line's arrival refines the jiffy it was stamped with (0.060).
        let initcalls = phase(&t, "initcalls");
        assert!(close(initcalls.start_s, 0.0604) && close(initcalls.host_start_s, 0.3605), "{initcalls:?}");
        // Live lines are where they arrived on the host's clock, whatever the guest's says.
        assert!(close(phase(&t, "init: mounts until \"Boot took\"").host_start_s, 0.495));
        assert!(close(phase(&t, "unpacking the initramfs").end_s(), 0.1409), "{:?}", t.phases);
        // An initcall lasts what the kernel measured.
        assert!(close(phase(&t, "serial8250_init").duration_s, 0.009));
    }

    #[test]
    fn phases_cover_the_boot_in_order_with_the_slowest_initcalls_opened() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        let names: Vec<&str> = t.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "qemu, firmware and early kernel, until the guest's clock starts",
                "early setup, until the first initcall",
                "delay-loop calibration",
                "initcalls",
                "init_a",
                "serial8250_init",
                "unpacking the initramfs",
                "freeing init memory",
                "write-protecting the kernel, starting init",
                "init: mounts until \"Boot took\"",
                "init's shell starting, until the prompt",
            ]
        );
        // Freeing starts when both the initcalls and the unpacking are done.
        let free = phase(&t, "freeing init memory");
        assert!(close(free.start_s, 0.1409) && close(free.end_s(), 0.1899), "{free:?}");
        assert!(close(phase(&t, "init's shell starting, until the prompt").start_s, 0.6001));
        assert!(t.attributed > 0.999, "{}", t.attributed);
        // populate_rootfs took 10 µs: too short to open.
        assert!(!names.contains(&"populate_rootfs"));
    }

    #[test]
    fn a_moment_belongs_to_the_phase_that_started_last() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        let name = |h| t.phase_at(h).map(|p| p.name.as_str());
        assert_eq!(name(0.1), Some("qemu, firmware and early kernel, until the guest's clock starts"));
        assert_eq!(name(0.366), Some("initcalls"));
        assert_eq!(name(0.40), Some("unpacking the initramfs"));
        assert_eq!(name(0.55), Some("init: mounts until \"Boot took\""));
        assert_eq!(name(0.62), Some("init's shell starting, until the prompt"));
        assert_eq!(name(0.7), None);
    }

    #[test]
    fn without_kallsyms_an_initcall_is_named_from_vmlinux() {
        let lines: Vec<Line> = boot()
            .into_iter()
            .map(|mut l| {
                l.text = l.text.replace("serial8250_init+0x0/0x1a0", "0xffffffff81a00010");
                l
            })
            .collect();
        let symbols = [Symbol { addr: 0xffffffff81a00010, name: "serial8250_init".into() }];
        let t = timeline(&lines, &[], 0.30, 0.65, &symbols).unwrap();
        assert!(close(phase(&t, "serial8250_init").duration_s, 0.009));
        assert_eq!(initcall_name("0xffffffff81a00010", &[]), "0xffffffff81a00010");
    }

    #[test]
    fn lines_only_in_dmesg_are_placed_from_the_console_line_before_them() {
        // The console had up to KERN_INFO; dmesg has the initcall lines too.
        let dmesg: Vec<String> = boot().iter().filter(|l| l.text.starts_with('[')).map(|l| l.text.clone()).collect();
        let console: Vec<Line> =
            boot().into_iter().filter(|l| !l.text.contains("calling") && !l.text.contains("initcall ")).collect();
        let t = timeline(&console, &dmesg, 0.30, 0.65, &[]).unwrap();
        // serial8250_init was called at 0.080: 0.0099 after the console line before it, "Trying
        // to unpack" (stamped 0.068 but refined to 0.0701 by its arrival, 0.3702).
        let serial = phase(&t, "serial8250_init");
        assert!(close(serial.start_s, 0.080) && close(serial.host_start_s, 0.3801), "{serial:?}");
        // Its end is placed the same way; its duration is the kernel's.
        assert!(close(serial.duration_s, 0.009) && close(serial.host_end_s, 0.3881), "{serial:?}");
        assert_eq!(t.phases.len(), timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap().phases.len());
    }

    #[test]
    fn gaps_count_against_the_attribution() {
        assert!(close(covered(&[(0.0, 0.1), (0.05, 0.2), (0.3, 0.5)], 0.4), 0.3));
        // No "Run /init" line and no unpacking: the phases still end at init.
        let lines: Vec<Line> = boot().into_iter().filter(|l| !l.text.contains("Run /init")).collect();
        let t = timeline(&lines, &[], 0.30, 0.65, &[]).unwrap();
        assert!(close(phase(&t, "init: mounts until \"Boot took\"").duration_s, 0.0));
    }

    #[test]
    fn a_boot_without_timestamps_or_initcalls_is_refused_with_the_reason() {
        let err = timeline(&log(&[(0.1, "Boot took 0.3 seconds")]), &[], 0.3, 0.5, &[]).unwrap_err();
        assert!(err.to_string().contains("no printk timestamps"), "{err}");
        let dmesg = ["[    0.010000] Linux version".to_owned()];
        let err = timeline(&log(&[(0.1, "Boot took 0.3 seconds")]), &dmesg, 0.3, 0.5, &[]).unwrap_err();
        assert!(err.to_string().contains("no initcall lines"), "{err}");
        let err = timeline(&log(&[(0.1, "[    0.010000] Linux version")]), &[], 0.3, 0.5, &[]).unwrap_err();
        assert!(err.to_string().contains("no initcall lines"), "{err}");
    }

    #[test]
    fn the_chart_has_a_labelled_axis_and_a_row_per_phase() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        let svg = t.svg("x86_64/fast");
        assert_eq!(svg.matches("<title>").count(), t.phases.len());
        assert!(svg.contains("seconds since qemu started") && svg.contains(">0.60</text>"), "{svg}");
        assert!(svg.contains("serial8250_init 9.0 ms"), "{svg}");
    }
}
