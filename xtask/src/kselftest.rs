//! `cargo xtask kselftest`: the kernel's selftests (tools/testing/selftests) in the guest, with
//! results a CI can read, as `cargo xtask kunit` gives KUnit's.
//!
//! The TARGETs are built in the builder against the kernel's own headers, linked statically
//! (`build.rs`), and installed with run_kselftest.sh; the install folder is an initramfs layer
//! booted after the busybox initramfs. The test kernel is a variant of a small config (`fast`
//! by default) with the `kselftest` option set: the lines of each target's `config` file (what
//! the kernel's selftests say they need). In the guest, busybox's sh runs run_kselftest.sh; its
//! TAP is parsed with KUnit's parser and grouped into a suite per target (`results.rs`).

mod build;
mod results;

use crate::ctx::Ctx;
use crate::kernel::{Kernel, OptionSet};
use crate::kunit::{NOT_BUILT, config, ktap, report};
use crate::sources::{self, Package, Tree};
use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;
use std::io::Write;
use std::time::{Duration, Instant};

/// The `cargo xtask kselftest` flags.
#[derive(clap::Args)]
pub struct Options {
    /// The selftest targets to build and run: folders of tools/testing/selftests (`size`,
    /// `exec`, `timers`); docs/kselftest.md says which build and pass here.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// The kernel config the test kernel is a variant of (NAME-kselftest).
    #[arg(long, default_value = "fast")]
    pub kernel: String,
    #[command(flatten)]
    pub outputs: crate::kunit::Outputs,
    /// Seconds the boot and every test together may take; then qemu is killed, the running test
    /// is reported as timed out and the exit status is 124. 0: no limit. (Each test also has
    /// kselftest's own limit, 45 s or its target's `settings` file's.)
    #[arg(long, default_value_t = 900, value_parser = crate::cli::parse_seconds, allow_hyphen_values = true)]
    pub timeout: u64,
    #[command(flatten)]
    pub guest: crate::qemu::Resources,
}

/// What the guest runs: the tests of every target installed, as kselftest's docs run them.
const COMMAND: &str = "cd /kselftest && ./run_kselftest.sh";

/// Builds the test kernel and the tests, boots, runs them, reports; returns the exit status.
pub fn run(ctx: &Ctx, opts: &Options) -> Result<i32> {
    crate::qemu::preflight(ctx.arch, false)?;
    opts.targets.iter().try_for_each(|t| results::check_target(t))?;
    crate::kernel::check_name(ctx, &opts.kernel)?;
    let outputs = opts.outputs.absolute()?;
    let start = Instant::now();
    let tree = sources::fetch(ctx, Package::Linux)?;
    let lines = options(&tree, &opts.targets)?;
    let built = (|| -> Result<(Kernel, Utf8PathBuf)> {
        let kernel = crate::kernel::variant(ctx, &opts.kernel, &[OptionSet::new("kselftest", lines)], false)?;
        let layer = build::layer(ctx, &tree, &opts.targets, kernel.initramfs)?;
        let initrd = kernel.initrd_with(ctx, "kselftest", &layer)?;
        Ok((kernel, initrd))
    })();
    let (kernel, initrd) = match built {
        Ok(built) => built,
        Err(e) if crate::dry::is_stop(&e) => return Err(e),
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("(exit status {NOT_BUILT}: the test kernel or the tests did not build, nothing ran)");
            return Ok(NOT_BUILT);
        }
    };
    let build_s = start.elapsed().as_secs_f64();
    let timeout = (opts.timeout > 0).then(|| Duration::from_secs(opts.timeout));
    let (text, run_s, timed_out) = boot(ctx, &kernel, &initrd, &opts.guest, timeout)?;
    let end = if timed_out { ktap::End::TimedOut } else { ktap::End::Finished };
    let report = results::group(ktap::parse(&text, end));
    if !report.found && !timed_out {
        let lines: Vec<&str> = text.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(10)..].iter().map(|l| format!("  | {l}")).collect();
        anyhow::bail!("no TAP in the output of `{COMMAND}`; its last lines:\n{}", tail.join("\n"));
    }
    let facts = report::Run {
        tool: "kselftest",
        arch: ctx.arch.name,
        config: kernel.config.clone(),
        base: opts.kernel.clone(),
        release: kernel.release.clone(),
        selection: [("targets", opts.targets.clone())].into(),
        build_s,
        run_s,
        timed_out,
    };
    crate::kunit::finish(&facts, &report, &outputs)
}

