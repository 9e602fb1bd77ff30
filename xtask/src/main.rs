//! `cargo xtask`: builds a tiny Linux (kernel + static busybox initramfs) and boots it in qemu.

mod arch;
mod bench;
mod builder;
mod busybox;
mod ccache;
mod ctx;
mod disk;
mod distcc;
mod elf;
mod engine;
mod gdb;
mod initramfs;
mod kconfig;
mod kernel;
mod lock;
mod prepare;
mod proc;
mod qemu;
mod runner;
mod sources;
mod stamp;
mod step;

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
    /// The architecture to build and boot (x86_64, arm64, riscv64; also amd64, aarch64, riscv)
    /// [default: the host's].
    #[arg(long, global = true, env = "TEENY_ARCH", value_parser = parse_arch, help_heading = GLOBAL)]
    arch: Option<&'static arch::Arch>,
    /// Parallel make jobs [default: number of CPUs].
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = GLOBAL)]
    jobs: Option<u32>,
    /// Stream every build step's full output (by default it goes to a log under build/logs/).
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    verbose: bool,
    /// Folder for every build output [default: build/ in the repository].
    #[arg(long, global = true, env = "TEENY_BUILD_DIR", help_heading = GLOBAL)]
    build_dir: Option<Utf8PathBuf>,
    /// Use this kernel tarball or source tree instead of the pinned download.
    #[arg(long, global = true, env = "TEENY_KERNEL_SOURCE", help_heading = GLOBAL)]
    kernel_source: Option<Utf8PathBuf>,
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
    Kernel {
        /// The config to build (see --list); ARCH/NAME sets --arch too.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the configs with their base targets and descriptions.
        #[arg(long, conflicts_with_all = ["configure", "edit", "save"])]
        list: bool,
        /// Configure and verify only; do not build.
        #[arg(long, conflicts_with_all = ["edit", "save"])]
        configure: bool,
        /// Run a configurator in the builder, then save the changes as kernel-configs/ARCH/NAME.config.
        #[arg(long, num_args = 0..=1, default_missing_value = "menuconfig", conflicts_with = "save")]
        edit: Option<kernel::Configurator>,
        /// Save the current .config of build/obj/linux-ARCH-NAME (after hand edits) as kernel-configs/ARCH/NAME.config.
        #[arg(long)]
        save: bool,
    },
    /// Boot the kernel and initramfs in qemu (builds what is missing); with `-- CMD…`, run CMD headless.
    ///
    /// Without a command the terminal is the guest's serial console (Ctrl-a x quits). With one,
    /// qemu boots headless, CMD runs in the guest shell, and its exit status is ours; 125 if the
    /// kernel or initramfs failed to build (`git bisect run` skips such a commit).
    Qemu {
        /// The kernel config to boot (see `cargo xtask kernel --list`); ARCH/NAME sets --arch too.
        #[arg(long, default_value = "allnoconfig")]
        kernel: String,
        /// Boot this initrd instead of build/initramfs-busybox-ARCH.cpio[.gz] (as the config says).
        #[arg(long)]
        initrd: Option<Utf8PathBuf>,
        /// Use KVM (-enable-kvm); fails if /dev/kvm is missing or not usable by you.
        #[arg(long)]
        kvm: bool,
        /// Boot the kernel and initramfs already built, without checking or building anything.
        #[arg(long)]
        no_build: bool,
        /// Extra kernel command line arguments (after console=ttyS0 or the arch's console, panic=-1).
        #[arg(long, allow_hyphen_values = true)]
        append: Vec<String>,
        /// Extra qemu arguments, split at spaces (e.g. --qemu-args "-m 512M -smp 2").
        #[arg(long, allow_hyphen_values = true)]
        qemu_args: Option<String>,
        /// Mount host folder DIR in the guest over virtio-9p, at GUEST_PATH (default: the same
        /// absolute path), read-only with `:ro`; repeatable. Boots the config's `-share` variant
        /// (9p and virtio added); the shell starts in the current folder when it is shared.
        #[arg(long, value_name = "DIR[:GUEST_PATH][:ro]", value_parser = parse_share)]
        share: Vec<qemu::share::Share>,
        /// Debug the kernel: boot the config's `-debug` variant (DWARF, gdb scripts, frame
        /// pointers) halted with `nokaslr`, qemu's gdb stub on build/gdb-ARCH.sock; attach
        /// with `cargo xtask gdb`. Boots to the console (no command).
        #[arg(long)]
        gdb: bool,
        /// Seconds the headless run may take, boot and command together; then qemu is killed and
        /// the exit status is 124, as timeout(1) gives. 0: no limit.
        #[arg(long, default_value_t = 300, value_parser = parse_seconds, allow_hyphen_values = true)]
        timeout: u64,
        /// Command to run in the guest shell, after `--`. One argument is a shell command line
        /// (`-- 'dmesg | head -3'`); several are words passed as they are (`-- cat /proc/cmdline`).
        #[arg(last = true)]
        command: Vec<String>,
    },
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
    Bench {
        /// Comma-separated kernel configs to measure: NAME for --arch's, ARCH/NAME for another's
        /// (`x86_64/fast,arm64/fast,riscv64/fast` gives one table across arches).
        #[arg(long, value_delimiter = ',', default_value = "defconfig,alldefconfig,allnoconfig")]
        configs: Vec<String>,
        /// Boots per config (medians and min/max are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Boot with KVM (fails if /dev/kvm is not usable).
        #[arg(long)]
        kvm: bool,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<Utf8PathBuf>,
        /// Boot this config (NAME or ARCH/NAME) once more with initcall_debug and timestamps, and
        /// draw the boot's phases from qemu start to the prompt: bootgraph-ARCH-NAME.svg in the run's folder
        /// (measured as a row too, if --configs lacks it).
        #[arg(long, value_name = "CONFIG")]
        bootgraph: Option<String>,
        /// Like --bootgraph, and sample the guest's program counter through qemu's monitor during
        /// that boot: the top functions per phase, profile-ARCH-NAME.svg in the run's folder.
        #[arg(long, value_name = "CONFIG")]
        profile: Option<String>,
        /// Seconds to wait for each boot to reach the shell.
        #[arg(long, default_value_t = 120, value_parser = parse_seconds, allow_hyphen_values = true)]
        timeout: u64,
    },
    /// Run, stop or list distcc workers: this machine compiling for `--distcc` builds elsewhere.
    Distcc {
        #[command(subcommand)]
        action: DistccCommand,
    },
    /// Remove build outputs (everything under the build folder; downloads and ccache stay unless --all).
    Clean {
        /// Also remove the download cache and the compiler cache under the build folder.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum DistccCommand {
    /// Start distccd from the builder image in a detached container (teeny-distcc-PORT), with
    /// as many slots as --jobs; its statistics answer on PORT + 1.
    Serve {
        /// Address to listen on (0.0.0.0: every interface).
        #[arg(long, default_value = "127.0.0.1")]
        listen: String,
        /// Port to listen on (its statistics on the next one).
        #[arg(long, default_value_t = distcc::DEFAULT_PORT, value_parser = clap::value_parser!(u16).range(1..65535))]
        port: u16,
        /// Clients allowed to send compiles, as ADDRESS or ADDRESS/BITS; repeatable. Only your
        /// own network: distccd compiles whatever an allowed address sends it.
        #[arg(long, value_name = "CIDR", default_value = "127.0.0.1/32")]
        allow: Vec<String>,
    },
    /// Stop the workers on this machine (all, or the one on --port).
    Stop {
        /// The worker's port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// List the workers on this machine and ask each (or each of --distcc) for its builder image.
    Status,
}

fn main() {
    if let Err(e) = try_main() {
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
        && let Some(hint) =
            misplaced_option(arg).or_else(|| forgotten_dashes(arg, &std::env::args().collect::<Vec<_>>()))
    {
        eprintln!("error: {hint}");
        std::process::exit(2);
    }
    if matches!(err.kind(), clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue)
        && let Some(line) = from_environment(&err)
    {
        eprintln!("error: {line}");
        std::process::exit(2);
    }
    err.exit()
}

/// Whole seconds; a negative number is a value here, not an option (clap would suggest `-- -1`).
fn parse_seconds(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("seconds as a whole number, 0 or more, not `{s}`"))
}

/// The environment variable behind an invalid value, when it came from there: clap names only
/// the option (`--arch`) although the user never typed it.
fn from_environment(err: &clap::Error) -> Option<String> {
    let Some(clap::error::ContextValue::String(arg)) = err.get(clap::error::ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let cmd = Cli::command();
    let opt = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let var = opt.get_env()?.to_str()?;
    let value = std::env::var(var).ok()?;
    let typed = std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    if typed {
        return None;
    }
    let why = err.to_string();
    let why = why.lines().next().unwrap_or("").rsplit_once("': ").map_or(why.as_str(), |(_, w)| w).to_owned();
    Some(format!("{var}={value} (from the environment, for --{long}): {why}"))
}

/// clap wants a std error: anyhow's, as text.
fn parse_arch(name: &str) -> Result<&'static arch::Arch, String> {
    arch::parse(name).map_err(|e| e.to_string())
}

fn parse_distcc(spec: &str) -> Result<distcc::Worker, String> {
    distcc::parse_worker(spec).map_err(|e| e.to_string())
}

fn parse_share(spec: &str) -> Result<qemu::share::Share, String> {
    // clap names the option itself.
    qemu::share::parse(spec).map_err(|e| format!("{e:#}").trim_start_matches(&format!("--share {spec}: ")).to_owned())
}

/// A guest command typed without `--` (`qemu --kernel fast uname -r`): say where it goes.
fn forgotten_dashes(arg: &str, args: &[String]) -> Option<String> {
    if arg.starts_with('-') || !args.iter().any(|a| a == "qemu") || args.iter().any(|a| a == "--") {
        return None;
    }
    let at = args.iter().position(|a| a == arg)?;
    let fixed: Vec<&str> =
        args[1..at].iter().map(String::as_str).chain(["--"]).chain(args[at..].iter().map(String::as_str)).collect();
    Some(format!(
        "`{arg}` is not an option of cargo xtask qemu: a command for the guest goes after `--` (`cargo xtask {}`)",
        fixed.join(" ")
    ))
}

/// `--kvm is an option of `cargo xtask qemu --kvm` and …`, if some command takes `arg`.
fn misplaced_option(arg: &str) -> Option<String> {
    let long = arg.split('=').next()?.strip_prefix("--")?;
    let owners: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
        .map(|c| format!("`cargo xtask {} --{long}`", c.get_name()))
        .collect();
    (!owners.is_empty())
        .then(|| format!("--{long} is an option of {}: put it after the command's name", owners.join(" and ")))
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

fn try_main() -> Result<()> {
    let mut cli = parse();
    // `qemu --kernel arm64/fast` and `kernel arm64/fast` set the arch, as bench's ARCH/NAME does.
    match &mut cli.command {
        Command::Qemu { kernel: name, .. } | Command::Kernel { name: Some(name), .. } => {
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
        kernel_source: cli.kernel_source,
        busybox_source: cli.busybox_source,
        kernel_configs: cli.kernel_configs,
        ccache_dir: cli.ccache_dir,
        no_ccache: cli.no_ccache,
        distcc: cli.distcc,
        verbose: cli.verbose,
    })?;
    // Before anything is written: a build folder make cannot use gets no lock file either.
    prepare::check_paths(&ctx)?;
    match cli.command {
        Command::Builder => {
            prepare::runner(&ctx)?;
        }
        Command::Fetch => {
            for package in [sources::Package::Busybox, sources::Package::Linux] {
                let tree = sources::fetch(&ctx, package)?;
                println!("{} {}", tree.version, tree.dir);
            }
        }
        Command::Busybox { edit } => {
            busybox::build(&ctx, edit)?;
        }
        Command::Initramfs { compression } => {
            initramfs::build(&ctx, compression)?;
        }
        Command::Kernel { list: true, .. } => kernel::list(&ctx)?,
        Command::Kernel { name, configure, edit, save, .. } => {
            let action = match (configure, edit, save) {
                (true, _, _) => kernel::Action::Configure,
                (_, Some(tool), _) => kernel::Action::Edit(tool),
                (_, _, true) => kernel::Action::Save,
                _ => kernel::Action::Build,
            };
            kernel::run(&ctx, &name.expect("clap requires NAME"), action)?;
        }
        Command::Qemu { kernel, no_build, initrd, kvm, append, qemu_args, share, gdb, timeout, command } => {
            let qemu_args = qemu_args.unwrap_or_default().split_whitespace().map(String::from).collect();
            let initrd = initrd.map(ctx::absolute).transpose()?;
            let opts = qemu::Options {
                kernel,
                no_build,
                initrd,
                kvm,
                append,
                qemu_args,
                timeout: (timeout > 0).then(|| std::time::Duration::from_secs(timeout)),
                command,
                share,
                gdb,
            };
            let code = qemu::run(&ctx, &opts)?;
            std::process::exit(code);
        }
        Command::Bench { configs, runs, kvm, json, bootgraph, profile, timeout } => {
            let json = json.map(ctx::absolute).transpose()?;
            let timeout = std::time::Duration::from_secs(timeout);
            bench::run(&ctx, &bench::Options { configs, runs, kvm, json, bootgraph, profile, timeout })?;
        }
        Command::Gdb { args } => gdb::run(&ctx, &args)?,
        Command::Distcc { action } => {
            let action = match action {
                DistccCommand::Serve { listen, port, allow } => {
                    distcc::Action::Serve(distcc::Serve { listen, port, allow, jobs: ctx.jobs })
                }
                DistccCommand::Stop { port } => distcc::Action::Stop { port },
                DistccCommand::Status => distcc::Action::Status,
            };
            distcc::run(&ctx, action)?;
        }
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
        let hint = misplaced_option("--kvm").unwrap();
        assert!(hint.contains("`cargo xtask qemu --kvm`") && hint.contains("`cargo xtask bench --kvm`"), "{hint}");
        assert!(misplaced_option("--kernel=fast").unwrap().contains("`cargo xtask qemu --kernel`"));
        assert_eq!(misplaced_option("--no-such-flag"), None);
        assert_eq!(misplaced_option("-x"), None);
    }

    #[test]
    fn a_guest_command_without_dashes_is_shown_with_them() {
        let args: Vec<String> = ["xtask", "qemu", "--kernel", "fast", "uname", "-r"].map(String::from).into();
        let hint = forgotten_dashes("uname", &args).unwrap();
        assert!(hint.contains("(`cargo xtask qemu --kernel fast -- uname -r`)"), "{hint}");
        assert_eq!(forgotten_dashes("--bogus", &args), None);
        let bench: Vec<String> = ["xtask", "bench", "x"].map(String::from).into();
        assert_eq!(forgotten_dashes("x", &bench), None);
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
    fn global_options_have_their_own_heading() {
        let help = Cli::command().render_help().to_string();
        let global = help.find(GLOBAL).expect("global heading");
        assert!(help[global..].contains("--build-dir") && help[global..].contains("--no-ccache"), "{help}");
        assert!(help.starts_with("Build a tiny Linux system"), "the about text: {help}");
    }
}
