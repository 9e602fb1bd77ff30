//! build/bench/bench.svg: boot times and sizes as horizontal bars, one group per config.

use super::Row;
use super::table::{label, several_arches};

/// Horizontal bars: boot times (guest, host) and sizes (vmlinux, the image it boots) per config.
pub fn chart(rows: &[Row]) -> String {
    // Title, (series name, colour) pairs, and the series' values for a row, each with what it is
    // where that varies (the boot image's file name).
    type Panel = (&'static str, [(&'static str, &'static str); 2], fn(&Row) -> [Option<(f64, &str)>; 2]);
    let panels: [Panel; 2] = [
        (
            "boot time (s, median)",
            [("guest uptime at init", "#4e79a7"), ("host: qemu start to shell", "#f28e2b")],
            |r| [r.guest_boot_s_median, r.host_wall_s_median].map(|v| v.map(|v| (v, ""))),
        ),
        ("size (MiB)", [("vmlinux", "#59a14f"), ("boot image", "#e15759")], |r| {
            let mib = |b: Option<u64>| b.map(|b| b as f64 / (1 << 20) as f64);
            [
                mib(r.vmlinux_bytes).map(|v| (v, "")),
                mib(r.boot_image_bytes).map(|v| (v, r.boot_image.as_deref().unwrap_or(""))),
            ]
        }),
    ];
    let arches = several_arches(rows);
    let (label_w, bar_w, row_h, panel_w) = (if arches { 150.0 } else { 110.0 }, 300.0, 44.0, 560.0);
    let height = 70.0 + rows.len() as f64 * row_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        panel_w * 2.0
    );
    for (p, (title, series, values)) in panels.iter().enumerate() {
        let x0 = p as f64 * panel_w;
        let max = rows.iter().flat_map(values).flatten().map(|v| v.0).fold(0.0, f64::max).max(1e-9);
        svg += &format!("<text x=\"{}\" y=\"18\" font-weight=\"bold\">{title}</text>\n", x0 + 10.0);
        for (s, (name, color)) in series.iter().enumerate() {
            let lx = x0 + 10.0 + s as f64 * 200.0;
            svg += &format!(
                "<rect x=\"{lx}\" y=\"28\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"37\">{name}</text>\n",
                lx + 14.0
            );
        }
        for (i, r) in rows.iter().enumerate() {
            let y = 55.0 + i as f64 * row_h;
            svg += &format!("<text x=\"{}\" y=\"{}\">{}</text>\n", x0 + 10.0, y + 16.0, label(r, arches));
            for (s, v) in values(r).iter().enumerate() {
                let by = y + s as f64 * 16.0;
                let Some((v, what)) = v else {
                    svg += &format!("<text x=\"{}\" y=\"{}\">failed</text>\n", x0 + label_w, by + 12.0);
                    continue;
                };
                let what = if what.is_empty() { String::new() } else { format!(" {}", super::svg::escape(what)) };
                let w = v / max * bar_w;
                svg += &format!(
                    "<rect x=\"{}\" y=\"{by}\" width=\"{w:.1}\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{v:.2}{what}</text>\n",
                    x0 + label_w,
                    series[s].1,
                    x0 + label_w + w + 4.0,
                    by + 11.0
                );
            }
        }
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::super::tests::row;
    use super::*;

    #[test]
    fn chart_draws_a_bar_per_value_and_marks_failures() {
        let svg = chart(&[row("allnoconfig", None), row("defconfig", Some("x"))]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("height=\"14\"").count(), 4, "two bars in each of two panels");
        assert_eq!(svg.matches(">failed<").count(), 4);
    }

    #[test]
    fn the_boot_image_is_named_at_its_bar() {
        let fast = Row { boot_image: Some("vmlinux".into()), boot_image_bytes: Some(6 << 20), ..row("fast", None) };
        let svg = chart(&[row("allnoconfig", None), fast]);
        assert!(svg.contains(">boot image</text>") && !svg.contains(">bzImage</text>"), "{svg}");
        assert!(svg.contains(">1.00 bzImage</text>") && svg.contains(">6.00 vmlinux</text>"), "{svg}");
    }
}
