//! `cargo xtask`: builds a tiny Linux (kernel + static busybox initramfs) and boots it in qemu.

mod arch;
mod bench;
mod builder;
mod busybox;
mod ccache;
mod cli;
mod clock;
mod ctx;
mod disk;
mod distcc;
mod dry;
mod elf;
mod engine;
mod gdb;
mod initramfs;
mod kconfig;
mod kernel;
mod kselftest;
mod kunit;
mod lock;
mod prebuilt;
mod prepare;
mod proc;
mod qemu;
mod runner;
mod shell;
mod sources;
mod stamp;
mod step;
mod toolchain;

use anyhow::Result;
use camino::Utf8PathBuf;
use clap::{CommandFactory, Parser, Subcommand};
use ctx::Ctx;
use runner::RunnerKind;

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options (before or after the command)";

/// Build a tiny Linux system (kernel + static busybox in an initramfs) and boot it in qemu.
///
/// Every `make` runs with an out-of-tree `O=` folder under build/ inside a Docker builder image.
#[derive(Parser)]
#[command(bin_name = "cargo xtask", arg_required_else_help = true)]
struct Cli {
    /// Where build steps run.
    #[arg(long, global = true, env = "TEENY_RUNNER", default_value = "docker", help_heading = GLOBAL)]
    runner: RunnerKind,
    // Its help names the arches of the table: arch::help().
    #[arg(long, global = true, env = "TEENY_ARCH", value_parser = parse_arch, help = arch::help(), help_heading = GLOBAL)]
    arch: Option<&'static arch::Arch>,
    /// Parallel make jobs [default: number of CPUs].
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = GLOBAL)]
    jobs: Option<u32>,
    /// Stream every build step's full output (by default it goes to a log under build/logs/).
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    verbose: bool,
    /// Print the commands that would run (each build step, its docker/podman line, qemu's) and
    /// run none; write nothing under the build folder. What is up to date says so.
    #[arg(long, global = true, help_heading = GLOBAL)]
    dry_run: bool,
    /// Folder for every build output [default: build/ in the repository].
    #[arg(long, global = true, env = "TEENY_BUILD_DIR", help_heading = GLOBAL)]
    build_dir: Option<Utf8PathBuf>,
    /// Use this kernel tarball or source tree instead of the pinned download; several,
    /// comma-separated, for --kernel-version to pick from (the first is the default).
    #[arg(long, global = true, env = "TEENY_KERNEL_SOURCE", value_name = "PATH[,PATH…]", value_delimiter = ',', help_heading = GLOBAL)]
    kernel_source: Vec<Utf8PathBuf>,
    /// Build this kernel version (`6.12` or `6.12.16`): a `linux` pin of sources.txt, or one
    /// of --kernel-source's, by the version in its name [default: the first].
    #[arg(long, global = true, env = "TEENY_KERNEL_VERSION", help_heading = GLOBAL)]
    kernel_version: Option<String>,
    /// The kernel's compiler: gcc, or clang (LLVM=1, with lld and the llvm tools); busybox
    /// is built with gcc either way.
    #[arg(long, global = true, env = "TEENY_TOOLCHAIN", value_enum, default_value_t, help_heading = GLOBAL)]
    toolchain: toolchain::Toolchain,
    /// Use this busybox tarball or source tree instead of the pinned download.
    #[arg(long, global = true, env = "TEENY_BUSYBOX_SOURCE", help_heading = GLOBAL)]
    busybox_source: Option<Utf8PathBuf>,
    /// Folder of kernel config files for the chosen architecture [default: kernel-configs/ARCH/ in the repository].
    #[arg(long, global = true, env = "TEENY_KERNEL_CONFIGS", help_heading = GLOBAL)]
    kernel_configs: Option<Utf8PathBuf>,
    /// The compiler cache folder [default: ccache/ in the build folder].
    #[arg(long, global = true, env = "TEENY_CCACHE_DIR", help_heading = GLOBAL)]
    ccache_dir: Option<Utf8PathBuf>,
    /// Compile without ccache.
    #[arg(long, global = true, help_heading = GLOBAL)]
    no_ccache: bool,
    /// Send kernel and busybox compiles to these distcc workers (`cargo xtask distcc serve` on
    /// each), comma-separated; JOBS defaults to 4. Workers with another builder image are dropped.
    #[arg(long, global = true, env = "TEENY_DISTCC_HOSTS", value_name = "HOST[:PORT][/JOBS],…", value_delimiter = ',', value_parser = parse_distcc, help_heading = GLOBAL)]
    distcc: Vec<distcc::Worker>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the builder image from docker/Dockerfile (skipped when it is up to date).
    Builder,
    /// Download, verify and unpack the kernel and busybox sources into build/src/.
    Fetch,
    /// Build the static busybox (defconfig + busybox-configs/busybox.config) in build/obj/busybox-ARCH.
    Busybox {
        /// Run busybox's menuconfig first and save the changes to busybox-configs/.
        #[arg(long)]
        edit: bool,
    },
    /// Pack build/initramfs-busybox-ARCH.cpio.gz from busybox and rootfs/ (builds busybox if needed).
    Initramfs {
        /// gzip (-9, as the walk-through) or none (writes build/initramfs-busybox-ARCH.cpio).
        #[arg(long, value_enum, default_value_t)]
        compression: initramfs::Compression,
    },
    /// Configure, verify and build the kernel from kernel-configs/ARCH/NAME.config in build/obj/linux-ARCH-NAME.
    Kernel(kernel::Options),
    /// Boot the kernel and initramfs in qemu (builds what is missing); with `-- CMD…`, run CMD headless.
    ///
    /// Without a command the terminal is the guest's serial console (Ctrl-a x quits). With one,
    /// qemu boots headless, CMD runs in the guest shell, and its exit status is ours; 125 if the
    /// kernel or initramfs failed to build (`git bisect run` skips such a commit).
    Qemu(qemu::Options),
    /// Run the kernel's KUnit tests in the guest and report them (as kunit.py run does).
    ///
    /// Builds the config's `-kunit` variant (CONFIG_KUNIT=y plus the .kunitconfig lines), boots
    /// it headless until KUnit shuts it down, parses the KTAP results, prints a summary and
    /// writes --json/--junit. Exit status: 0 all passed, 1 a test failed or crashed, 124 timed
    /// out, 125 the kernel did not build.
    Kunit(kunit::Options),
    /// Build the kernel's selftests (tools/testing/selftests TARGETs), run them in the guest and
    /// report them.
    ///
    /// Builds the TARGETs statically against the kernel's headers and the config's `-kselftest`
    /// variant (the targets' `config` lines), boots it headless with the tests as an initramfs
    /// layer, runs run_kselftest.sh, parses its TAP, prints a summary and writes --json/--junit.
    /// Exit status: 0 all passed or skipped, 1 a test failed, 124 timed out, 125 the kernel or the
    /// tests did not build.
    Kselftest(kselftest::Options),
    /// Run gdb (from the builder image) on the kernel that `cargo xtask qemu --gdb` boots.
    ///
    /// Loads its vmlinux and the kernel's `lx-` helpers (lx-dmesg, lx-ps, lx-version, …) and
    /// attaches to qemu's stub; arguments after `--` go to gdb (`-- -batch -ex 'hbreak start_kernel' -ex c -ex bt`).
    Gdb {
        /// Arguments for gdb, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Measure sizes and boot times of kernel configs (the walk-through's table) and draw charts.
    ///
    /// Boots each config --runs times headless; prints a Markdown table beside the walk-through's
    /// published numbers, writes bench.svg, bench.md and bench.json into a folder of this run's
    /// (build/bench/YYYYMMDD-HHMMSS; build/bench/latest links to the newest), and compares the
    /// initramfs packer with `find | cpio -o -H newc | gzip -9`. Exits non-zero if a config
    /// fails, keeping the other rows.
    Bench(bench::Options),
    /// Run, stop or list distcc workers: this machine compiling for `--distcc` builds elsewhere.
    Distcc {
        #[command(subcommand)]
        action: distcc::Action,
    },
    /// Remove build outputs (everything under the build folder; downloads and ccache stay unless --all).
    Clean {
        /// Also remove the download cache and the compiler cache under the build folder.
        #[arg(long)]
        all: bool,
    },
}

