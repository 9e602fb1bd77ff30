//! build/bench/RUN/profile-ARCH-NAME.svg: the top functions of a profile as bars of their share
//! of the samples, each function in a colour of its own, the phases its samples fell in in a
//! strip beneath (in the phases' colours, as in the bootgraph), and the rest of the samples as
//! a bar of its own: the bars add up to 100%.

use super::palette;
use super::profile::{Entry, Sampling};
use super::svg::{Svg, ticks_past};

/// How many functions the chart shows bars for; the rest is one more bar.
const BARS: usize = 25;

/// A bar: a function (or the rest), its samples, and theirs in each phase (in boot order).
#[derive(Debug, PartialEq)]
struct Bar<'a> {
    name: String,
    samples: usize,
    phases: Vec<(&'a str, usize)>,
    /// The functions without a bar of their own.
    rest: bool,
}

/// The functions by samples (most first, then by name), the top `n` as bars and the rest as
/// one more (when there is any): bars of all the samples. `order`: the phases in boot order.
fn bars<'a>(entries: &'a [Entry], order: &[&str], n: usize) -> Vec<Bar<'a>> {
    let mut functions: Vec<Bar> = Vec::new();
    for e in entries {
        let i = match functions.iter().position(|f| f.name == e.function) {
            Some(i) => i,
            None => {
                functions.push(Bar { name: e.function.clone(), samples: 0, phases: Vec::new(), rest: false });
                functions.len() - 1
            }
        };
        functions[i].samples += e.samples;
        functions[i].phases.push((&e.phase, e.samples));
    }
    functions.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.name.cmp(&b.name)));
    let rest: Vec<Bar> = functions.split_off(n.min(functions.len()));
    if !rest.is_empty() {
        let mut phases: Vec<(&str, usize)> = Vec::new();
        for (phase, k) in rest.iter().flat_map(|f| &f.phases) {
            match phases.iter_mut().find(|(p, _)| p == phase) {
                Some((_, m)) => *m += k,
                None => phases.push((phase, *k)),
            }
        }
        let name = format!("the other {} functions", rest.len());
        functions.push(Bar { name, samples: rest.iter().map(|f| f.samples).sum(), phases, rest: true });
    }
    let rank = |p: &str| order.iter().position(|o| *o == p).unwrap_or(order.len());
    for f in &mut functions {
        f.phases.sort_by_key(|(p, _)| rank(p));
    }
    functions
}

/// A tick's share as a percentage, with a decimal when the ticks are less than 1% apart.
fn percent(t: f64, ticks: &[f64]) -> String {
    let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
    if step < 0.01 - 1e-12 { format!("{:.1}%", t * 100.0) } else { format!("{:.0}%", t * 100.0) }
}

