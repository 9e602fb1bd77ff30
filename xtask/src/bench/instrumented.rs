//! The instrumented boot of `--bootgraph` and `--profile`: its timeline, its profile, their
//! charts and the logs they were drawn from, and their tables.

use super::table::label;
use super::{Options, Row, bootgraph, profile, profile_chart, sampler, timeline};
use crate::ctx::Ctx;
use crate::kernel::Kernel;
use crate::qemu::{self, Guest};
use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
use serde::Serialize;
use timeline::Timeline;

/// An instrumented boot: its timeline, and with `--profile` where its samples fell.
#[derive(Serialize)]
pub struct Instrumented {
    #[serde(flatten)]
    pub timeline: Timeline,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<profile::Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<profile::Sampling>,
}

/// What the instrumented boot adds to the kernel's command line: timestamped initcall lines,
/// in a log buffer large enough for them; on the console only up to KERN_INFO, which has the
/// lines the phases begin and end with (writing the ~600 initcall lines to the emulated UART
/// would cost more than some of the phases: read with `dmesg` after the boot instead);
/// `nokaslr`, so that addresses are vmlinux's.
const INSTRUMENTED: [&str; 5] = ["initcall_debug", "printk.time=1", "loglevel=7", "log_buf_len=1M", "nokaslr"];

/// qemu's monitor socket for `--profile`; not in the run's folder: a unix socket's path has at
/// most 107 bytes.
fn socket(ctx: &Ctx) -> Utf8PathBuf {
    ctx.build.join(format!("bench/qmp-{}.sock", ctx.arch.name))
}

/// qemu's command line for the instrumented boot, with `profile` its monitor on [`socket`].
pub fn argv(ctx: &Ctx, opts: &Options, kernel: &Kernel, initrd: &Utf8Path, profile: bool) -> Vec<String> {
    let append = INSTRUMENTED.map(String::from);
    let qemu_args = if profile { sampler::qemu_args(&socket(ctx)) } else { Vec::new() };
    qemu::boot_argv(kernel, Some(initrd), opts.kvm, &opts.guest, &append, &qemu_args)
}

/// Boots `kernel` once with its console instrumented (and with `profile`, its program counter
/// sampled through qemu's monitor) and draws the timeline (and the profile) into the run's
/// folder `dir`, their paths into `written`; the row gets them. The booted kernel is the
/// measured one: initcall and function names come from its vmlinux, so it needs no kallsyms.
pub fn boot(
    ctx: &Ctx,
    opts: &Options,
    kernel: &Kernel,
    row: &mut Row,
    profile: bool,
    dir: &Utf8Path,
    written: &mut Vec<Utf8PathBuf>,
) -> Result<()> {
    let socket = socket(ctx);
    let initrd = kernel.initrd(ctx, false)?;
    let argv = argv(ctx, opts, kernel, &initrd, profile);
    eprintln!("instrumented boot of {}: $ {}", row.config, crate::runner::display(&argv));
    // A socket left by an earlier run would make qemu fail to listen.
    let _ = std::fs::remove_file(&socket);
    let running = profile.then(|| sampler::Sampler::start(socket.clone(), ctx.arch.monitor_pc));
    let booted = Guest::boot(&argv, Some(std::time::Duration::from_secs(opts.timeout)));
    let samples = running.map(sampler::Sampler::finish).transpose();
    let _ = std::fs::remove_file(&socket);
    let (mut guest, times) = booted?;
    let (status, dmesg) = guest.output(&["dmesg".to_owned()])?;
    anyhow::ensure!(status == 0, "`dmesg` in the guest exited with {status}");
    // What the timeline is drawn from: the console with arrival times, and the kernel's log.
    let console: String = guest.log().iter().map(|l| format!("{:9.6} {}\n", l.host_s, l.text)).collect();
    let logs = format!("# console (host seconds since qemu started, line)\n{console}# dmesg\n{}\n", dmesg.join("\n"));
    let log = dir.join(format!("bootgraph-{}-{}.log", ctx.arch.name, row.config));
    crate::ctx::write_atomic(&log, logs.as_bytes())?;
    written.push(log);
    let symbols = crate::elf::code_symbols(&fs::read(&kernel.vmlinux)?)
        .with_context(|| format!("reading the symbols of {}", kernel.vmlinux))?;
    let t = timeline::timeline(guest.log(), &dmesg, times.guest_s, times.host_s, &symbols)
        .with_context(|| format!("the timeline of {}", row.config))?;
    let title = format!("{}: one boot, from qemu start to the shell prompt ({})", label(row, true), row.accel);
    written.push(write_chart(dir, "bootgraph", ctx, &row.config, &bootgraph::svg(&t, &title))?);
    let mut t = Instrumented { timeline: t, profile: Vec::new(), sampling: None };
    if let Some(samples) = samples? {
        anyhow::ensure!(!samples.is_empty(), "no samples from qemu's monitor at {socket}");
        let at: Vec<f64> =
            samples.iter().map(|s| s.answered.saturating_duration_since(guest.started()).as_secs_f64()).collect();
        let round_trips: Vec<f64> = samples.iter().map(|s| (s.answered - s.asked).as_secs_f64()).collect();
        let pcs: Vec<(f64, u64)> = at.iter().zip(&samples).map(|(at, s)| (*at, s.pc)).collect();
        t.profile = profile::attribute(&pcs, &symbols, &t.timeline);
        let sampling = profile::sampling(&at, &round_trips, sampler::INTERVAL);
        let title = format!("{}: functions by share of {} samples of the boot", label(row, true), samples.len());
        let chart = profile_chart::svg(&t.profile, &profile::phases(&t.timeline), &sampling, &title);
        written.push(write_chart(dir, "profile", ctx, &row.config, &chart)?);
        t.sampling = Some(sampling);
    }
    row.timeline = Some(t);
    Ok(())
}

/// Writes DIR/KIND-ARCH-CONFIG.svg.
fn write_chart(dir: &Utf8Path, kind: &str, ctx: &Ctx, config: &str, svg: &str) -> Result<Utf8PathBuf> {
    let path = dir.join(format!("{kind}-{}-{config}.svg", ctx.arch.name));
    crate::ctx::write_atomic(&path, svg.as_bytes())?;
    Ok(path)
}

/// The timeline's phases (and profile) as text.
pub fn summary(label: &str, i: &Instrumented) -> String {
    let t = &i.timeline;
    let mut out = format!(
        "{label}: guest uptime at init {:.3} s, {:.0}% of it in named phases; prompt {:.3} s after qemu started\n",
        t.guest_uptime_s,
        t.attributed * 100.0,
        t.host_prompt_s
    );
    out += "| phase | side | start | duration |\n|---|---|---|---|\n";
    for p in &t.phases {
        let name = if p.depth > 0 { format!("  {}", p.name) } else { p.name.clone() };
        let side = if p.side == timeline::Side::Host { "host" } else { "guest" };
        out += &format!("| {name} | {side} | {:.3} s | {:.1} ms |\n", p.start_s, p.duration_s * 1e3);
    }
    if let Some(sampling) = &i.sampling {
        out += &format!("\n{}", profile::table(&i.profile, t, sampling));
    }
    out
}
