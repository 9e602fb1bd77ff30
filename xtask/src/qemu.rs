//! Step 5: boot the kernel and the initramfs in qemu, on the terminal or headless.
//!
//! Headless, the serial console is a pipe: we wait for init's "Boot took" line and the shell
//! prompt, type one command wrapped in markers, stream its output and return its exit status.
//! In both modes qemu's stderr goes through us, so that its fatal errors (a failing KVM stops
//! the guest without ending qemu) end the run at once with their cause.

mod console;
mod kvm;
mod process;
mod protocol;
pub mod share;

pub use console::{Guest, Line, TimedOut};
pub use kvm::preflight;
use process::{Event, causes, failure, is_kvm, is_qemu_error, spawn};

use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::kernel::{Kernel, OptionSet};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

/// What to boot and how: the `cargo xtask qemu` flags.
#[derive(clap::Args)]
pub struct Options {
    /// The kernel config to boot (see `cargo xtask kernel --list`); ARCH/NAME sets --arch too.
    #[arg(long, default_value = "allnoconfig")]
    pub kernel: String,
    /// Boot this kernel file instead of a config's (a bzImage, Image or vmlinux built elsewhere,
    /// e.g. /boot/vmlinuz-RELEASE); its arch and release are read from it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "gdb"])]
    pub kernel_image: Option<Utf8PathBuf>,
    /// The modules of --kernel-image's kernel, for what the boot needs as modules (--share's 9p
    /// and virtio) [default: /lib/modules/RELEASE].
    #[arg(long, value_name = "DIR", requires = "kernel_image")]
    pub modules_dir: Option<Utf8PathBuf>,
    /// Boot this initrd instead of build/initramfs-busybox-ARCH.cpio[.gz] (as the config says).
    #[arg(long)]
    pub initrd: Option<Utf8PathBuf>,
    /// Use KVM (-enable-kvm); fails if /dev/kvm is missing or not usable by you.
    #[arg(long)]
    pub kvm: bool,
    /// Boot the kernel and initramfs already built, without checking or building anything.
    #[arg(long)]
    pub no_build: bool,
    /// Extra kernel command line arguments (after console= the arch's console and panic=-1).
    #[arg(long, allow_hyphen_values = true)]
    pub append: Vec<String>,
    /// Extra qemu arguments, split at spaces (e.g. --qemu-args "-m 512M -smp 2").
    #[arg(long, allow_hyphen_values = true)]
    pub qemu_args: Option<String>,
    /// Mount host folder DIR in the guest over virtio-9p, at GUEST_PATH (default: the same
    /// absolute path), read-only with `:ro`; repeatable. Boots the config's `-share` variant
    /// (9p and virtio added); the shell starts in the current folder when it is shared.
    #[arg(long, value_name = "DIR[:GUEST_PATH][:ro]", value_parser = share::parse_arg)]
    pub share: Vec<share::Share>,
    /// Debug the kernel: boot the config's `-debug` variant (DWARF, gdb scripts, frame
    /// pointers) halted with `nokaslr`, qemu's gdb stub on build/gdb-ARCH.sock; attach
    /// with `cargo xtask gdb`. Boots to the console (no command).
    #[arg(long)]
    pub gdb: bool,
    /// Seconds the headless run may take, boot and command together; then qemu is killed and
    /// the exit status is 124, as timeout(1) gives. 0: no limit.
    #[arg(long, default_value_t = 300, value_parser = crate::cli::parse_seconds, allow_hyphen_values = true)]
    pub timeout: u64,
    /// Command to run in the guest shell, after `--`. One argument is a shell command line
    /// (`-- 'dmesg | head -3'`); several are words passed as they are (`-- cat /proc/cmdline`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

impl Options {
    /// `--qemu-args`, split at spaces.
    fn qemu_args(&self) -> Vec<String> {
        self.qemu_args.as_deref().unwrap_or_default().split_whitespace().map(String::from).collect()
    }

