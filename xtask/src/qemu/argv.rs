//! qemu's command line, pure: the walk-through's boot line with the arch's board and console,
//! the guest's CPUs and memory (`--cpus`, `--memory`), then the config's and the caller's own
//! arguments, which so override what comes before them.

use crate::arch::Arch;
use crate::kernel::Kernel;
use camino::Utf8Path;

/// The most virtual CPUs `--cpus` takes (qemu's boards allow up to 255 or more; a tiny guest
/// under TCG is slower with many).
pub const MAX_CPUS: u32 = 256;

/// The guest's CPUs and memory: the flags of every command that boots (qemu, bench, kunit,
/// kselftest). Unset, qemu's defaults: one CPU, 128 MiB.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Virtual CPUs of the guest (qemu's -smp N); a kernel built without CONFIG_SMP (x86_64's
    /// allnoconfig, fast) uses only the first [default: qemu's, 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_CPUS as i64))]
    pub cpus: Option<u32>,
    /// Memory of the guest, as qemu's -m takes it: 512M, 2G; a number alone is MiB [default: qemu's, 128M].
    #[arg(long, value_name = "SIZE", value_parser = crate::cli::parse_memory)]
    pub memory: Option<String>,
}

impl Resources {
    /// `-smp N` and `-m SIZE`, for what is set.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.cpus {
            args.extend(["-smp".to_owned(), n.to_string()]);
        }
        if let Some(size) = &self.memory {
            args.extend(["-m".to_owned(), size.clone()]);
        }
        args
    }
}

/// Inputs of the qemu command line.
pub struct Machine<'a> {
    pub arch: &'a Arch,
    pub kernel: &'a Utf8Path,
    /// None: no initramfs (a kernel that ends by itself before init, as KUnit's does).
    pub initrd: Option<&'a Utf8Path>,
    pub kvm: bool,
    pub resources: &'a Resources,
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
    // Before the caller's arguments, which can so pick another board, CPU count or memory.
    argv.extend(m.arch.machine_args(m.kvm));
    argv.extend(m.resources.args());
    argv.extend(m.qemu_args.iter().cloned());
    argv
}

/// The command line for a built kernel: `--cpus` and `--memory`, then its config's own kernel
/// and qemu arguments, then the caller's, which can so override them.
pub fn boot_argv(
    kernel: &Kernel,
    initrd: Option<&Utf8Path>,
    kvm: bool,
    resources: &Resources,
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
        resources,
        append: &append,
        qemu_args: &qemu_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(kvm: bool) -> Vec<String> {
        machine_of("x86_64", kvm, &Resources::default())
    }

    fn machine_of(arch: &str, kvm: bool, resources: &Resources) -> Vec<String> {
        let append = vec!["quiet".to_owned()];
        let extra = vec!["-m".to_owned(), "512M".to_owned()];
        qemu_argv(&Machine {
            arch: crate::arch::parse(arch).unwrap(),
            kernel: "/b/bzImage".into(),
            initrd: Some("/b/i.cpio.gz".into()),
            kvm,
            resources,
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
        assert!(!argv.contains(&"-smp".to_owned()), "qemu's default CPU count unless --cpus: {argv:?}");
        assert_eq!(argv[argv.len() - 2..], ["-m", "512M"]);
    }

    #[test]
    fn cpus_and_memory_come_after_the_board_and_before_the_callers_arguments() {
        let resources = Resources { cpus: Some(2), memory: Some("1G".into()) };
        let argv = machine_of("arm64", false, &resources);
        // The caller's `-m 512M` comes last, so it wins over --memory, as qemu takes the last -m.
        assert_eq!(
            argv[argv.len() - 10..],
            ["-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", "1G", "-m", "512M"]
        );
        let only_cpus = Resources { cpus: Some(4), memory: None };
        let argv = machine_of("x86_64", false, &only_cpus);
        assert_eq!(argv[argv.len() - 4..], ["-smp", "4", "-m", "512M"]);
    }

    #[test]
    fn arm64_boots_virt_on_a_cortex_a57_with_the_pl011_console() {
        let argv = machine_of("arm64", false, &Resources::default());
        assert_eq!(argv[0], "qemu-system-aarch64");
        assert_eq!(argv[7], "console=ttyAMA0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 6..], ["-M", "virt", "-cpu", "cortex-a57", "-m", "512M"]);
        let kvm = machine_of("arm64", true, &Resources::default());
        assert_eq!(kvm[kvm.len() - 7..kvm.len() - 2], ["-enable-kvm", "-M", "virt", "-cpu", "host"]);
    }

    #[test]
    fn riscv64_boots_virt_through_opensbi_on_ttys0() {
        let argv = machine_of("riscv64", false, &Resources::default());
        assert_eq!(argv[0], "qemu-system-riscv64");
        assert_eq!(argv[7], "console=ttyS0 panic=-1 quiet");
        assert_eq!(argv[argv.len() - 4..], ["-M", "virt", "-m", "512M"]);
    }

    fn kernel() -> Kernel {
        Kernel {
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
        }
    }

    #[test]
    fn a_configs_own_settings_come_before_the_users() {
        let resources = Resources { cpus: Some(2), memory: Some("256M".into()) };
        let argv = boot_argv(
            &kernel(),
            Some("/i.cpio".into()),
            false,
            &resources,
            &["loglevel=8".into()],
            &["-m".into(), "64M".into()],
        );
        assert_eq!(argv[2], "/o/vmlinux", "boots the image the config names");
        assert!(argv.contains(&"console=ttyS0 panic=-1 quiet loglevel=8".to_owned()), "{argv:?}");
        assert_eq!(argv[argv.len() - 8..], ["-smp", "2", "-m", "256M", "-M", "microvm", "-m", "64M"]);
    }

    #[test]
    fn kvm_adds_enable_kvm() {
        assert!(machine(true).contains(&"-enable-kvm".to_owned()));
    }
}
