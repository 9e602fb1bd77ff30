//! `cargo xtask bench`: the walk-through's size and boot-time table for your own kernels, with
//! SVG charts, the initramfs packer against `find | cpio | gzip -9`, and an initcall boot graph.

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::initramfs::{self, archive};
use crate::qemu::{self, Guest};
use anyhow::{Context, Result, bail};
use camino::Utf8PathBuf;
use fs_err as fs;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The `cargo xtask bench` flags.
pub struct Options {
    pub configs: Vec<String>,
    pub runs: usize,
    pub kvm: bool,
    pub json: Option<Utf8PathBuf>,
    pub bootgraph: Option<String>,
    pub timeout: Duration,
}

/// One config's row: sizes in bytes, times in seconds. Missing values: it failed (see `error`).
#[derive(Serialize, Default)]
struct Row {
    config: String,
    arch: &'static str,
    vmlinux_bytes: Option<u64>,
    bzimage_bytes: Option<u64>,
    initramfs_bytes: Option<u64>,
    guest_boot_s_median: Option<f64>,
    guest_boot_s_min: Option<f64>,
    guest_boot_s_max: Option<f64>,
    host_wall_s_median: Option<f64>,
    host_wall_s_min: Option<f64>,
    host_wall_s_max: Option<f64>,
    accel: &'static str,
    runs: usize,
    /// The kernel's build record (`teeny-build.json` of its O= folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<serde_json::Value>,
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

/// Our packer against the shell pipeline, on the same tree in the same run.
#[derive(Serialize)]
struct Packing {
    ours_s: f64,
    ours_bytes: u64,
    cpio_gzip_s: f64,
    cpio_gzip_bytes: u64,
}

#[derive(Serialize)]
struct Report {
    results: Vec<Row>,
    machine: MachineInfo,
    packing: Option<Packing>,
}

/// The walk-through's published numbers (x86_64, KVM, Linux 5.11): vmlinux size and boot time.
fn published(arch: &str, config: &str) -> (&'static str, &'static str) {
    match (arch, config) {
        ("x86_64", "defconfig") => ("54M", "0.74 s"),
        ("x86_64", "alldefconfig") => ("19M", "0.32 s"),
        ("x86_64", "allnoconfig") => ("6.1M", "0.28 s"),
        _ => ("", ""),
    }
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
    let targets = opts.configs.iter().map(|c| target(c, ctx.arch)).collect::<Result<Vec<_>>>()?;
    let graph = opts.bootgraph.as_deref().map(|c| target(c, ctx.arch)).transpose()?;
    // One context per arch measured, the first for the packer comparison.
    let mut ctxs: Vec<Ctx> = Vec::new();
    for (arch, _) in targets.iter().chain(&graph) {
        if !ctxs.iter().any(|c| c.arch == *arch) {
            ctxs.push(ctx.with_arch(arch));
        }
    }
    let ctx_of = |arch: &Arch| ctxs.iter().find(|c| c.arch == arch).expect("a context per arch");
    // A typo must not cost the boots before it, nor replace the last chart with a partial one.
    for c in &ctxs {
        qemu::preflight(c.arch, opts.kvm)?;
    }
    for (arch, name) in targets.iter().chain(&graph) {
        crate::kernel::check_name(ctx_of(arch), name)?;
    }
    let packing = packing(&ctxs[0]).map_err(|e| eprintln!("warning: packing comparison skipped: {e:#}")).ok();
    let accel = if opts.kvm { "kvm" } else { "tcg" };
    let mut rows = Vec::new();
    for (arch, config) in &targets {
        let mut row = Row { config: config.clone(), arch: arch.name, accel, ..Row::default() };
        if let Err(e) = measure(ctx_of(arch), opts, &mut row) {
            eprintln!("error: {}: {e:#}", label(&row, true));
            row.error = Some(format!("{e:#}").lines().next().unwrap_or_default().to_owned());
        }
        rows.push(row);
    }
    let dir = ctx.build.join("bench");
    fs::create_dir_all(&dir)?;
    let svg = dir.join("bench.svg");
    crate::ctx::write_atomic(&svg, chart(&rows).as_bytes())?;
    println!("{}", table(&rows, accel));
    if let Some(p) = &packing {
        println!(
            "initramfs packing, same tree: ours {:.3} s, {} bytes; find | cpio -o -H newc | gzip -9: {:.3} s, {} bytes",
            p.ours_s, p.ours_bytes, p.cpio_gzip_s, p.cpio_gzip_bytes
        );
    }
    println!("chart: {svg}");
    let report = Report { results: rows, machine: machine_info(&ctxs), packing };
    if let Some(path) = &opts.json {
        crate::ctx::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("json: {path}");
    }
    if let Some((arch, config)) = &graph {
        let out = bootgraph(ctx_of(arch), opts, config)?;
        println!("boot graph: {out}");
    }
    let failed: Vec<String> = report.results.iter().filter(|r| r.error.is_some()).map(|r| label(r, true)).collect();
    if !failed.is_empty() {
        bail!("{} config(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Builds one config and boots it `runs` times, filling in the row.
fn measure(ctx: &Ctx, opts: &Options, row: &mut Row) -> Result<()> {
    let kernel = crate::kernel::build(ctx, &row.config)?;
    row.build =
        fs::read_to_string(kernel.obj.join(crate::kernel::RECORD)).ok().and_then(|t| serde_json::from_str(&t).ok());
    row.vmlinux_bytes = Some(fs::metadata(&kernel.vmlinux)?.len());
    row.bzimage_bytes = Some(fs::metadata(&kernel.boot_image)?.len());
    let initrd = initramfs::for_kernel(ctx, &kernel, false)?;
    row.initramfs_bytes = Some(fs::metadata(&initrd)?.len());
    let argv = qemu::boot_argv(&kernel, &initrd, opts.kvm, &[], &[]);
    let (mut guest, mut host) = (Vec::new(), Vec::new());
    for i in 1..=opts.runs {
        eprintln!("boot {i}/{} of {}: $ {}", opts.runs, row.config, crate::runner::display(&argv));
        let (_guest, t) = Guest::boot(&argv, Some(opts.timeout))?;
        guest.push(t.guest_s);
        host.push(t.host_s);
    }
    [row.guest_boot_s_median, row.guest_boot_s_min, row.guest_boot_s_max] = stats(&guest).map(Some);
    [row.host_wall_s_median, row.host_wall_s_min, row.host_wall_s_max] = stats(&host).map(Some);
    row.runs = opts.runs;
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

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("—".into(), |b| format!("{:.1}M", b as f64 / (1 << 20) as f64))
}

fn secs(median: Option<f64>, min: Option<f64>, max: Option<f64>) -> String {
    match (median, min, max) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.3} s ({lo:.3}–{hi:.3})"),
        _ => "—".into(),
    }
}

/// A row's name: `ARCH/NAME` when `arches` (several arches measured), else the config's.
fn label(row: &Row, arches: bool) -> String {
    if arches { format!("{}/{}", row.arch, row.config) } else { row.config.clone() }
}

/// Whether the rows span more than one architecture.
fn several_arches(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.arch != rows[0].arch)
}

/// The Markdown table, ours beside the walk-through's published numbers.
fn table(rows: &[Row], accel: &str) -> String {
    let arches = several_arches(rows);
    let mut t = String::from(
        "| config | vmlinux | bzImage | initramfs | guest boot, median (min–max) | host to shell, median (min–max) | runs | walk-through vmlinux | walk-through boot (KVM, 5.11) |\n\
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
            mib(r.bzimage_bytes),
            mib(r.initramfs_bytes),
            secs(r.host_wall_s_median, r.host_wall_s_min, r.host_wall_s_max),
            r.runs
        );
    }
    t + &format!("\naccelerator: {accel}")
}