fn main() {
    if let Err(e) = try_main() {
        // A dry run that printed what it could: not a failure.
        if let Some(stop) = dry::stop(&e) {
            eprintln!("{stop}");
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Parses the command line. An option given to the wrong command gets one line naming the
/// commands that take it, instead of clap's nearest-spelling guess.
fn parse() -> Cli {
    let err = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(err) => err,
    };
    if err.kind() == clap::error::ErrorKind::UnknownArgument
        && let Some(clap::error::ContextValue::String(arg)) = err.get(clap::error::ContextKind::InvalidArg)
        && let Some(hint) = cli::misplaced_option(&Cli::command(), arg)
            .or_else(|| cli::forgotten_dashes(arg, &std::env::args().collect::<Vec<_>>()))
    {
        eprintln!("error: {hint}");
        std::process::exit(2);
    }
    if matches!(err.kind(), clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue)
        && let Some(line) = cli::from_environment(&Cli::command(), &err).or_else(|| cli::invalid_value(&err))
    {
        eprintln!("error: {line}");
        std::process::exit(2);
    }
    err.exit()
}

/// clap wants a std error: anyhow's, as text.
fn parse_arch(name: &str) -> Result<&'static arch::Arch, String> {
    arch::parse(name).map_err(|e| e.to_string())
}

fn parse_distcc(spec: &str) -> Result<distcc::Worker, String> {
    distcc::parse_worker(spec).map_err(|e| e.to_string())
}

/// `ARCH/NAME` for a kernel config, as `bench` takes it: the arch it names, and NAME. It must
/// agree with `--arch` when both are given.
fn split_config(spec: &str, arch: Option<&'static arch::Arch>) -> Result<(Option<&'static arch::Arch>, String)> {
    let Some((a, name)) = spec.split_once('/') else { return Ok((arch, spec.to_owned())) };
    let named = arch::parse(a)?;
    if let Some(given) = arch.filter(|g| *g != named) {
        anyhow::bail!("`{spec}` is a config of {}, but --arch says {}: give one of them", named.name, given.name);
    }
    Ok((Some(named), name.to_owned()))
}

/// The kernel source of `--kernel-source` and `--kernel-version`.
fn kernel_source(local: Vec<Utf8PathBuf>, wanted: Option<&str>) -> Result<ctx::KernelChoice> {
    let local: Vec<Utf8PathBuf> =
        local.into_iter().filter(|p| !p.as_str().is_empty()).map(ctx::absolute).collect::<Result<_>>()?;
    let pins = if local.is_empty() { sources::pins(&ctx::repo_root())? } else { Vec::new() };
    sources::kernel::choose(&pins, &local, wanted)
}

fn try_main() -> Result<()> {
    let mut cli = parse();
    // `qemu --kernel arm64/fast` and `kernel arm64/fast` set the arch, as bench's ARCH/NAME does.
    match &mut cli.command {
        Command::Qemu(qemu::Options { kernel: name, .. })
        | Command::Kernel(kernel::Options { name: Some(name), .. }) => {
            let (arch, plain) = split_config(name, cli.arch)?;
            (cli.arch, *name) = (arch, plain);
        }
        _ => {}
    }
    runner::stop_steps_on_signals()?;
    let jobs = cli.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let ctx = Ctx::new(ctx::Settings {
        arch: cli.arch.map_or_else(arch::host, Ok)?,
        build: cli.build_dir,
        jobs,
        runner: cli.runner,
        kernel: kernel_source(cli.kernel_source, cli.kernel_version.as_deref())?,
        toolchain: cli.toolchain,
        busybox_source: cli.busybox_source,
        kernel_configs: cli.kernel_configs,
        ccache_dir: cli.ccache_dir,
        no_ccache: cli.no_ccache,
        distcc: cli.distcc,
        verbose: cli.verbose,
        dry_run: cli.dry_run,
        command: cli::command_words(&Cli::command(), &std::env::args().skip(1).collect::<Vec<_>>()),
    })?;
    // Before anything is written: a build folder make cannot use gets no lock file either.
    prepare::check_paths(&ctx)?;
    if ctx.dry_run && matches!(cli.command, Command::Gdb { .. } | Command::Distcc { .. }) {
        anyhow::bail!("--dry-run is for the commands that build or boot: not for `gdb` or `distcc`");
    }
    match cli.command {
        Command::Builder => {
            prepare::runner(&ctx)?;
        }
        Command::Fetch => {
            for package in [sources::Package::Busybox, sources::Package::Linux] {
                match sources::fetch(&ctx, package) {
                    Ok(tree) => println!("{} {}", tree.version, tree.dir),
                    // A dry run goes on with the other package.
                    Err(ref e) if let Some(stop) = dry::stop(e) => eprintln!("{stop}"),
                    Err(e) => return Err(e),
                }
            }
        }
        Command::Busybox { edit } => {
            busybox::build(&ctx, edit)?;
        }
        Command::Initramfs { compression } => {
            initramfs::build(&ctx, compression)?;
        }
        Command::Kernel(opts) => kernel::command(&ctx, &opts)?,
        Command::Qemu(opts) => std::process::exit(qemu::run(&ctx, &opts)?),
        Command::Bench(opts) => bench::run(&ctx, &opts)?,
        Command::Kunit(opts) => std::process::exit(kunit::run(&ctx, &opts)?),
        Command::Kselftest(opts) => std::process::exit(kselftest::run(&ctx, &opts)?),
        Command::Gdb { args } => gdb::run(&ctx, &args)?,
        Command::Distcc { action } => distcc::run(&ctx, action)?,
        Command::Clean { all } => ctx::clean(&ctx, all)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_option_of_another_command_names_that_command() {
        let hint = cli::misplaced_option(&Cli::command(), "--kvm").unwrap();
        assert!(hint.contains("`cargo xtask qemu --kvm`") && hint.contains("`cargo xtask bench --kvm`"), "{hint}");
        assert!(
            cli::misplaced_option(&Cli::command(), "--kernel=fast").unwrap().contains("`cargo xtask qemu --kernel`")
        );
        assert_eq!(cli::misplaced_option(&Cli::command(), "--no-such-flag"), None);
        assert_eq!(cli::misplaced_option(&Cli::command(), "-x"), None);
    }

    #[test]
    fn the_command_words_are_the_command_line_without_the_global_options() {
        let words = |line: &str| {
            let args: Vec<String> = line.split(' ').map(String::from).collect();
            cli::command_words(&Cli::command(), &args).join(" ")
        };
        assert_eq!(words("--arch arm64 -j 4 kunit --kernel fast -v"), "kunit --kernel fast");
        assert_eq!(words("kunit --arch=riscv64 -j4 --no-ccache --kernel=fast"), "kunit --kernel=fast");
        assert_eq!(words("--distcc a,b qemu --share /x -- --arch x"), "qemu --share /x -- --arch x");
        assert_eq!(words("--build-dir /b kernel --arch arm64 fast"), "kernel fast");
    }

    #[test]
    fn a_config_may_name_its_arch() {
        let arm64 = arch::parse("arm64").unwrap();
        assert_eq!(split_config("arm64/fast", None).unwrap(), (Some(arm64), "fast".to_owned()));
        assert_eq!(split_config("fast", Some(arm64)).unwrap(), (Some(arm64), "fast".to_owned()));
        assert_eq!(split_config("aarch64/fast", Some(arm64)).unwrap().1, "fast");
        let err = split_config("arm64/fast", Some(arch::parse("riscv64").unwrap())).unwrap_err().to_string();
        assert!(err.contains("is a config of arm64, but --arch says riscv64"), "{err}");
        assert!(split_config("sparc/fast", None).is_err());
    }

    #[test]
    fn jobs_and_seconds_are_checked() {
        assert!(Cli::try_parse_from(["x", "-j", "0", "fetch"]).is_err());
        assert!(Cli::try_parse_from(["x", "-j", "2", "fetch"]).is_ok());
        let err = Cli::try_parse_from(["x", "qemu", "--timeout", "-1"]).err().unwrap().to_string();
        assert!(err.contains("seconds as a whole number, 0 or more, not `-1`") && !err.contains("'-- -1'"), "{err}");
        assert!(
            Cli::try_parse_from(["x", "distcc", "serve", "--port", "65535"]).is_err(),
            "its statistics port overflows"
        );
        assert!(Cli::try_parse_from(["x", "distcc", "serve", "--port", "65534"]).is_ok());
    }

    #[test]
    fn a_value_not_in_the_list_is_one_line_naming_the_list() {
        let err = Cli::try_parse_from(["x", "--toolchain", "icc", "fetch"]).err().unwrap();
        let line = cli::invalid_value(&err).unwrap();
        assert_eq!(line, "invalid value `icc` for --toolchain: choose one of gcc, clang");
        let err = Cli::try_parse_from(["x", "kernel", "fast", "--edit", "vi"]).err().unwrap();
        assert_eq!(
            cli::invalid_value(&err).unwrap(),
            "invalid value `vi` for --edit: choose one of menuconfig, nconfig"
        );
        assert!(Cli::try_parse_from(["x", "--toolchain", "clang", "fetch"]).is_ok());
        // --arch's parser says it in its own words already.
        assert_eq!(cli::invalid_value(&Cli::try_parse_from(["x", "--arch", "sparc", "fetch"]).err().unwrap()), None);
    }

    #[test]
    fn global_options_have_their_own_heading() {
        let help = Cli::command().render_help().to_string();
        let global = help.find(GLOBAL).expect("global heading");
        assert!(help[global..].contains("--build-dir") && help[global..].contains("--no-ccache"), "{help}");
        assert!(help.starts_with("Build a tiny Linux system"), "the about text: {help}");
    }
}
