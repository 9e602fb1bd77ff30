//! `bench --profile`: maps each of the sampler's program counters to a function of vmlinux
//! and to the phase of the boot's timeline it fell in, and reports the top functions per
//! phase (a table; profile_chart.rs draws them) and how often the samples really came.

use super::timeline::Timeline;
use crate::elf::{Symbol, symbol_at};
use serde::Serialize;
use std::time::Duration;

/// The name of an address outside vmlinux's code: firmware, boot code or user space.
const OUTSIDE: &str = "(not in vmlinux)";

/// Where a sample after the shell prompt falls, and one in a gap between the phases.
pub const AFTER: &str = "after the prompt";
pub const BETWEEN: &str = "between the named phases";

/// One function's samples in one phase.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Entry {
    pub function: String,
    pub phase: String,
    /// Of all the boot's samples.
    pub share: f64,
    pub samples: usize,
}

/// How the samples came, on the host's clock (seconds since qemu started). The sampler asks
/// for one every `asked_interval_s`, but each is a round trip through qemu's monitor, which
/// answers when its main loop gets to it: under TCG that can take many times as long.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Sampling {
    pub samples: usize,
    pub first_s: f64,
    pub last_s: f64,
    pub asked_interval_s: f64,
    /// From the first sample to the last, per sample after the first.
    pub mean_interval_s: f64,
    /// From asking to the answer, on average.
    pub mean_round_trip_s: f64,
}

/// The sampling of samples taken at `at` (host seconds, in order), each a round trip of
/// `round_trips` seconds, asked for every `asked`.
pub fn sampling(at: &[f64], round_trips: &[f64], asked: Duration) -> Sampling {
    let (first_s, last_s) = (at.first().copied().unwrap_or(0.0), at.last().copied().unwrap_or(0.0));
    let gaps = at.len().saturating_sub(1);
    Sampling {
        samples: at.len(),
        first_s,
        last_s,
        asked_interval_s: asked.as_secs_f64(),
        mean_interval_s: if gaps == 0 { 0.0 } else { (last_s - first_s) / gaps as f64 },
        mean_round_trip_s: round_trips.iter().sum::<f64>() / round_trips.len().max(1) as f64,
    }
}

impl Sampling {
    /// How many samples, and how far apart they really came: two lines' worth.
    pub fn lines(&self) -> [String; 2] {
        [
            format!(
                "{} samples from {:.3} s to {:.3} s after qemu started: one every {:.1} ms on average,",
                self.samples,
                self.first_s,
                self.last_s,
                self.mean_interval_s * 1e3
            ),
            format!(
                "where the sampler asks for one every {:.0} ms (a round trip through qemu's monitor took {:.1} ms on average)",
                self.asked_interval_s * 1e3,
                self.mean_round_trip_s * 1e3
            ),
        ]
    }

    /// [`Sampling::lines`] as one.
    pub fn describe(&self) -> String {
        self.lines().join(" ")
    }
}

/// The phase a moment (host seconds) is counted in.
fn phase_of(timeline: &Timeline, host_s: f64) -> &str {
    match timeline.phase_at(host_s) {
        Some(p) => &p.name,
        None if host_s >= timeline.host_prompt_s => AFTER,
        None => BETWEEN,
    }
}

/// The phases samples are counted in, in boot order.
pub fn phases(timeline: &Timeline) -> Vec<&str> {
    let named = timeline.phases.iter().filter(|p| p.depth == 0).map(|p| p.name.as_str());
    named.chain([BETWEEN, AFTER]).collect()
}

/// How much of the host's time from `from` to `to` is counted in each phase (where phases
/// overlap, in the one that started last, as a sample is).
fn owned(timeline: &Timeline, from: f64, to: f64) -> Vec<(&str, f64)> {
    let mut cuts = vec![from, to, timeline.host_prompt_s];
    cuts.extend(timeline.phases.iter().filter(|p| p.depth == 0).flat_map(|p| [p.host_start_s, p.host_end_s]));
    cuts.retain(|c| (from..=to).contains(c));
    cuts.sort_by(f64::total_cmp);
    let mut owned: Vec<(&str, f64)> = Vec::new();
    for w in cuts.windows(2).filter(|w| w[1] > w[0]) {
        let phase = phase_of(timeline, (w[0] + w[1]) / 2.0);
        match owned.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, s)) => *s += w[1] - w[0],
            None => owned.push((phase, w[1] - w[0])),
        }
    }
    owned
}

