//! Colours that are pure functions of a name, so that a phase or a function has the same colour
//! in every run and in every chart: the standard phases a fixed one each, any other phase (an
//! initcall opened under the initcalls) one of a fixed palette chosen by a hash of its name.

/// The timeline's phases of every boot, and where the profile counts samples outside them.
const PHASES: [(&str, &str); 11] = [
    ("qemu, firmware and early kernel, until the guest's clock starts", "#f28e2b"),
    ("early setup, until the first initcall", "#4e79a7"),
    ("delay-loop calibration", "#a0cbe8"),
    ("initcalls", "#59a14f"),
    ("unpacking the initramfs", "#edc948"),
    ("freeing init memory", "#e15759"),
    ("write-protecting the kernel, starting init", "#b07aa1"),
    ("init: mounts until \"Boot took\"", "#76b7b2"),
    ("init's shell starting, until the prompt", "#ffbe7d"),
    ("after the prompt", "#bab0ac"),
    ("between the named phases", "#79706e"),
];

/// For other phases: lighter and darker tones, none of them a standard phase's.
const OTHERS: [&str; 10] =
    ["#8cd17d", "#b6992d", "#f1ce63", "#86bcb6", "#ff9d9a", "#d37295", "#fabfd2", "#d4a6c8", "#9d7660", "#499894"];

/// The colour of the samples outside a profile's top functions.
pub const REST: &str = "#d9d9d9";

/// FNV-1a: a hash that, unlike std's, is the same in every build.
fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// A phase's colour.
pub fn phase(name: &str) -> &'static str {
    match PHASES.iter().find(|(n, _)| *n == name) {
        Some((_, color)) => color,
        None => OTHERS[(fnv(name) % OTHERS.len() as u64) as usize],
    }
}

/// A function's colour: a hue from its name, at one saturation and lightness (`#rrggbb`).
pub fn function(name: &str) -> String {
    let hue = (fnv(name) % 360) as f64;
    let (s, l) = (0.45, 0.55);
    // HSL to RGB (CSS Color 3).
    let c = (1.0 - (2.0 * l - 1.0f64).abs()) * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + l - c / 2.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colour_is_a_function_of_the_name_alone() {
        // The standard phases: fixed, and each its own.
        assert_eq!(phase("initcalls"), "#59a14f");
        assert_eq!(phase("freeing init memory"), "#e15759");
        let mut fixed: Vec<&str> = PHASES.iter().map(|(n, _)| phase(n)).collect();
        fixed.sort();
        fixed.dedup();
        assert_eq!(fixed.len(), PHASES.len());
        // Any other name: the same colour every time (the hash does not vary between builds or
        // runs), never a standard phase's.
        assert_eq!(fnv("serial8250_init"), 0x16df9f6535e9e3e5);
        for name in ["serial8250_init", "deferred_probe_initcall", "kswapd_init", ""] {
            assert_eq!(phase(name), phase(&name.to_owned()));
            assert!(!PHASES.iter().any(|(_, c)| *c == phase(name)), "{name}");
        }
        assert_eq!(function("io_serial_out"), function("io_serial_out"));
        assert_ne!(function("io_serial_out"), function("free_reserved_area"));
        let f = function("memset");
        assert!(f.len() == 7 && f.starts_with('#') && u32::from_str_radix(&f[1..], 16).is_ok(), "{f}");
    }

    #[test]
    fn hues_become_the_rgb_of_css() {
        // fnv % 360 picks the hue; check the conversion at hues whose RGB is known.
        let at = |hue: u64| (0..).map(|i| format!("f{i}")).find(|n| fnv(n) % 360 == hue).unwrap();
        assert_eq!(function(&at(0)), "#c05959"); // hsl(0, 45%, 55%)
        assert_eq!(function(&at(120)), "#59c059");
        assert_eq!(function(&at(240)), "#5959c0");
    }
}