/// Horizontal bars: boot times (guest, host) and sizes (vmlinux, bzImage) per config.
fn chart(rows: &[Row]) -> String {
    // Title, (series name, colour) pairs, and the series' values for a row.
    type Panel = (&'static str, [(&'static str, &'static str); 2], fn(&Row) -> [Option<f64>; 2]);
    let panels: [Panel; 2] = [
        (
            "boot time (s, median)",
            [("guest uptime at init", "#4e79a7"), ("host: qemu start to shell", "#f28e2b")],
            |r| [r.guest_boot_s_median, r.host_wall_s_median],
        ),
        ("size (MiB)", [("vmlinux", "#59a14f"), ("bzImage", "#e15759")], |r| {
            [r.vmlinux_bytes, r.bzimage_bytes].map(|b| b.map(|b| b as f64 / (1 << 20) as f64))
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
        let max = rows.iter().flat_map(values).flatten().fold(0.0, f64::max).max(1e-9);
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
                let Some(v) = v else {
                    svg += &format!("<text x=\"{}\" y=\"{}\">failed</text>\n", x0 + label_w, by + 12.0);
                    continue;
                };
                let w = v / max * bar_w;
                svg += &format!(
                    "<rect x=\"{}\" y=\"{by}\" width=\"{w:.1}\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{v:.2}</text>\n",
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

/// Packs the same tree both ways. The tree is the initramfs staged on disk, without
/// `dev/console` (making a device node needs root).
fn packing(ctx: &Ctx) -> Result<Packing> {
    let install = crate::busybox::build(ctx, false)?;
    let stage = ctx.build.join("bench/tree");
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    fs::create_dir_all(&stage)?;
    for e in initramfs::entries(&install, &ctx.root.join("rootfs"))? {
        let dest = stage.join(&e.path);
        match &e.kind {
            archive::Kind::Dir => fs::create_dir_all(&dest)?,
            archive::Kind::File { source } => drop(fs::copy(source, &dest)?),
            archive::Kind::Symlink { target } => {
                std::os::unix::fs::symlink(target, &dest).with_context(|| format!("symlink {dest}"))?
            }
            archive::Kind::CharDev { .. } => {}
        }
    }
    let (ours, theirs) = (ctx.build.join("bench/ours.cpio.gz"), ctx.build.join("bench/theirs.cpio.gz"));
    let start = Instant::now();
    let ours_bytes = initramfs::write(&archive::collect(&stage)?, 0, &ours, initramfs::Compression::Gzip)?;
    let ours_s = start.elapsed().as_secs_f64();
    eprintln!("$ (cd {stage} && find . | cpio -o -H newc --quiet | gzip -9 > {theirs})");
    let start = Instant::now();
    duct::cmd!("find", ".")
        .pipe(duct::cmd!("cpio", "-o", "-H", "newc", "--quiet"))
        .pipe(duct::cmd!("gzip", "-9"))
        .dir(&stage)
        .stdout_path(&theirs)
        .run()
        .context("find | cpio | gzip (is GNU cpio installed?)")?;
    let cpio_gzip_s = start.elapsed().as_secs_f64();
    Ok(Packing { ours_s, ours_bytes, cpio_gzip_s, cpio_gzip_bytes: fs::metadata(&theirs)?.len() })
}

/// One initcall from an `initcall_debug` boot: start and duration in seconds.
#[derive(Debug, PartialEq)]
struct Initcall {
    name: String,
    start_s: f64,
    dur_s: f64,
}

/// `[    0.123456] rest` → (0.123456, rest).
fn printk_time(line: &str) -> Option<(f64, &str)> {
    let (t, rest) = line.trim_start().strip_prefix('[')?.split_once(']')?;
    Some((t.trim().parse().ok()?, rest.trim_start()))
}

/// Pairs `calling  fn+0x0/0x10 @ 1` with `initcall fn+0x0/0x10 returned 0 after N usecs`.
fn initcalls(log: &[String]) -> Vec<Initcall> {
    let mut started = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for line in log {
        let Some((t, rest)) = printk_time(line) else { continue };
        if let Some(call) = rest.strip_prefix("calling") {
            if let Some(name) = call.split_whitespace().next() {
                started.insert(name.to_owned(), t);
            }
        } else if let Some(ret) = rest.strip_prefix("initcall ") {
            let mut words = ret.split_whitespace();
            let name = words.next().unwrap_or_default();
            let usecs = ret.split(" after ").nth(1).and_then(|a| a.split_whitespace().next()?.parse::<f64>().ok());
            if let (Some(&start_s), Some(us)) = (started.get(name), usecs) {
                let short = name.split('+').next().unwrap_or(name).to_owned();
                calls.push(Initcall { name: short, start_s, dur_s: us / 1e6 });
            }
        }
    }
    calls
}

/// The slowest initcalls on the boot's time axis, and where init started.
fn bootgraph_svg(config: &str, calls: &[Initcall], init_s: f64) -> String {
    let mut top: Vec<&Initcall> = calls.iter().collect();
    top.sort_by(|a, b| b.dur_s.total_cmp(&a.dur_s));
    top.truncate(30);
    top.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let (left, width, row_h) = (260.0, 600.0, 16.0);
    let end = init_s.max(calls.iter().map(|c| c.start_s + c.dur_s).fold(0.0, f64::max)).max(1e-6);
    let x = |t: f64| left + t / end * width;
    let height = 60.0 + top.len() as f64 * row_h;
    let total: f64 = calls.iter().map(|c| c.dur_s).sum();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <text x=\"10\" y=\"16\" font-weight=\"bold\">{config}: the {} slowest of {} initcalls ({total:.3} s in all); init at {init_s:.3} s</text>\n",
        left + width + 80.0,
        top.len(),
        calls.len()
    );
    svg += &format!("<line x1=\"{0}\" y1=\"28\" x2=\"{0}\" y2=\"{height}\" stroke=\"#999\"/>\n", x(init_s));
    for (i, c) in top.iter().enumerate() {
        let y = 34.0 + i as f64 * row_h;
        let w = (c.dur_s / end * width).max(1.0);
        svg += &format!(
            "<text x=\"10\" y=\"{}\">{}</text><rect x=\"{:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"12\" fill=\"#4e79a7\"/><text x=\"{:.1}\" y=\"{}\">{:.2} ms</text>\n",
            y + 10.0,
            c.name,
            x(c.start_s),
            x(c.start_s) + w + 3.0,
            y + 10.0,
            c.dur_s * 1e3
        );
    }
    svg + "</svg>\n"
}

/// Boots CONFIG once with `initcall_debug printk.time=1` and draws where the time goes. Initcall
/// names need kallsyms: a config without it is built as a `-bootgraph` variant with it.
fn bootgraph(ctx: &Ctx, opts: &Options, config: &str) -> Result<Utf8PathBuf> {
    let mut kernel = crate::kernel::build(ctx, config)?;
    let dotconfig = kernel.vmlinux.with_file_name(".config");
    if !fs::read_to_string(&dotconfig)?.contains("\nCONFIG_KALLSYMS=y\n") {
        kernel = crate::kernel::build_variant(ctx, config, "bootgraph", &["CONFIG_KALLSYMS=y"])?;
    }
    let initrd = initramfs::for_kernel(ctx, &kernel, false)?;
    // After the config's own arguments, so loglevel=8 wins over a `quiet`.
    let append = ["initcall_debug".into(), "printk.time=1".into(), "loglevel=8".into()];
    let argv = qemu::boot_argv(&kernel, &initrd, opts.kvm, &append, &[]);
    eprintln!("$ {}", crate::runner::display(&argv));
    let (guest, times) = Guest::boot(&argv, Some(opts.timeout))?;
    let calls = initcalls(guest.log());
    anyhow::ensure!(!calls.is_empty(), "no initcall lines on the console (does {config} have PRINTK?)");
    let out = ctx.build.join("bench").join(format!("bootgraph-{}-{config}.svg", ctx.arch.name));
    crate::ctx::write_atomic(&out, bootgraph_svg(config, &calls, times.guest_s).as_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_median_min_max() {
        assert_eq!(stats(&[0.3, 0.1, 0.2]), [0.2, 0.1, 0.3]);
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), [2.5, 1.0, 4.0]);
    }

    fn row(config: &str, error: Option<&str>) -> Row {
        let ok = error.is_none();
        Row {
            config: config.into(),
            arch: "x86_64",
            vmlinux_bytes: ok.then_some(6 << 20),
            bzimage_bytes: ok.then_some(1 << 20),
            initramfs_bytes: Some(1 << 20),
            guest_boot_s_median: ok.then_some(0.5),
            guest_boot_s_min: ok.then_some(0.4),
            guest_boot_s_max: ok.then_some(0.6),
            host_wall_s_median: ok.then_some(1.5),
            host_wall_s_min: ok.then_some(1.0),
            host_wall_s_max: ok.then_some(2.0),
            accel: "tcg",
            runs: if ok { 3 } else { 0 },
            build: ok.then(|| serde_json::json!({"config": config, "ccache": {"hits": 1, "misses": 2}})),
            error: error.map(String::from),
        }
    }

    #[test]
    fn table_puts_published_numbers_beside_ours_and_keeps_failed_rows() {
        let t = table(&[row("allnoconfig", None), row("defconfig", Some("build failed"))], "tcg");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[2],
            "| allnoconfig | 6.0M | 1.0M | 1.0M | 0.500 s (0.400–0.600) | 1.500 s (1.000–2.000) | 3 | 6.1M | 0.28 s |"
        );
        assert!(lines[3].starts_with("| defconfig | — | — | 1.0M | FAILED: build failed |"), "{}", lines[3]);
        assert!(t.ends_with("accelerator: tcg"));
    }

    #[test]
    fn several_arches_are_named_in_each_row_and_only_x86_has_published_numbers() {
        let arm64 = Row { arch: "arm64", ..row("allnoconfig", None) };
        let t = table(&[row("allnoconfig", None), arm64], "tcg");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("| x86_64/allnoconfig |") && lines[2].ends_with("| 6.1M | 0.28 s |"), "{t}");
        assert!(lines[3].starts_with("| arm64/allnoconfig |") && lines[3].ends_with("| 3 |  |  |"), "{t}");
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
    fn chart_draws_a_bar_per_value_and_marks_failures() {
        let svg = chart(&[row("allnoconfig", None), row("defconfig", Some("x"))]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("height=\"14\"").count(), 4, "two bars in each of two panels");
        assert_eq!(svg.matches(">failed<").count(), 4);
    }

    #[test]
    fn parses_initcall_debug_output() {
        let log: Vec<String> = [
            "[    0.100000] calling  init_a+0x0/0x20 @ 1",
            "[    0.100300] initcall init_a+0x0/0x20 returned 0 after 250 usecs",
            "[    0.200000] calling  serial8250_init+0x0/0x1a0 @ 1",
            "[    0.230000] initcall serial8250_init+0x0/0x1a0 returned 0 after 29000 usecs",
            "Boot took 0.31 seconds",
        ]
        .map(String::from)
        .into();
        let calls = initcalls(&log);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1], Initcall { name: "serial8250_init".into(), start_s: 0.2, dur_s: 0.029 });
        let svg = bootgraph_svg("allnoconfig", &calls, 0.31);
        assert!(svg.contains("serial8250_init") && svg.contains("29.00 ms"), "{svg}");
    }
}