/// The chart. `order`: the phases in boot order.
pub fn svg(entries: &[Entry], order: &[&str], sampling: &Sampling, title: &str) -> String {
    let bars = bars(entries, order, BARS);
    let total = bars.iter().map(|b| b.samples).sum::<usize>().max(1) as f64;
    let fill = |b: &Bar| if b.rest { palette::REST.to_owned() } else { palette::function(&b.name) };
    // The phases the samples fell in, in boot order, as a legend over the bars.
    let shown: Vec<&str> =
        order.iter().copied().filter(|p| bars.iter().any(|b| b.phases.iter().any(|x| x.0 == *p))).collect();
    // Room for the longest name, at about 6.5 px a character.
    let longest = bars.iter().map(|b| b.name.chars().count()).max().unwrap_or(0);
    let (left, width, row_h) = (20.0 + longest as f64 * 6.5, 460.0, 22.0);
    let chart_w = left + width + 200.0;
    let chart_w = sampling.lines().iter().map(|l| 20.0 + l.chars().count() as f64 * 5.8).fold(chart_w, f64::max);
    let mut keys = Vec::new();
    let (mut x, mut y) = (10.0, 64.0);
    for p in &shown {
        let w = 30.0 + p.chars().count() as f64 * 6.0;
        if x + w > chart_w && x > 10.0 {
            (x, y) = (10.0, y + 16.0);
        }
        keys.push((x, y, *p));
        x += w;
    }
    let top_y = y + 18.0;
    let axis_y = top_y + bars.len() as f64 * row_h + 2.0;
    let mut svg = Svg::new(chart_w, axis_y + 44.0);
    svg.text(10.0, 16.0, "font-weight=\"bold\" font-size=\"13\"", title);
    for (i, line) in sampling.lines().iter().enumerate() {
        svg.text(10.0, 32.0 + i as f64 * 14.0, "fill=\"#555\"", line);
    }
    for (x, y, p) in keys {
        svg.key(x, y, palette::phase(p), p);
    }
    // The axis is the functions' bars': a rest longer than it is cut at its end.
    let max = bars.iter().filter(|b| !b.rest).map(|b| b.samples as f64 / total).fold(0.0, f64::max);
    let (ticks, end) = ticks_past(if max > 0.0 { max } else { 1.0 }, 5);
    let xs = |share: f64| left + share.min(end) / end * width;
    for &t in &ticks[1..] {
        svg.line((xs(t), top_y - 4.0), (xs(t), axis_y), "#e5e5e5");
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top_y + i as f64 * row_h;
        let share = b.samples as f64 / total;
        svg.text(left - 6.0, y + 11.0, "text-anchor=\"end\"", &b.name);
        let title = format!("{}: {} samples, {:.1}%", b.name, b.samples, share * 100.0);
        let w = xs(share) - left;
        svg.rect(left, y, w, 12.0, &fill(b), Some(&title));
        // Its phases, beneath it, each as long as its part of the bar (as drawn, if cut).
        let mut from = 0;
        for &(phase, k) in &b.phases {
            let at = |n: usize| left + n as f64 / b.samples.max(1) as f64 * w;
            let (a, z) = (at(from), at(from + k));
            let title = format!("{} in {phase}: {k} samples, {:.1}%", b.name, k as f64 / total * 100.0);
            if z > a {
                svg.rect(a, y + 13.0, z - a, 4.0, palette::phase(phase), Some(&title));
            }
            from += k;
        }
        let cut = share > end;
        if cut {
            // A break in the bar, near its end.
            let x = left + width - 14.0;
            svg.rect(x, y - 1.0, 5.0, 19.0, "#fff", None);
        }
        let note = if cut { " (cut: longer than the axis)" } else { "" };
        svg.text(xs(share) + 4.0, y + 11.0, "", &format!("{:.1}%{note}", share * 100.0));
    }
    svg.line((left, top_y - 4.0), (left, axis_y), "#333");
    let label = format!("share of all {} samples (the bars add up to 100%)", total as usize);
    svg.axis(left, width, axis_y, (&ticks, end), &|t| percent(t, &ticks), &label);
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: &str, phase: &str, samples: usize) -> Entry {
        Entry { function: function.into(), phase: phase.into(), share: samples as f64 / 20.0, samples }
    }

    /// Of 20 samples: a function in three phases, one in two, and three that fall in the rest.
    fn entries() -> Vec<Entry> {
        vec![
            entry("free_reserved_area", "freeing init memory", 5),
            entry("io_serial_out", "initcalls", 4),
            entry("io_serial_out", "early setup", 3),
            entry("free_reserved_area", "initcalls", 2),
            entry("io_serial_out", "freeing init memory", 2),
            entry("memset", "initcalls", 2),
            entry("a", "early setup", 1),
            entry("b", "initcalls", 1),
        ]
    }

    const ORDER: [&str; 3] = ["early setup", "initcalls", "freeing init memory"];

    fn sampling() -> Sampling {
        let at: Vec<f64> = (0..20).map(|i| 0.1 + i as f64 * 0.01).collect();
        super::super::profile::sampling(&at, &[0.008; 20], std::time::Duration::from_millis(2))
    }

    #[test]
    fn a_function_is_one_bar_and_the_rest_another_adding_up_to_all_samples() {
        let entries = entries();
        let top = bars(&entries, &ORDER, 3);
        let shown: Vec<(&str, usize)> = top.iter().map(|b| (b.name.as_str(), b.samples)).collect();
        assert_eq!(
            shown,
            [("io_serial_out", 9), ("free_reserved_area", 7), ("memset", 2), ("the other 2 functions", 2)]
        );
        assert_eq!(top.iter().map(|b| b.samples).sum::<usize>(), 20);
        // A bar's phases in boot order, adding up to it.
        assert_eq!(top[0].phases, [("early setup", 3), ("initcalls", 4), ("freeing init memory", 2)]);
        assert_eq!(top[3].phases, [("early setup", 1), ("initcalls", 1)]);
        // No rest when every function has its bar.
        assert_eq!(bars(&entries, &ORDER, 10).len(), 5);
    }

    /// The `fill` of each `<rect>` whose title starts with `prefix`.
    fn fills<'a>(svg: &'a str, prefix: &str) -> Vec<&'a str> {
        svg.split("<rect")
            .filter(|r| r.contains(&format!("<title>{prefix}")))
            .filter_map(|r| r.split("fill=\"").nth(1)?.split('"').next())
            .collect()
    }

    #[test]
    fn the_chart_has_a_bar_per_function_in_its_colour_a_rest_and_a_share_axis() {
        let svg = svg(&entries(), &ORDER, &sampling(), "x86_64/fast");
        // One bar and label per function, each in its own colour.
        assert_eq!(svg.matches(">io_serial_out</text>").count(), 1, "{svg}");
        assert_eq!(fills(&svg, "io_serial_out: "), [palette::function("io_serial_out")]);
        assert_eq!(fills(&svg, "free_reserved_area: "), [palette::function("free_reserved_area")]);
        // Beneath it, its phases in the phases' colours.
        let phases: Vec<String> = ORDER.iter().map(|p| palette::phase(p).to_owned()).collect();
        assert_eq!(fills(&svg, "io_serial_out in "), phases);
        // 9, 7, 2 samples of 20, and no rest (5 functions, all shown): 45% + 35% + 10% + 5% + 5%.
        for share in [">45.0%<", ">35.0%<", ">10.0%<", ">5.0%<"] {
            assert!(svg.contains(share), "{share} in {svg}");
        }
        // The axis: 0 to 50% (the first tick past the largest share, 45%).
        for tick in [">0%<", ">10%<", ">50%<"] {
            assert!(svg.contains(tick), "{tick} in {svg}");
        }
        assert!(svg.contains("share of all 20 samples (the bars add up to 100%)"), "{svg}");
        assert!(svg.contains("one every 10.0 ms on average") && !svg.contains("cut"), "{svg}");
    }

    #[test]
    fn ticks_under_a_percent_apart_have_a_decimal() {
        let (ticks, _) = ticks_past(0.012, 5);
        let shown: Vec<String> = ticks.iter().map(|t| percent(*t, &ticks)).collect();
        assert_eq!(shown, ["0.0%", "0.5%", "1.0%", "1.5%"]);
        let (ticks, _) = ticks_past(0.43, 5);
        assert_eq!(percent(ticks[3], &ticks), "30%");
    }

    #[test]
    fn samples_outside_the_top_bars_are_a_bar_of_their_own() {
        let many: Vec<Entry> = (0..30).map(|i| entry(&format!("f{i:02}"), "initcalls", 1)).collect();
        let svg = svg(&many, &ORDER, &sampling(), "x86_64/fast");
        assert_eq!(fills(&svg, "the other 5 functions: "), [palette::REST]);
        assert!(svg.contains("<title>the other 5 functions: 5 samples, 16.7%</title>"), "{svg}");
        // A rest longer than the functions' bars is cut at the axis's end, and says so.
        let few: Vec<Entry> = (0..30)
            .map(|i| entry(&format!("f{i:02}"), ORDER[usize::from(i < 29)], if i < 3 { 3 } else { 1 }))
            .collect();
        let svg = super::svg(&few, &ORDER, &sampling(), "x86_64/fast");
        // 3 of 36 samples each (8.3%): the axis goes up to 10%; the 5 functions after the top 25
        // have 13.9%.
        assert!(svg.contains(">13.9% (cut: longer than the axis)</text>") && svg.contains(">10%</text>"), "{svg}");
        assert!(!svg.contains(">20%</text>"), "{svg}");
        // Its phases' strip is the bar as drawn, in parts as its samples are: 1 of the 5 samples
        // in early setup (f29), 4 in the initcalls.
        let spans = |prefix: &str| -> Vec<(f64, f64)> {
            let attr = |r: &str, a: &str| r.split(&format!(" {a}=\"")).nth(1)?.split('"').next()?.parse::<f64>().ok();
            let rects = svg.split("<rect").filter(|r| r.contains(&format!("<title>{prefix}")));
            rects.filter_map(|r| Some((attr(r, "x")?, attr(r, "width")?))).collect()
        };
        let (bar, strip) = (spans("the other 5 functions: "), spans("the other 5 functions in "));
        assert!(bar.len() == 1 && strip.len() == 2, "{bar:?} {strip:?}");
        assert!((strip[0].1 - bar[0].1 / 5.0).abs() < 0.2 && (strip[1].1 - bar[0].1 * 0.8).abs() < 0.2, "{strip:?}");
    }
}