    /// Bounds the whole headless run, boot and command; `None`: no bound (`--timeout 0`).
    fn timeout(&self) -> Option<Duration> {
        (self.timeout > 0).then(|| Duration::from_secs(self.timeout))
    }
}

/// Inputs of the qemu command line.
pub struct Machine<'a> {
    pub arch: &'a Arch,
    pub kernel: &'a Utf8Path,
    /// None: no initramfs (a kernel that ends by itself before init, as KUnit's does).
    pub initrd: Option<&'a Utf8Path>,
    pub kvm: bool,
    pub append: &'a [String],
    pub qemu_args: &'a [String],
}

/// The walk-through's boot line, with the arch's qemu, board and console. `panic=-1` and
/// `-no-reboot` turn a kernel panic into a prompt qemu exit instead of a reboot loop.
pub fn qemu_argv(m: &Machine) -> Vec<String> {
    let mut append = vec![format!("console={}", m.arch.console), "panic=-1".to_owned()];
    append.extend(m.append.iter().cloned());
    let mut argv: Vec<String> = [m.arch.qemu, "-kernel", m.kernel.as_str()].map(String::from).into();
    if let Some(initrd) = m.initrd {
        argv.extend(["-initrd".into(), initrd.to_string()]);
    }
    argv.push("-nographic".into());
    argv.extend(["-append".into(), append.join(" "), "-no-reboot".into()]);
    if m.kvm {
        argv.push("-enable-kvm".into());
    }
    // Before the caller's arguments, which can so pick another board or CPU.
    argv.extend(m.arch.machine_args(m.kvm));
    argv.extend(m.qemu_args.iter().cloned());
    argv
}

/// The command line for a built kernel: its config's own kernel and qemu arguments first, then
/// the caller's, which can so override them.
pub fn boot_argv(
    kernel: &Kernel,
    initrd: Option<&Utf8Path>,
    kvm: bool,
    append: &[String],
    qemu_args: &[String],
) -> Vec<String> {
    let append = [&kernel.append[..], append].concat();
    let qemu_args = [&kernel.qemu_args[..], qemu_args].concat();
    qemu_argv(&Machine {
        arch: kernel.arch,
        kernel: &kernel.image,
        initrd,
        kvm,
        append: &append,
        qemu_args: &qemu_args,
    })
}

/// A headless run's exit status when nothing could be built to boot: what `git bisect run`
/// takes as "cannot test this commit".
const NOT_RUN: i32 = 125;