/// The `kselftest` option set: the lines of each target's `config` file, merged (a symbol two
/// targets set differently is an error naming both lines). A target must be a folder of the
/// tree's selftests with a Makefile.
fn options(tree: &Tree, targets: &[String]) -> Result<Vec<String>> {
    let mut fragments = Vec::new();
    for t in targets {
        let dir = tree.dir.join(build::SELFTESTS).join(t);
        anyhow::ensure!(dir.join("Makefile").is_file(), "no selftest target `{t}`: {dir} has no Makefile");
        let path = dir.join("config");
        if path.is_file() {
            fragments.push(config::read(&path).with_context(|| format!("target {t}"))?);
        }
    }
    config::merge(&fragments)
}

/// Boots with the tests and runs them: their output, seconds from qemu start, timed out.
fn boot(
    ctx: &Ctx,
    kernel: &Kernel,
    initrd: &Utf8Path,
    guest: &crate::qemu::Resources,
    timeout: Option<Duration>,
) -> Result<(String, f64, bool)> {
    let argv = crate::qemu::boot_argv(kernel, Some(initrd), false, &resources(guest, initrd)?, &[], &[]);
    eprintln!("$ {}", crate::runner::display(&argv));
    let logs = ctx.build.join("logs");
    fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("kselftest-{}.log", ctx.arch.name));
    let mut log = std::io::LineWriter::new(fs::File::create(&log_path)?);
    eprintln!("  (output: {log_path})");
    let started = Instant::now();
    let (mut text, mut line) = (String::new(), String::new());
    let result = crate::qemu::Guest::boot(&argv, timeout).and_then(|(mut guest, _)| {
        eprintln!("$ {COMMAND}  (in the guest)");
        guest.run_with(&[COMMAND.to_owned()], &mut |piece| {
            text.push_str(piece);
            log.write_all(piece.as_bytes()).with_context(|| format!("writing {log_path}"))?;
            // The results as they come (a test's own lines are `# `), or everything with -v.
            line.push_str(piece);
            while let Some(i) = line.find('\n') {
                let l: String = line.drain(..=i).collect();
                let l = l.trim_end();
                if ctx.verbose || l.starts_with("ok ") || l.starts_with("not ok ") {
                    eprintln!("  | {l}");
                }
            }
            Ok(())
        })
    });
    let timed_out = match result {
        Ok(_) => false,
        Err(e) if e.downcast_ref::<crate::qemu::TimedOut>().is_some() => {
            eprintln!("error: {e:#}\n(--timeout bounds the boot and every test; 0 for none)");
            true
        }
        // The kernel panicked or qemu ended while a test ran: the parser reports it as crashed.
        Err(e) if !text.is_empty() => {
            eprintln!("error: {e:#}");
            false
        }
        Err(e) => return Err(e),
    };
    Ok((text, started.elapsed().as_secs_f64(), timed_out))
}

/// `--cpus` and `--memory`; without `--memory`, enough for the tests' initramfs (`memory_mib`).
fn resources(guest: &crate::qemu::Resources, initrd: &Utf8Path) -> Result<crate::qemu::Resources> {
    let memory = match &guest.memory {
        Some(m) => m.clone(),
        None => format!("{}M", memory_mib(fs::metadata(initrd)?.len())),
    };
    Ok(crate::qemu::Resources { memory: Some(memory), ..guest.clone() })
}

/// The guest's memory for an initramfs of `bytes`: the archive, its unpacked files (the tests
/// are built with debug info: 23 targets are 68 MB) and the tests' own, with room to spare;
/// qemu's default, 128 MiB, panics at boot ("System is deadlocked on memory") from about 60 MB.
fn memory_mib(bytes: u64) -> u64 {
    256 + 3 * bytes.div_ceil(1 << 20)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_guest_gets_three_times_the_archive_and_256_mib() {
        assert_eq!(super::memory_mib(0), 256);
        assert_eq!(super::memory_mib(4_025_268), 256 + 12);
        assert_eq!(super::memory_mib(67_763_796), 256 + 195);
    }
}
