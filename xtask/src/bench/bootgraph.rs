//! build/bench/RUN/bootgraph-ARCH-NAME.svg: a boot's timeline on one host time axis.

use super::svg::Svg;
use super::timeline::{Side, Timeline};

/// The boot on one host time axis: a row per phase, parts indented under it, each labelled
/// with its duration.
pub fn svg(t: &Timeline, title: &str) -> String {
    // Room for the longest name (indented ones 16 px in), at about 6.2 px a character.
    let longest = t.phases.iter().map(|p| p.name.chars().count() as f64 * 6.2 + f64::from(p.depth) * 16.0);
    let (left, width, row_h) = (20.0 + longest.fold(200.0, f64::max), 620.0, 18.0);
    let end = t.host_prompt_s.max(1e-6);
    let x = |s: f64| left + s / end * width;
    let top = 62.0;
    let height = top + t.phases.len() as f64 * row_h + 60.0;
    let mut svg = Svg::new(left + width + 90.0, height);
    svg.text(10.0, 16.0, "font-weight=\"bold\" font-size=\"13\"", title);
    let summary = format!(
        "guest uptime at init {:.3} s ({:.0}% in named phases), shell prompt {:.3} s after qemu started",
        t.guest_uptime_s,
        t.attributed * 100.0,
        t.host_prompt_s
    );
    svg.text(10.0, 32.0, "", &summary);
    for (i, (color, name)) in
        [("#f28e2b", "host"), ("#4e79a7", "guest"), ("#a0cbe8", "part of the phase above")].into_iter().enumerate()
    {
        svg.key(10.0 + i as f64 * 70.0, 50.0, color, name);
    }
    for (i, p) in t.phases.iter().enumerate() {
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
    let axis_y = top + t.phases.len() as f64 * row_h + 6.0;
    svg.time_axis(left, width, axis_y, end, "seconds since qemu started (host clock)");
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::super::timeline::{tests::boot, timeline};
    use super::*;

    #[test]
    fn the_chart_has_a_labelled_axis_and_a_row_per_phase() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        let svg = svg(&t, "x86_64/fast");
        assert_eq!(svg.matches("<title>").count(), t.phases.len());
        assert!(svg.contains("seconds since qemu started") && svg.contains(">0.60</text>"), "{svg}");
        assert!(svg.contains("serial8250_init 9.0 ms"), "{svg}");
    }
}