/// `cargo xtask qemu`: builds what is missing, then boots; returns the exit code to exit with.
pub fn run(ctx: &Ctx, opts: &Options) -> Result<i32> {
    preflight(ctx.arch, opts.kvm)?;
    if opts.gdb && !opts.command.is_empty() {
        bail!(
            "--gdb halts the guest until gdb continues it, so it boots to the console, without a command: script gdb instead (`cargo xtask gdb -- -batch -ex …`)"
        );
    }
    let gdb_socket = opts.gdb.then(|| crate::gdb::socket(ctx)).transpose()?;
    if opts.gdb {
        crate::gdb::check_free(ctx)?;
    }
    // A typo is the user's error (1), not a commit that does not build (125).
    if opts.kernel_image.is_none() {
        crate::kernel::check_name(ctx, &opts.kernel)?;
    }
    // A file that is no kernel for this arch is the user's error too, found before anything is built.
    let prebuilt = match &opts.kernel_image {
        Some(image) => Some(crate::prebuilt::kernel(ctx, image, opts.modules_dir.as_deref(), &sets(ctx, opts)?)?),
        None => None,
    };
    let built = prebuilt.map_or_else(|| kernel(ctx, opts), Ok).and_then(|kernel| {
        let initrd = match &opts.initrd {
            Some(p) => crate::ctx::absolute(p.clone())?,
            None => kernel.initrd(ctx, opts.no_build)?,
        };
        Ok((kernel, initrd))
    });
    let (kernel, initrd) = match built {
        Err(e) if !opts.command.is_empty() => {
            eprintln!("error: {e:#}");
            eprintln!("(exit status {NOT_RUN}: the command did not run; `git bisect run` skips such a commit)");
            return Ok(NOT_RUN);
        }
        built => built?,
    };
    let cwd = crate::ctx::absolute(".".into())?;
    let mut append = share::append(&opts.share, &cwd);
    let mut qemu_args = share::qemu_args(&opts.share, kernel.virtio);
    if let Some(socket) = &gdb_socket {
        append.push(crate::gdb::APPEND.to_owned());
        qemu_args.extend(crate::gdb::qemu_args(socket));
        // A socket left by an earlier qemu would make this one fail to listen.
        let _ = std::fs::remove_file(socket);
    }
    append.extend(opts.append.iter().cloned());
    qemu_args.extend(opts.qemu_args());
    let argv = boot_argv(&kernel, Some(&initrd), opts.kvm, &append, &qemu_args);
    eprintln!("$ {}", crate::runner::display(&argv));
    if opts.command.is_empty() {
        eprintln!("(the terminal is the guest's serial console: Ctrl-a x quits qemu)");
        return interactive(&argv, |pid| match &gdb_socket {
            Some(socket) => crate::gdb::started(ctx, &kernel.vmlinux, socket, pid),
            None => Ok(()),
        });
    }
    match headless(&argv, opts) {
        Err(e) if e.downcast_ref::<TimedOut>().is_some() => {
            eprintln!("error: {e:#}\n(--timeout bounds boot and command; --timeout 0 for none)");
            // As timeout(1) does.
            Ok(124)
        }
        result => result,
    }
}

/// The kernel to boot: the config's, or a variant of it with what `--share` (9p and the
/// board's virtio transport) and `--gdb` (debug info, gdb scripts) need, such as
/// `fast-share-debug` (the saved config stays as it is).
fn kernel(ctx: &Ctx, opts: &Options) -> Result<Kernel> {
    crate::kernel::variant(ctx, &opts.kernel, &sets(ctx, opts)?, opts.no_build)
}

/// What the boot needs of the kernel: `--share`'s 9p over the board's virtio, `--gdb`'s debug
/// options.
fn sets(ctx: &Ctx, opts: &Options) -> Result<Vec<OptionSet>> {
    let mut sets = Vec::new();
    if !opts.share.is_empty() {
        let virtio = match opts.kernel_image {
            Some(_) => ctx.arch.virtio,
            None => crate::kernel::profile(ctx, &opts.kernel)?.virtio.unwrap_or(ctx.arch.virtio),
        };
        sets.push(OptionSet::share(virtio));
    }
    if opts.gdb {
        sets.push(OptionSet::debug(ctx.arch));
    }
    Ok(sets)
}

/// Boots, runs the command, returns its exit status.
/// The command's standard input is ours, as `ssh host cmd` gives it: read to its end first
/// (a terminal gives none: the command reads /dev/null).
fn headless(argv: &[String], opts: &Options) -> Result<i32> {
    let mut input = Vec::new();
    if !std::io::stdin().is_terminal() {
        let limit = protocol::MAX_STDIN as u64 + 1;
        std::io::stdin().lock().take(limit).read_to_end(&mut input).context("reading standard input")?;
    }
    let stdin = protocol::check_stdin(&input)?;
    let (mut guest, times) = Guest::boot(argv, opts.timeout())?;
    eprintln!(
        "booted: guest uptime at init {:.3} s, host {:.3} s from qemu start to the shell",
        times.guest_s, times.host_s
    );
    guest.run(&opts.command, Some(stdin).filter(|s| !s.is_empty()))
}

