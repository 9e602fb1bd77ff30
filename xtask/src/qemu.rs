//! Step 5: boot the kernel and the initramfs in qemu, on the terminal or headless.
//!
//! Headless, the serial console is a pipe: we wait for init's "Boot took" line and the shell
//! prompt, type one command wrapped in markers, stream its output and return its exit status.
//! In both modes qemu's stderr goes through us, so that its fatal errors (a failing KVM stops
//! the guest without ending qemu) end the run at once with their cause.

mod argv;
mod console;
mod kvm;
pub mod net;
mod process;
mod protocol;
pub mod share;

pub use argv::{Resources, boot_argv};
pub use console::{Guest, Line, TimedOut};
pub use kvm::preflight;
use process::{Event, causes, failure, is_kvm, is_qemu_error, spawn};

use crate::ctx::Ctx;
use crate::kernel::{Kernel, OptionSet};
use anyhow::{Context, Result, bail};
use camino::Utf8PathBuf;
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
    #[command(flatten)]
    pub guest: Resources,
    /// Extra qemu arguments, split at spaces, after every other (e.g. --qemu-args "-cpu max").
    #[arg(long, allow_hyphen_values = true)]
    pub qemu_args: Option<String>,
    /// Mount host folder DIR in the guest over virtio-9p, at GUEST_PATH (default: the same
    /// absolute path), read-only with `:ro`; repeatable. Boots the config's `-share` variant
    /// (9p and virtio added); the shell starts in the current folder when it is shared.
    #[arg(long, value_name = "DIR[:GUEST_PATH][:ro]", value_parser = share::parse_arg)]
    pub share: Vec<share::Share>,
    /// Give the guest qemu's user-mode network: virtio-net, an address by DHCP (init runs
    /// udhcpc), the host as gateway 10.0.2.2. Boots the config's `-net` variant (virtio-net added).
    #[arg(long)]
    pub net: bool,
    /// Forward the host's 127.0.0.1:HOST_PORT (TCP) to the guest's GUEST_PORT; repeatable;
    /// implies --net.
    #[arg(long, value_name = "HOST_PORT:GUEST_PORT", value_parser = net::parse_forward)]
    pub forward: Vec<net::Forward>,
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

    /// Whether the guest gets a network: `--net`, or a `--forward`.
    fn net(&self) -> bool {
        self.net || !self.forward.is_empty()
    }

    /// Bounds the whole headless run, boot and command; `None`: no bound (`--timeout 0`).
    fn timeout(&self) -> Option<Duration> {
        (self.timeout > 0).then(|| Duration::from_secs(self.timeout))
    }
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
    net::check_forwards(&opts.forward)?;
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
        Err(e) if !opts.command.is_empty() && !crate::dry::is_stop(&e) => {
            eprintln!("error: {e:#}");
            eprintln!("(exit status {NOT_RUN}: the command did not run; `git bisect run` skips such a commit)");
            return Ok(NOT_RUN);
        }
        built => built?,
    };
    let cwd = crate::ctx::absolute(".".into())?;
    let mut append = share::append(&opts.share, &cwd);
    let mut qemu_args = share::qemu_args(&opts.share, kernel.virtio);
    if opts.net() {
        append.push(net::APPEND.to_owned());
        qemu_args.extend(net::qemu_args(&opts.forward, kernel.virtio));
    }
    if let Some(socket) = &gdb_socket {
        append.push(crate::gdb::APPEND.to_owned());
        qemu_args.extend(crate::gdb::qemu_args(socket));
        // A socket left by an earlier qemu would make this one fail to listen.
        if !ctx.dry_run {
            let _ = std::fs::remove_file(socket);
        }
    }
    append.extend(opts.append.iter().cloned());
    qemu_args.extend(opts.qemu_args());
    let argv = boot_argv(&kernel, Some(&initrd), opts.kvm, &opts.guest, &append, &qemu_args);
    eprintln!("$ {}", crate::runner::display(&argv));
    if ctx.dry_run {
        return Ok(0);
    }
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
/// board's virtio transport), `--net` (virtio-net) and `--gdb` (debug info, gdb scripts) need,
/// such as `fast-share-net-debug` (the saved config stays as it is).
fn kernel(ctx: &Ctx, opts: &Options) -> Result<Kernel> {
    crate::kernel::variant(ctx, &opts.kernel, &sets(ctx, opts)?, opts.no_build)
}

/// What the boot needs of the kernel: `--share`'s 9p and `--net`'s virtio-net over the board's
/// virtio, `--gdb`'s debug options.
fn sets(ctx: &Ctx, opts: &Options) -> Result<Vec<OptionSet>> {
    let mut sets = Vec::new();
    if !opts.share.is_empty() || opts.net() {
        // The config file is read once, for both sets.
        let virtio = match opts.kernel_image {
            Some(_) => ctx.arch.virtio,
            None => crate::kernel::profile(ctx, &opts.kernel)?.virtio.unwrap_or(ctx.arch.virtio),
        };
        if !opts.share.is_empty() {
            sets.push(OptionSet::share(virtio));
        }
        if opts.net() {
            sets.push(OptionSet::net(virtio));
        }
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