/// Names each sample (host seconds since qemu started, program counter) by its function and
/// phase; the (function, phase) pairs by samples, most first.
pub fn attribute(samples: &[(f64, u64)], symbols: &[Symbol], timeline: &Timeline) -> Vec<Entry> {
    let mut counts: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    for &(host_s, pc) in samples {
        let function = symbol_at(symbols, pc).map_or(OUTSIDE, |s| s.name.as_str());
        *counts.entry((function, phase_of(timeline, host_s))).or_default() += 1;
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

/// Per phase of the timeline, in boot order: the host time of it that was sampled, its
/// samples, how far apart they came, and its top functions; under a line saying how the
/// samples came.
pub fn table(entries: &[Entry], timeline: &Timeline, sampling: &Sampling) -> String {
    let total: usize = entries.iter().map(|e| e.samples).sum();
    let mut t = format!(
        "{}\n\n| phase | sampled host time | samples | one per | top functions (share of all {total} samples) |\n|---|---|---|---|---|\n",
        sampling.describe()
    );
    let owned = owned(timeline, sampling.first_s, sampling.last_s);
    for phase in phases(timeline) {
        let of: Vec<&Entry> = entries.iter().filter(|e| e.phase == phase).collect();
        if of.is_empty() {
            continue;
        }
        let n: usize = of.iter().map(|e| e.samples).sum();
        let time = owned.iter().find(|(p, _)| *p == phase).map_or(0.0, |o| o.1);
        let top: Vec<String> = of.iter().take(4).map(|e| format!("{} {:.1}%", e.function, e.share * 100.0)).collect();
        t += &format!(
            "| {phase} | {:.1} ms | {n} | {:.1} ms | {} |\n",
            time * 1e3,
            time * 1e3 / n as f64,
            top.join(", ")
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::super::timeline::{Phase, Side};
    use super::*;

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
        let t = table(&entries, &timeline(), &sampling(&samples.map(|s| s.0), &[0.001; 7], Duration::from_millis(2)));
        assert!(t.contains("| freeing init memory | 200.0 ms | 3 | 66.7 ms | memset 42.9% |"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[4].starts_with("| qemu, firmware") && lines[7].starts_with("| after the prompt"), "{t}");
    }

    #[test]
    fn the_table_says_how_far_apart_the_samples_really_came() {
        // Asked for every 2 ms, the samples came every 17.5 ms: 17 samples in 280 ms.
        let at: Vec<f64> = (0..17).map(|i| 0.21 + i as f64 * 0.0175).collect();
        let s = sampling(&at, &[0.0155; 17], Duration::from_millis(2));
        assert_eq!((s.samples, s.first_s, s.asked_interval_s), (17, 0.21, 0.002));
        assert!((s.mean_interval_s - 0.0175).abs() < 1e-9 && (s.mean_round_trip_s - 0.0155).abs() < 1e-9, "{s:?}");
        let samples: Vec<(f64, u64)> = at.iter().map(|&t| (t, 0x2000)).collect();
        let symbols = [Symbol { addr: 0x2000, name: "memset".into() }];
        let t = table(&attribute(&samples, &symbols, &timeline()), &timeline(), &s);
        assert!(t.starts_with("17 samples from 0.210 s to 0.490 s after qemu started: one every 17.5 ms on average, where the sampler asks for one every 2 ms (a round trip through qemu's monitor took 15.5 ms on average)\n"), "{t}");
        // Early setup: 0.21 to 0.3 sampled, 6 samples (0.21 to 0.2975); freeing: 0.3 to 0.49, 11.
        assert!(t.contains("| early setup, until the first initcall | 90.0 ms | 6 | 15.0 ms |"), "{t}");
        assert!(t.contains("| freeing init memory | 190.0 ms | 11 | 17.3 ms |"), "{t}");
    }

    #[test]
    fn time_is_owned_by_the_phase_a_sample_then_would_be_counted_in() {
        let mut t = timeline();
        // A gap from 0.3 to 0.35 (the freeing starts late); unpacking beside the freeing.
        t.phases[2].host_start_s = 0.35;
        let mut unpack = t.phases[2].clone();
        (unpack.name, unpack.host_start_s, unpack.host_end_s) = ("unpacking the initramfs".into(), 0.4, 0.45);
        t.phases.push(unpack);
        let owned = owned(&t, 0.1, 0.7);
        let ms: Vec<(&str, i64)> = owned.iter().map(|&(p, s)| (p, (s * 1e3).round() as i64)).collect();
        assert_eq!(
            ms,
            [
                ("qemu, firmware and early kernel, until the guest's clock starts", 100),
                ("early setup, until the first initcall", 100),
                (BETWEEN, 150),
                ("freeing init memory", 100),
                ("unpacking the initramfs", 50),
                (AFTER, 100),
            ]
        );
        assert!((owned.iter().map(|o| o.1).sum::<f64>() - 0.6).abs() < 1e-9);
        assert_eq!(phase_of(&t, 0.32), BETWEEN);
        assert_eq!(phase_of(&t, 0.62), AFTER);
    }
}