/// qemu on the terminal, its stderr watched: on a fatal error, qemu is ended (SIGTERM, so it
/// restores the terminal) instead of sitting stopped. `started` gets qemu's pid.
fn interactive(argv: &[String], started: impl FnOnce(u32) -> Result<()>) -> Result<i32> {
    let (mut child, rx) = spawn(argv, false)?;
    if let Err(e) = started(child.id()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let mut stderr = std::io::stderr();
    while let Ok(event) = rx.recv() {
        let Event::Qemu(line) = event else { continue };
        if is_qemu_error(&line) {
            let causes = causes(line, &rx);
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            bail!("{}", failure(&causes, is_kvm(argv)));
        }
        // qemu's own lines; the terminal is raw while qemu runs.
        write!(stderr, "{line}\r\n")?;
    }
    let status = child.wait().context("waiting for qemu")?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(kvm: bool) -> Vec<String> {
        machine_of("x86_64", kvm)
    }

    fn machine_of(arch: &str, kvm: bool) -> Vec<String> {
        let append = vec!["quiet".to_owned()];
        let extra = vec!["-m".to_owned(), "512M".to_owned()];
        qemu_argv(&Machine {
            arch: crate::arch::parse(arch).unwrap(),
            kernel: "/b/bzImage".into(),
            initrd: Some("/b/i.cpio.gz".into()),
            kvm,
            append: &append,
            qemu_args: &extra,
        })
    }

    #[test]
    fn boots_like_the_walk_through() {
        let argv = machine(false);
        assert_eq!(
            argv[..7],
            ["qemu-system-x86_64", "-kernel", "/b/bzImage", "-initrd", "/b/i.cpio.gz", "-nographic", "-append"]
        );
        assert_eq!(argv[7], "console=ttyS0 panic=-1 quiet");
        assert!(argv.contains(&"-no-reboot".to_owned()));
        assert!(!argv.contains(&"-enable-kvm".to_owned()));
        assert_eq!(argv[argv.len() - 2..], ["-m", "512M"]);
    }

    #[test]
    fn arm64_boots_virt_on_a_cortex_a57_with_the_pl011_console() {
        let argv = machine_of("arm64", false);
        assert_eq!(argv[0], "qemu-system-aarch64");
        assert_eq!(argv[7], "console=ttyAMA0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 6..], ["-M", "virt", "-cpu", "cortex-a57", "-m", "512M"]);
        let kvm = machine_of("arm64", true);
        assert_eq!(kvm[kvm.len() - 7..kvm.len() - 2], ["-enable-kvm", "-M", "virt", "-cpu", "host"]);
    }

    #[test]
    fn riscv64_boots_virt_through_opensbi_on_ttys0() {
        let argv = machine_of("riscv64", false);
        assert_eq!(argv[0], "qemu-system-riscv64");
        assert_eq!(argv[7], "console=ttyS0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 4..], ["-M", "virt", "-m", "512M"]);
    }

    #[test]
    fn a_configs_own_settings_come_before_the_users() {
        let kernel = Kernel {
            config: "fast".into(),
            arch: crate::arch::parse("x86_64").unwrap(),
            obj: "/o".into(),
            boot_image: "/o/bzImage".into(),
            vmlinux: "/o/vmlinux".into(),
            release: "6.1".into(),
            image: "/o/vmlinux".into(),
            qemu_args: vec!["-M".into(), "microvm".into()],
            append: vec!["quiet".into()],
            initramfs: crate::initramfs::Compression::None,
            virtio: crate::arch::Virtio::Mmio,
            modules: None,
            unsaved: Vec::new(),
        };
        let argv =
            boot_argv(&kernel, Some("/i.cpio".into()), false, &["loglevel=8".into()], &["-m".into(), "64M".into()]);
        assert_eq!(argv[2], "/o/vmlinux", "boots the image the config names");
        assert!(argv.contains(&"console=ttyS0 panic=-1 quiet loglevel=8".to_owned()), "{argv:?}");
        assert_eq!(argv[argv.len() - 4..], ["-M", "microvm", "-m", "64M"]);
    }

    #[test]
    fn kvm_adds_enable_kvm() {
        assert!(machine(true).contains(&"-enable-kvm".to_owned()));
    }
}
