//! build/bench/RUN/bootgraph-ARCH-NAME.svg: a boot's timeline on one host time axis.

use super::palette;
use super::svg::Svg;
use super::timeline::{Side, Timeline};

/// The boot on one host time axis: a row per phase, parts indented under it, each in its
/// phase's colour (the profile's too) and labelled with its duration.
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
    let note = "bars on the host's clock; durations on the guest's, or the host's where marked (host)";
    svg.text(10.0, 48.0, "fill=\"#555\"", note);
    for (i, p) in t.phases.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let (a, b) = (p.host_start_s, p.host_end_s);
        let indent = if p.depth > 0 { 16.0 } else { 0.0 };
        let side = if p.side == Side::Host { " (host)" } else { "" };
        let duration = format!("{:.1} ms{side}", p.duration_s * 1e3);
        svg.text(10.0 + indent, y + 11.0, "", &p.name);
        let w = (x(b) - x(a)).max(1.0);
        svg.rect(x(a), y, w, 13.0, palette::phase(&p.name), Some(&format!("{} {duration}", p.name)));
        svg.text(x(a) + w + 4.0, y + 11.0, "", &duration);
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
        assert!(svg.contains(">300.1 ms (host)</text>") && svg.contains(">9.0 ms</text>"), "{svg}");
    }

    /// The `fill` of the bar whose title starts with `name`.
    fn fill_of<'a>(svg: &'a str, name: &str) -> &'a str {
        let title =
            svg.find(&format!("<title>{}", super::super::svg::escape(name))).unwrap_or_else(|| panic!("{name}"));
        let rect = svg[..title].rfind("<rect").unwrap();
        svg[rect..title].split("fill=\"").nth(1).and_then(|f| f.split('"').next()).unwrap()
    }

    #[test]
    fn a_phase_has_its_name_s_colour_whatever_the_other_phases() {
        let t = timeline(&boot(), &[], 0.30, 0.65, &[]).unwrap();
        let all = svg(&t, "all");
        // The same boot without the calibration and the first initcall: phases move up a row.
        let mut fewer = t.clone();
        fewer.phases.retain(|p| p.name != "delay-loop calibration" && p.name != "init_a");
        let fewer = svg(&fewer, "fewer");
        for p in &t.phases {
            assert_eq!(fill_of(&all, &p.name), palette::phase(&p.name), "{}", p.name);
        }
        for name in ["initcalls", "freeing init memory", "serial8250_init", "init's shell starting, until the prompt"] {
            assert_eq!(fill_of(&all, name), fill_of(&fewer, name), "{name}");
        }
        assert_ne!(fill_of(&all, "initcalls"), fill_of(&all, "freeing init memory"));
    }
}
