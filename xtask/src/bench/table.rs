//! The Markdown table: our rows beside the walk-through's published numbers.

use super::Row;

/// The walk-through's published numbers (x86_64, KVM, Linux 5.11): vmlinux size and boot time.
fn published(arch: &str, config: &str) -> (&'static str, &'static str) {
    match (arch, config) {
        ("x86_64", "defconfig") => ("54M", "0.74 s"),
        ("x86_64", "alldefconfig") => ("19M", "0.32 s"),
        ("x86_64", "allnoconfig") => ("6.1M", "0.28 s"),
        _ => ("", ""),
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("—".into(), |b| format!("{:.1}M", b as f64 / (1 << 20) as f64))
}

fn secs(median: Option<f64>, min: Option<f64>, max: Option<f64>) -> String {
    match (median, min, max) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.3} s ({lo:.3}–{hi:.3})"),
        _ => "—".into(),
    }
}

/// The image a row boots: its size and file name (`1.6M bzImage`, `11.7M vmlinux`).
fn boot_image(row: &Row) -> String {
    match (row.boot_image_bytes, &row.boot_image) {
        (Some(bytes), Some(name)) => format!("{} {name}", mib(Some(bytes))),
        _ => mib(None),
    }
}

/// A row's name: `ARCH/NAME` when `arches` (several arches measured), else the config's.
pub fn label(row: &Row, arches: bool) -> String {
    if arches { format!("{}/{}", row.arch, row.config) } else { row.config.clone() }
}

/// Whether the rows span more than one architecture.
pub fn several_arches(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.arch != rows[0].arch)
}

/// The Markdown table, ours beside the walk-through's published numbers.
pub fn table(rows: &[Row], accel: &str) -> String {
    let arches = several_arches(rows);
    let mut t = String::from(
        "| config | vmlinux | boot image | initramfs | guest boot, median (min–max) | host to shell, median (min–max) | runs | walk-through vmlinux | walk-through boot (KVM, 5.11) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (pv, pb) = published(r.arch, &r.config);
        let guest = r.error.as_ref().map_or_else(
            || secs(r.guest_boot_s_median, r.guest_boot_s_min, r.guest_boot_s_max),
            |e| format!("FAILED: {e}"),
        );
        t += &format!(
            "| {} | {} | {} | {} | {guest} | {} | {} | {pv} | {pb} |\n",
            label(r, arches),
            mib(r.vmlinux_bytes),
            boot_image(r),
            mib(r.initramfs_bytes),
            secs(r.host_wall_s_median, r.host_wall_s_min, r.host_wall_s_max),
            r.runs
        );
    }
    t + &format!("\naccelerator: {accel}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::row;
    use super::*;

    #[test]
    fn table_puts_published_numbers_beside_ours_and_keeps_failed_rows() {
        let t = table(&[row("allnoconfig", None), row("defconfig", Some("build failed"))], "tcg");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[2],
            "| allnoconfig | 6.0M | 1.0M bzImage | 1.0M | 0.500 s (0.400–0.600) | 1.500 s (1.000–2.000) | 3 | 6.1M | 0.28 s |"
        );
        assert!(lines[3].starts_with("| defconfig | — | — | 1.0M | FAILED: build failed |"), "{}", lines[3]);
        assert!(t.ends_with("accelerator: tcg"));
    }

    #[test]
    fn the_boot_image_is_named_as_the_config_boots_it() {
        let fast = Row { boot_image: Some("vmlinux".into()), boot_image_bytes: Some(6 << 20), ..row("fast", None) };
        let arm64 = Row { arch: "arm64", boot_image: Some("Image".into()), ..row("fast", None) };
        let t = table(&[fast, arm64], "tcg");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("| config | vmlinux | boot image | initramfs |"), "{t}");
        assert!(!t.contains("bzImage"), "{t}");
        assert!(lines[2].starts_with("| x86_64/fast | 6.0M | 6.0M vmlinux | 1.0M |"), "{t}");
        assert!(lines[3].starts_with("| arm64/fast | 6.0M | 1.0M Image | 1.0M |"), "{t}");
    }

    #[test]
    fn several_arches_are_named_in_each_row_and_only_x86_has_published_numbers() {
        let arm64 = Row { arch: "arm64", ..row("allnoconfig", None) };
        let t = table(&[row("allnoconfig", None), arm64], "tcg");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("| x86_64/allnoconfig |") && lines[2].ends_with("| 6.1M | 0.28 s |"), "{t}");
        assert!(lines[3].starts_with("| arm64/allnoconfig |") && lines[3].ends_with("| 3 |  |  |"), "{t}");
    }
}
