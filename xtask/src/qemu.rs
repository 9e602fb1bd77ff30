//! Step 5: boot the kernel and the initramfs in qemu, on the terminal or headless.
//!
//! Headless, the serial console is a pipe: we wait for init's "Boot took" line and the shell
//! prompt, type one command wrapped in markers, stream its output and return its exit status.
//! In both modes qemu's stderr goes through us, so that its fatal errors (a failing KVM stops
//! the guest without ending qemu) end the run at once with their cause.

mod argv;
mod console;
mod process;
mod protocol;
pub mod share;

pub use argv::{Resources, boot_argv};
pub use console::{Guest, Line, TimedOut};
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

/// Fails with the cause when this user cannot use KVM; never falls back to emulation. Warns when
/// KVM has no hardware virtualization under it (where the host's cpuinfo says).
fn check_kvm(host: &Arch, dev: &Utf8Path) -> Result<()> {
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => {
            // Such a /dev/kvm virtualizes in software (e.g. kvm_pvm in a cloud VM). On one, the
            // guest ran far slower than under TCG and died with "KVM internal error" ~145 s in.
            let cpuinfo = fs_err::read_to_string("/proc/cpuinfo").unwrap_or_default();
            if host.has_hardware_virtualization(&cpuinfo) == Some(false) {
                eprintln!(
                    "warning: --kvm: the CPU shows no hardware virtualization (none of {} in /proc/cpuinfo's flags); KVM may be slower than without --kvm, or fail",
                    host.kvm_cpu_flags.join(", ")
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--kvm: {dev} does not exist: load the module ({}) and enable virtualization in the firmware, or drop --kvm",
            host.kvm_modules
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "--kvm: no permission to use {dev}: add yourself to the kvm group (`sudo usermod -aG kvm $USER`, then log in again)"
        ),
        Err(e) => Err(e).with_context(|| format!("--kvm: cannot open {dev}")),
    }
}

/// What must hold before anything is built for a boot: the arch's qemu is installed and, with
/// `kvm`, KVM can run it.
pub fn preflight(arch: &Arch, kvm: bool) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|dir| dir.join(arch.qemu).is_file()) {
        bail!(
            "{} is not installed: install it with `sudo apt install {}` (Debian/Ubuntu)",
            arch.qemu,
            arch.qemu_package
        );
    }
    if kvm {
        arch.check_kvm()?;
        check_kvm(arch, "/dev/kvm".into())?;
    }
    Ok(())
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
    crate::kernel::check_name(ctx, &opts.kernel)?;
    let built = kernel(ctx, opts).and_then(|kernel| {
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
/// board's virtio transport) and `--gdb` (debug info, gdb scripts) need, such as
/// `fast-share-debug` (the saved config stays as it is).
fn kernel(ctx: &Ctx, opts: &Options) -> Result<Kernel> {
    let mut sets = Vec::new();
    if !opts.share.is_empty() {
        let virtio = crate::kernel::profile(ctx, &opts.kernel)?.virtio.unwrap_or(ctx.arch.virtio);
        sets.push(OptionSet::share(virtio));
    }
    if opts.gdb {
        sets.push(OptionSet::debug(ctx.arch));
    }
    crate::kernel::variant(ctx, &opts.kernel, &sets, opts.no_build)
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

    #[test]
    fn kvm_check_names_the_cause() {
        let x86 = crate::arch::parse("x86_64").unwrap();
        let err = check_kvm(x86, "/nonexistent/kvm".into()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/kvm does not exist") && err.contains("modprobe"), "{err}");
        let dir = std::env::temp_dir().join(format!("teeny-kvm-{}", std::process::id()));
        std::fs::write(&dir, b"").unwrap();
        check_kvm(x86, Utf8Path::from_path(&dir).unwrap()).unwrap();
        std::fs::remove_file(dir).unwrap();
    }
}
