//! `cargo xtask kunit`: the kernel's KUnit tests in the guest, with KTAP results a CI can read.
//!
//! The test kernel is a variant of a small config (`fast` by default): its `kunit` option set is
//! `CONFIG_KUNIT=y` and the lines of the `.kunitconfig` files, so it gets an `O=` folder of its
//! own (`fast-kunit`), built only when they changed. KUnit runs its suites at boot, before init,
//! and `kunit_shutdown=reboot` ends the guest when they end (qemu runs with `-no-reboot`): no
//! initramfs is needed. The console is read to its end and its KTAP parsed (`ktap.rs`).

pub mod config;
pub mod ktap;
pub mod report;

use crate::ctx::Ctx;
use crate::kernel::{Kernel, OptionSet};
use crate::sources::{self, Package};
use anyhow::{Context, Result};
use camino::Utf8PathBuf;
use fs_err as fs;
use std::io::Write;
use std::time::{Duration, Instant};

/// The `cargo xtask kunit` flags.
#[derive(clap::Args)]
pub struct Options {
    /// The tests to run, as KUnit's `SUITE[.TEST]` globs (`kunit*`, `example.example_skip_test`);
    /// each glob is a boot of its own [default: every suite the kernel has].
    pub globs: Vec<String>,
    /// A .kunitconfig, or a folder holding one (from here, or else in the kernel source tree):
    /// lines the test kernel gets; repeatable, merged [default: lib/kunit, KUnit's own tests].
    #[arg(long, value_name = "FILE")]
    pub kunitconfig: Vec<Utf8PathBuf>,
    /// The kernel config the test kernel is a variant of (NAME-kunit).
    #[arg(long, default_value = "fast")]
    pub kernel: String,
    #[command(flatten)]
    pub outputs: Outputs,
    /// Seconds each boot may take, tests included; then qemu is killed, the running test is
    /// reported as timed out and the exit status is 124. 0: no limit.
    #[arg(long, default_value_t = 300, value_parser = crate::cli::parse_seconds, allow_hyphen_values = true)]
    pub timeout: u64,
    #[command(flatten)]
    pub guest: crate::qemu::Resources,
}

/// The report's files besides the summary (`cargo xtask kselftest` takes them too).
#[derive(clap::Args)]
pub struct Outputs {
    /// Also write the results as JSON to this file (one object per test, and the run's facts).
    #[arg(long)]
    pub json: Option<Utf8PathBuf>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<Utf8PathBuf>,
}

impl Outputs {
    /// The same files, from the current folder: checked before anything is built.
    pub fn absolute(&self) -> Result<Outputs> {
        let abs = |p: &Option<Utf8PathBuf>| p.clone().map(crate::ctx::absolute).transpose();
        Ok(Outputs { json: abs(&self.json)?, junit: abs(&self.junit)? })
    }
}

/// Exit statuses besides 0 (all passed) and 1 (a test failed or crashed, or no results).
pub const TIMED_OUT: i32 = 124;
pub const NOT_BUILT: i32 = 125;

/// Builds the test kernel, boots it once per glob, reports; returns the exit status.
pub fn run(ctx: &Ctx, opts: &Options) -> Result<i32> {
    crate::qemu::preflight(ctx.arch, false)?;
    opts.globs.iter().try_for_each(|g| config::check_glob(g))?;
    crate::kernel::check_name(ctx, &opts.kernel)?;
    let outputs = opts.outputs.absolute()?;
    let start = Instant::now();
    let tree = sources::fetch(ctx, Package::Linux)?;
    let (kunitconfigs, lines) = config::load(&opts.kunitconfig, &tree.dir)?;
    let kernel = match crate::kernel::variant(ctx, &opts.kernel, &[OptionSet::new("kunit", lines)], false) {
        Ok(kernel) => kernel,
        Err(e) if crate::dry::is_stop(&e) => return Err(e),
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("(exit status {NOT_BUILT}: the test kernel did not build, nothing ran)");
            return Ok(NOT_BUILT);
        }
    };
    let build_s = start.elapsed().as_secs_f64();
    let timeout = (opts.timeout > 0).then(|| Duration::from_secs(opts.timeout));
    let globs: Vec<Option<&str>> = match opts.globs.is_empty() {
        true => vec![None],
        false => opts.globs.iter().map(|g| Some(g.as_str())).collect(),
    };
    if ctx.dry_run {
        for glob in globs {
            eprintln!("$ {}", crate::runner::display(&argv(&kernel, &opts.guest, glob)));
        }
        return Ok(0);
    }
    let (mut suites, mut run_s, mut timed_out) = (Vec::new(), 0.0, false);
    for glob in globs {
        let (report, s, t) = boot(ctx, &kernel, &opts.guest, glob, timeout)?;
        suites.extend(report.suites);
        (run_s, timed_out) = (run_s + s, timed_out || t);
    }
    let report = ktap::Report { found: true, plan: None, suites };
    let facts = report::Run {
        tool: "kunit",
        arch: ctx.arch.name,
        config: kernel.config.clone(),
        base: opts.kernel.clone(),
        release: kernel.release.clone(),
        selection: [
            ("kunitconfigs", kunitconfigs.iter().map(ToString::to_string).collect()),
            ("filter_glob", opts.globs.clone()),
        ]
        .into(),
        build_s,
        run_s,
        timed_out,
    };
    finish(&facts, &report, &outputs)
}

