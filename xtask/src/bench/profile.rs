//! `bench --profile`: maps each of the sampler's program counters to a function of vmlinux,
//! and reports the top functions by share of samples, per phase of the boot's timeline: a
//! table and build/bench/profile-ARCH-NAME.svg.

use super::svg::Svg;
use super::timeline::Timeline;
use crate::elf::{Symbol, symbol_at};
use serde::Serialize;

/// The name of an address outside vmlinux's code: firmware, boot code or user space.
const OUTSIDE: &str = "(not in vmlinux)";

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
        let t = table(&entries, &timeline());
        assert!(t.contains("| freeing init memory | 3 | memset 42.9% |"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("| qemu, firmware") && lines[5].starts_with("| after the prompt"), "{t}");
        let svg = svg(&entries, "x86_64/fast");
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(svg.contains(">memset</text>") && svg.contains("42.9%"), "{svg}");
    }
}
