//! `cargo xtask bench`: the walk-through's size and boot-time table for your own kernels, with
//! SVG charts, the initramfs packer against `find | cpio | gzip -9`, a timeline of one boot
//! (`--bootgraph`) and a profile of where its time goes (`--profile`). One source file per
//! output; each run's outputs in a folder of their own (runs.rs).

mod bootgraph;
mod chart;
mod dry;
mod instrumented;
mod packing;
mod palette;
mod profile;
mod profile_chart;
mod runs;
mod sampler;
mod svg;
mod table;
mod timeline;

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::kernel::Kernel;
use crate::qemu::{self, Guest};
use anyhow::{Result, bail};
use camino::Utf8PathBuf;
use fs_err as fs;
use instrumented::Instrumented;
use serde::Serialize;
use std::time::Duration;
use table::label;

/// The `cargo xtask bench` flags.
#[derive(clap::Args)]
pub struct Options {
    /// Comma-separated kernel configs to measure: NAME for --arch's, ARCH/NAME for another's
    /// (`x86_64/fast,arm64/fast,riscv64/fast` gives one table across arches).
    #[arg(long, value_delimiter = ',', default_value = "defconfig,alldefconfig,allnoconfig")]
    pub configs: Vec<String>,
    /// Boots per config (medians and min/max are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Boot with KVM (fails if /dev/kvm is not usable).
    #[arg(long)]
    pub kvm: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<Utf8PathBuf>,
    /// Boot this config (NAME or ARCH/NAME) once more with initcall_debug and timestamps, and
    /// draw the boot's phases from qemu start to the prompt: bootgraph-ARCH-NAME.svg in the run's folder
    /// (measured as a row too, if --configs lacks it).
    #[arg(long, value_name = "CONFIG")]
    pub bootgraph: Option<String>,
    /// Like --bootgraph, and sample the guest's program counter through qemu's monitor during
    /// that boot: the top functions per phase, profile-ARCH-NAME.svg in the run's folder.
    #[arg(long, value_name = "CONFIG")]
    pub profile: Option<String>,
    /// Seconds to wait for each boot to reach the shell.
    #[arg(long, default_value_t = 120, value_parser = crate::cli::parse_seconds, allow_hyphen_values = true)]
    pub timeout: u64,
    #[command(flatten)]
    pub guest: crate::qemu::Resources,
}

/// One config's row: sizes in bytes, times in seconds. Missing values: it failed (see `error`).
#[derive(Serialize, Default)]
struct Row {
    config: String,
    arch: &'static str,
    vmlinux_bytes: Option<u64>,
    /// The arch's compressed image (bzImage, Image), booted or not (its build record's `bzimage`).
    bzimage_bytes: Option<u64>,
    /// The file name of the image the config boots (qemu's `-kernel`): bzImage or Image, or
    /// vmlinux for x86's PVH boot (`fast`).
    boot_image: Option<String>,
    boot_image_bytes: Option<u64>,
    initramfs_bytes: Option<u64>,
    guest_boot_s_median: Option<f64>,
    guest_boot_s_min: Option<f64>,
    guest_boot_s_max: Option<f64>,
    host_wall_s_median: Option<f64>,
    host_wall_s_min: Option<f64>,
    host_wall_s_max: Option<f64>,
    accel: &'static str,
    /// `--cpus` and `--memory`, when given (else qemu's defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    runs: usize,
    /// The kernel's build record (`teeny-build.json` of its O= folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<serde_json::Value>,
    /// The instrumented boot of `--bootgraph` or `--profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Instrumented>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct MachineInfo {
    cpus: usize,
    cpu_model: String,
    host_kernel: String,
    /// `qemu-system-ARCH --version` of each arch measured, once per distinct version.
    qemu: String,
}

#[derive(Serialize)]
struct Report {
    results: Vec<Row>,
    machine: MachineInfo,
    packing: Option<packing::Packing>,
}

/// `NAME` (a config of `--arch`) or `ARCH/NAME`, as in `kernel-configs/ARCH/NAME.config`.
fn target(spec: &str, default: &'static Arch) -> Result<(&'static Arch, String)> {
    match spec.split_once('/') {
        Some((arch, name)) => Ok((crate::arch::parse(arch)?, name.to_owned())),
        None => Ok((default, spec.to_owned())),
    }
}