/// Writes `--json` and `--junit`, prints the summary; returns the exit status: 124 when the
/// run timed out, 1 when a test failed, crashed or timed out, else 0 (kselftest's too).
pub fn finish(facts: &report::Run, report: &ktap::Report, outputs: &Outputs) -> Result<i32> {
    let files = [(&outputs.json, report::json(facts, report)), (&outputs.junit, report::junit(facts, report))];
    for (path, text) in files {
        if let Some(path) = path {
            crate::ctx::write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {path}");
        }
    }
    print!("{}", report::summary(facts, report));
    let c = report.counts();
    Ok(match () {
        _ if facts.timed_out => TIMED_OUT,
        _ if c.failed + c.crashed + c.timeout > 0 => 1,
        _ => 0,
    })
}

/// qemu's command line for a boot with `kunit.filter_glob=GLOB` (or every suite): no initramfs;
/// KUnit shuts the guest down when its suites are done.
fn argv(kernel: &Kernel, guest: &crate::qemu::Resources, glob: Option<&str>) -> Vec<String> {
    // KUnit prints its results at KERN_INFO, which a `quiet` config would not show.
    let mut append = vec!["kunit_shutdown=reboot".to_owned(), "loglevel=7".to_owned()];
    append.extend(glob.map(|g| format!("kunit.filter_glob={g}")));
    crate::qemu::boot_argv(kernel, None, false, guest, &append, &[])
}

/// One boot with `kunit.filter_glob=GLOB` (or every suite): its results, seconds, timed out.
fn boot(
    ctx: &Ctx,
    kernel: &Kernel,
    guest: &crate::qemu::Resources,
    glob: Option<&str>,
    timeout: Option<Duration>,
) -> Result<(ktap::Report, f64, bool)> {
    let argv = argv(kernel, guest, glob);
    eprintln!("$ {}", crate::runner::display(&argv));
    let logs = ctx.build.join("logs");
    fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("kunit-{}.log", ctx.arch.name));
    let mut log = std::io::LineWriter::new(fs::File::create(&log_path)?);
    eprintln!("  (console: {log_path})");
    let mut write_error = None;
    let ended = crate::qemu::Guest::run_to_end(&argv, timeout, |line| {
        if let Err(e) = writeln!(log, "{line}") {
            write_error.get_or_insert(e);
        }
        // The suites' results (not indented after a timestamp), or everything with -v.
        let text = line.strip_prefix('[').and_then(|l| l.split_once("] ")).map_or(line, |(_, t)| t);
        if ctx.verbose || text.starts_with("ok ") || text.starts_with("not ok ") {
            eprintln!("  | {line}");
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {log_path}"));
    }
    let end = if ended.timed_out { ktap::End::TimedOut } else { ktap::End::Finished };
    let report = ktap::parse(&ended.lines.join("\n"), end);
    if ended.timed_out {
        eprintln!(
            "error: timed out after {} s, qemu killed (--timeout; 0 for none)",
            timeout.unwrap_or_default().as_secs()
        );
    }
    if !report.found && !ended.timed_out {
        let tail: Vec<String> = ended.lines.iter().rev().take(10).rev().map(|l| format!("  | {l}")).collect();
        anyhow::bail!(
            "no KTAP in the console: {} printed no KUnit results; last lines ({log_path}):\n{}",
            kernel.obj,
            tail.join("\n")
        );
    }
    Ok((report, ended.host_s, ended.timed_out))
}
