//! The few SVG pieces bench's charts share: a document, text, bars with hover titles, and a
//! time axis with ticks. Hand-written: a chart is some dozens of elements, and a plotting
//! crate's bar and Gantt layouts would not place the labels these charts need any better.

use std::fmt::Write;

pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

/// `&`, `<` and `>` in text (function and config names may hold none, but a path might).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { width, height, body: String::new() }
    }

    /// Text at (x, y); `attrs` such as `font-weight="bold"` or `text-anchor="end"`.
    pub fn text(&mut self, x: f64, y: f64, attrs: &str, text: &str) {
        let _ = writeln!(self.body, "<text x=\"{x:.1}\" y=\"{y:.1}\" {attrs}>{}</text>", escape(text));
    }

    /// A filled rectangle; `title` shows on hover.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: Option<&str>) {
        let _ = write!(self.body, "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"");
        match title {
            Some(t) => writeln!(self.body, "><title>{}</title></rect>", escape(t)),
            None => writeln!(self.body, "/>"),
        }
        .unwrap();
    }

    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\"/>"
        );
    }

    /// A legend entry: a colour swatch and its name.
    pub fn key(&mut self, x: f64, y: f64, color: &str, name: &str) {
        self.rect(x, y - 9.0, 10.0, 10.0, color, None);
        self.text(x + 14.0, y, "", name);
    }

    /// A horizontal time axis at `y` from `x0` (0 s) to `x0 + width` (`max_s`), with ticks.
    pub fn time_axis(&mut self, x0: f64, width: f64, y: f64, max_s: f64, label: &str) {
        self.axis(x0, width, y, (&ticks(max_s, 8), max_s), &|t| format!("{t:.2}"), label);
    }

    /// A horizontal axis at `y` from `x0` (0) to `x0 + width` (`end`), with a tick at each of
    /// `ticks` labelled by `format`.
    pub fn axis(
        &mut self,
        x0: f64,
        width: f64,
        y: f64,
        (ticks, end): (&[f64], f64),
        format: &dyn Fn(f64) -> String,
        label: &str,
    ) {
        self.line((x0, y), (x0 + width, y), "#333");
        for &t in ticks {
            let x = x0 + t / end * width;
            self.line((x, y), (x, y + 4.0), "#333");
            self.text(x, y + 16.0, "text-anchor=\"middle\"", &format(t));
        }
        self.text(x0 + width / 2.0, y + 32.0, "text-anchor=\"middle\"", label);
    }

    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n{}</svg>\n",
            self.width, self.height, self.body
        )
    }
}

/// Round tick values from 0 to `max`, about `n` of them, in steps of 1, 2 or 5 times a power of ten.
pub fn ticks(max: f64, n: usize) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let rough = max / n.max(1) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= rough).unwrap_or(power * 10.0);
    (0..).map(|i| i as f64 * step).take_while(|t| *t <= max + step * 1e-9).collect()
}

/// Round ticks from 0 to the first one at or above `max`, about `n` of them, and that last one.
pub fn ticks_past(max: f64, n: usize) -> (Vec<f64>, f64) {
    let mut t = ticks(max, n);
    let step = if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    let last = *t.last().unwrap_or(&0.0);
    if last < max * (1.0 - 1e-9) {
        t.push(last + step);
    }
    let end = *t.last().unwrap_or(&1.0);
    (t, if end > 0.0 { end } else { 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_steps_up_to_the_maximum() {
        let shown = |max, n| ticks(max, n).iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(" ");
        assert_eq!(shown(1.0, 5), "0.00 0.20 0.40 0.60 0.80 1.00");
        assert_eq!(shown(0.73, 8), "0.00 0.10 0.20 0.30 0.40 0.50 0.60 0.70");
        assert_eq!(shown(3.4, 8), "0.00 0.50 1.00 1.50 2.00 2.50 3.00");
        assert_eq!(shown(0.0, 8), "0.00");
    }

    #[test]
    fn an_axis_ends_at_the_first_tick_past_its_maximum() {
        assert_eq!(ticks_past(0.43, 5), (vec![0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5], 0.5));
        assert_eq!(ticks_past(0.4, 4).1, 0.4);
        assert_eq!(ticks_past(0.0, 5), (vec![0.0], 1.0));
    }

    #[test]
    fn text_is_escaped_and_bars_carry_titles() {
        let mut svg = Svg::new(100.0, 50.0);
        svg.text(1.0, 2.0, "", "a<b & c");
        svg.rect(0.0, 0.0, 5.0, 5.0, "#000", Some("x > y"));
        let out = svg.finish();
        assert!(out.starts_with("<svg") && out.ends_with("</svg>\n"));
        assert!(out.contains(">a&lt;b &amp; c</text>") && out.contains("<title>x &gt; y</title>"), "{out}");
    }
}
