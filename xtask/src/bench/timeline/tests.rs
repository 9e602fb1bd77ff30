//! The timeline's tests, and the boot they are drawn from.

use super::*;

/// A console log: (host seconds, text).
fn log(lines: &[(f64, &str)]) -> Vec<Line> {
    lines.iter().map(|&(host_s, t)| Line { host_s, text: t.to_owned(), console: true }).collect()
}

/// The shape of the fast profile's instrumented boot: lines buffered until the console is
/// enabled, calibration, initcalls with unpacking beside them, freeing, init.
pub fn boot() -> Vec<Line> {
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