pub fn run(ctx: &Ctx, opts: &Options) -> Result<()> {
    anyhow::ensure!(opts.runs > 0, "--runs must be at least 1");
    let mut targets = opts.configs.iter().map(|c| target(c, ctx.arch)).collect::<Result<Vec<_>>>()?;
    let graph = opts.bootgraph.as_deref().map(|c| target(c, ctx.arch)).transpose()?;
    let profiled = opts.profile.as_deref().map(|c| target(c, ctx.arch)).transpose()?;
    // A config to draw or profile is measured as a row too; its timeline goes in that row.
    for t in graph.iter().chain(&profiled) {
        if !targets.contains(t) {
            targets.push(t.clone());
        }
    }
    // One context per arch measured, the first for the packer comparison.
    let mut ctxs: Vec<Ctx> = Vec::new();
    for (arch, _) in &targets {
        if !ctxs.iter().any(|c| c.arch == *arch) {
            ctxs.push(ctx.with_arch(arch));
        }
    }
    let ctx_of = |arch: &Arch| ctxs.iter().find(|c| c.arch == arch).expect("a context per arch");
    // A typo must not cost the boots before it, nor replace the last chart with a partial one.
    for c in &ctxs {
        qemu::preflight(c.arch, opts.kvm)?;
    }
    for (arch, name) in &targets {
        crate::kernel::check_name(ctx_of(arch), name)?;
    }
    if ctx.dry_run {
        return dry::run(&ctxs, opts, &targets, graph.as_ref(), profiled.as_ref());
    }
    // This run's folder: no other run's outputs are replaced.
    let bench = ctx.build.join("bench");
    let run = runs::create(&bench, &runs::now())?;
    eprintln!("bench: this run's charts and logs go in {run}");
    let packing = packing::packing(&ctxs[0]).map_err(|e| eprintln!("warning: packing comparison skipped: {e:#}")).ok();
    let accel = if opts.kvm { "kvm" } else { "tcg" };
    let mut rows = Vec::new();
    let mut written = Vec::new();
    for t @ (arch, config) in &targets {
        let (cpus, memory) = (opts.guest.cpus, opts.guest.memory.clone());
        let mut row = Row { config: config.clone(), arch: arch.name, accel, cpus, memory, ..Row::default() };
        let profile = profiled.as_ref() == Some(t);
        let draw = profile || graph.as_ref() == Some(t);
        let measured = measure(ctx_of(arch), opts, &mut row).and_then(|kernel| match draw {
            true => instrumented::boot(ctx_of(arch), opts, &kernel, &mut row, profile, &run, &mut written),
            false => Ok(()),
        });
        if let Err(e) = measured {
            eprintln!("error: {}: {e:#}", label(&row, true));
            row.error = Some(format!("{e:#}").lines().next().unwrap_or_default().to_owned());
        }
        rows.push(row);
    }
    let svg = run.join("bench.svg");
    crate::ctx::write_atomic(&svg, chart::chart(&rows).as_bytes())?;
    let mut out = format!("{}\n", table::table(&rows, accel));
    if let Some(p) = &packing {
        out += &format!("{p}\n");
    }
    for row in &rows {
        if let Some(t) = &row.timeline {
            out += &format!("\n{}\n", instrumented::summary(&label(row, true), t));
        }
    }
    let report = Report { results: rows, machine: machine_info(&ctxs), packing };
    let json = serde_json::to_string_pretty(&report)?;
    let (md, json_copy) = (run.join("bench.md"), run.join("bench.json"));
    crate::ctx::write_atomic(&md, out.as_bytes())?;
    crate::ctx::write_atomic(&json_copy, json.as_bytes())?;
    let latest = runs::link_latest(&bench, &run)?;
    print!("{out}");
    println!("\nthis run's charts and logs ({latest} links to {run}):");
    for path in [&svg].into_iter().chain(&written).chain([&md, &json_copy]) {
        println!("  {path}");
    }
    if let Some(path) = opts.json.clone().map(crate::ctx::absolute).transpose()? {
        crate::ctx::write_atomic(&path, json.as_bytes())?;
        println!("json: {path}");
    }
    let failed: Vec<String> = report.results.iter().filter(|r| r.error.is_some()).map(|r| label(r, true)).collect();
    if !failed.is_empty() {
        bail!("{} config(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Builds one config and boots it `runs` times, filling in the row.
fn measure(ctx: &Ctx, opts: &Options, row: &mut Row) -> Result<Kernel> {
    let kernel = crate::kernel::build(ctx, &row.config)?;
    saved(&kernel, &row.config)?;
    row.build =
        fs::read_to_string(kernel.obj.join(crate::kernel::RECORD)).ok().and_then(|t| serde_json::from_str(&t).ok());
    row.vmlinux_bytes = Some(fs::metadata(&kernel.vmlinux)?.len());
    row.bzimage_bytes = Some(fs::metadata(&kernel.boot_image)?.len());
    row.boot_image = kernel.image.file_name().map(String::from);
    row.boot_image_bytes = Some(fs::metadata(&kernel.image)?.len());
    let initrd = kernel.initrd(ctx, false)?;
    row.initramfs_bytes = Some(fs::metadata(&initrd)?.len());
    let argv = qemu::boot_argv(&kernel, Some(&initrd), opts.kvm, &opts.guest, &[], &[]);
    let (mut guest, mut host) = (Vec::new(), Vec::new());
    for i in 1..=opts.runs {
        eprintln!("boot {i}/{} of {}: $ {}", opts.runs, row.config, crate::runner::display(&argv));
        let (_guest, t) = Guest::boot(&argv, Some(Duration::from_secs(opts.timeout)))?;
        guest.push(t.guest_s);
        host.push(t.host_s);
    }
    [row.guest_boot_s_median, row.guest_boot_s_min, row.guest_boot_s_max] = stats(&guest).map(Some);
    [row.host_wall_s_median, row.host_wall_s_min, row.host_wall_s_max] = stats(&host).map(Some);
    row.runs = opts.runs;
    Ok(kernel)
}

/// The table describes the saved configs: a kernel built with unsaved changes is refused.
fn saved(kernel: &Kernel, config: &str) -> Result<()> {
    anyhow::ensure!(
        kernel.unsaved.is_empty(),
        "{config} has unsaved changes to .config ({}): bench measures the saved configs; keep them with `kernel {config} --save` or drop them with `--configure`",
        kernel.unsaved.join(", "),
    );
    Ok(())
}

/// Median, min and max of a non-empty sample.
fn stats(xs: &[f64]) -> [f64; 3] {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    [median, v[0], v[n - 1]]
}

fn machine_info(ctxs: &[Ctx]) -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()));
    let mut qemu: Vec<String> = Vec::new();
    for c in ctxs {
        let out = std::process::Command::new(c.arch.qemu).arg("--version").output();
        let version = out.map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_owned());
        if let Ok(v) = version.map(|v| format!("{}: {v}", c.arch.qemu))
            && !qemu.contains(&v)
        {
            qemu.push(v);
        }
    }
    MachineInfo {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: cpu_model.unwrap_or_default(),
        host_kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        qemu: qemu.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::timeline::Timeline;
    use super::*;

    #[test]
    fn stats_are_median_min_max() {
        assert_eq!(stats(&[0.3, 0.1, 0.2]), [0.2, 0.1, 0.3]);
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), [2.5, 1.0, 4.0]);
    }

    pub fn row(config: &str, error: Option<&str>) -> Row {
        let ok = error.is_none();
        Row {
            config: config.into(),
            arch: "x86_64",
            vmlinux_bytes: ok.then_some(6 << 20),
            bzimage_bytes: ok.then_some(1 << 20),
            boot_image: ok.then(|| "bzImage".into()),
            boot_image_bytes: ok.then_some(1 << 20),
            initramfs_bytes: Some(1 << 20),
            guest_boot_s_median: ok.then_some(0.5),
            guest_boot_s_min: ok.then_some(0.4),
            guest_boot_s_max: ok.then_some(0.6),
            host_wall_s_median: ok.then_some(1.5),
            host_wall_s_min: ok.then_some(1.0),
            host_wall_s_max: ok.then_some(2.0),
            accel: "tcg",
            cpus: None,
            memory: None,
            runs: if ok { 3 } else { 0 },
            build: ok.then(|| serde_json::json!({"config": config, "ccache": {"hits": 1, "misses": 2}})),
            timeline: None,
            error: error.map(String::from),
        }
    }

    #[test]
    fn a_target_is_a_config_of_the_chosen_arch_or_arch_slash_config() {
        let x86 = crate::arch::parse("x86_64").unwrap();
        assert_eq!(target("fast", x86).unwrap(), (x86, "fast".to_owned()));
        let (arch, name) = target("aarch64/allnoconfig", x86).unwrap();
        assert_eq!((arch.name, name.as_str()), ("arm64", "allnoconfig"));
        assert!(target("mips/fast", x86).unwrap_err().to_string().contains("unknown architecture `mips`"));
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = serde_json::to_value(row("allnoconfig", None)).unwrap();
        for key in [
            "config",
            "arch",
            "vmlinux_bytes",
            "bzimage_bytes",
            "boot_image",
            "boot_image_bytes",
            "initramfs_bytes",
            "guest_boot_s_median",
            "guest_boot_s_min",
            "guest_boot_s_max",
            "host_wall_s_median",
            "accel",
            "runs",
            "build",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v.get("error").is_none());
    }

    #[test]
    fn the_instrumented_boot_is_one_json_object_with_its_profile() {
        let timeline = Timeline {
            guest_uptime_s: 0.3,
            guest_clock_zero_host_s: 0.2,
            guest_clock_step_s: 0.004,
            host_prompt_s: 0.6,
            attributed: 1.0,
            phases: Vec::new(),
        };
        let entry = profile::Entry { function: "memset".into(), phase: "initcalls".into(), share: 1.0, samples: 1 };
        let sampling = profile::sampling(&[0.3], &[0.001], std::time::Duration::from_millis(2));
        let i = Instrumented { timeline, profile: vec![entry], sampling: Some(sampling) };
        let v = serde_json::to_value(Row { timeline: Some(i), ..row("fast", None) }).unwrap();
        // As before the profile moved out of the timeline: "profile" beside "phases".
        for key in ["/timeline/guest_uptime_s", "/timeline/phases", "/timeline/profile/0/function"] {
            assert!(v.pointer(key).is_some(), "{key} in {v:#}");
        }
        assert_eq!(v.pointer("/timeline/sampling/asked_interval_s"), Some(&serde_json::json!(0.002)));
    }
}
