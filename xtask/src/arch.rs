//! The architectures we build for: the one place that says how each is compiled and booted.
//!
//! Adding one is an entry in [`ARCHES`] plus its configs in `kernel-configs/NAME/`.

use anyhow::{Result, bail};

/// How to build and boot one architecture.
#[derive(Debug, PartialEq, Eq)]
pub struct Arch {
    /// What `--arch` takes and `kernel-configs/` names its folder by.
    pub name: &'static str,
    /// Other spellings `--arch` accepts (Debian's, GNU's, uname's).
    pub aliases: &'static [&'static str],
    /// Rust's name for it (`std::env::consts::ARCH`): the host's architecture is the default.
    pub rust: &'static str,
    /// In build folder names: `x86` keeps x86's folders as they were before arm64 came
    /// (`linux-x86-NAME`, `busybox-x86`).
    pub dir: &'static str,
    /// The kernel's `ARCH=`. `x86` on x86_64, as make itself picks on an x86_64 host and the
    /// walk-through built: 64BIT is then a question, which every x86 config answers (with
    /// `ARCH=x86_64`, allnoconfig would also switch to the ORC unwinder and 4-level paging).
    pub kernel_arch: &'static str,
    /// The kernel's source folder, `arch/SRCARCH/` (what kbuild derives from ARCH).
    pub srcarch: &'static str,
    /// Debian's cross toolchain prefix (docker/Dockerfile installs it).
    pub cross_prefix: &'static str,
    /// The boot image make leaves in the `O=` folder.
    pub image: &'static str,
    pub qemu: &'static str,
    /// The Debian package that has `qemu`.
    pub qemu_package: &'static str,
    /// qemu's machine arguments; none for x86's default PC.
    pub machine: &'static [&'static str],
    /// The CPU model under emulation; with KVM it is `host`.
    pub cpu: Option<&'static str>,
    /// What gives the `-debug` variant (`qemu --gdb`) frame pointers, for gdb's backtraces.
    pub frame_pointer: &'static [&'static str],
    /// How virtio devices (`qemu --share`) reach the guest on `machine`; a config's
    /// `#: virtio` line overrides it (x86's microvm has no PCI).
    pub virtio: Virtio,
    /// The serial console the kernel writes to (`console=`).
    pub console: &'static str,
    /// Its device number (major, minor): the initramfs carries its /dev node, so init needs no
    /// mdev to find the console.
    pub console_node: (u32, u32),
    /// Its driver, as config lines: every config of this arch gets them before its own lines
    /// (which may override them).
    pub console_options: &'static [&'static str],
    /// The ELF header's e_machine, to check that busybox was built for this architecture.
    pub elf_machine: u16,
    /// Where the boot image's header says what it is, and what it says (x86's bzImage "HdrS",
    /// arm64's and riscv64's Image magic): how `qemu --kernel-image` tells a file's arch. None
    /// where the boot image is vmlinux itself (ppc64le): an ELF file, told by `elf_machine`.
    pub image_magic: Option<(usize, &'static [u8])>,
    /// The program counter's name in qemu's `info registers` (`bench --profile` samples it).
    pub monitor_pc: &'static str,
    /// busybox settings this arch needs on top of `busybox-configs/busybox.config`.
    pub busybox: &'static str,
    /// Debian's name for it (`dpkg --print-architecture`): docker/Dockerfile installs the
    /// cross compiler `gcc-TRIPLET` and `libc6-dev-DEBIAN-cross` by it.
    pub debian: &'static str,
    /// The `flags` of /proc/cpuinfo that show hardware virtualization on such a host (none to
    /// look for where cpuinfo does not list them), for `--kvm`'s warning.
    pub kvm_cpu_flags: &'static [&'static str],
    /// The kernel modules that give /dev/kvm on such a host, for `--kvm`'s hint.
    pub kvm_modules: &'static str,
}

mod table;

pub use table::ARCHES;

/// A virtio transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Virtio {
    /// Devices on the PCI bus.
    Pci,
    /// Memory-mapped devices, found in the device tree or (x86 microvm) on the command line,
    /// which qemu fills in.
    Mmio,
    /// Devices on s390's channel subsystem (channel I/O), neither PCI nor memory-mapped.
    Ccw,
}

impl Virtio {
    /// qemu's device for virtio `kind` (`9p`, `blk`, …) on this transport.
    pub fn device(self, kind: &str) -> String {
        match self {
            Virtio::Pci => format!("virtio-{kind}-pci"),
            Virtio::Mmio => format!("virtio-{kind}-device"),
            Virtio::Ccw => format!("virtio-{kind}-ccw"),
        }
    }

    /// The kernel options the guest needs for this transport.
    pub fn kernel_options(self) -> &'static [&'static str] {
        match self {
            Virtio::Pci => &["CONFIG_VIRTIO_MENU=y", "CONFIG_PCI=y", "CONFIG_VIRTIO_PCI=y"],
            Virtio::Mmio => &["CONFIG_VIRTIO_MENU=y", "CONFIG_VIRTIO_MMIO=y", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y"],
            Virtio::Ccw => &["CONFIG_S390_GUEST=y"],
        }
    }

    /// The module of the transport, in a kernel that has it as one (s390's virtio_ccw is
    /// always built in, by S390_GUEST).
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Virtio::Pci => &["virtio_pci"],
            Virtio::Mmio => &["virtio_mmio"],
            Virtio::Ccw => &["virtio_ccw"],
        }
    }
}

impl Arch {
    /// Whether this is the machine we run on (KVM and the native compiler need it).
    pub fn is_host(&self) -> bool {
        self.rust == std::env::consts::ARCH
    }

    /// `CROSS_COMPILE=`: empty on the host's own architecture, whose native gcc builds it.
    pub fn cross_compile(&self) -> &'static str {
        if self.is_host() { "" } else { self.cross_prefix }
    }

    /// The make arguments that select this architecture for the kernel.
    pub fn make_args(&self) -> [String; 2] {
        [format!("ARCH={}", self.kernel_arch), self.cross_compile_arg()]
    }

    /// `CROSS_COMPILE=…`: all busybox needs, since it derives its ARCH from this prefix (or
    /// from uname), and its arch/x86_64 flags go by that name.
    pub fn cross_compile_arg(&self) -> String {
        format!("CROSS_COMPILE={}", self.cross_compile())
    }

    /// qemu's machine and CPU arguments; KVM runs the host's CPU.
    pub fn machine_args(&self, kvm: bool) -> Vec<String> {
        let mut args: Vec<String> = self.machine.iter().map(|a| a.to_string()).collect();
        if let Some(cpu) = self.cpu {
            args.extend(["-cpu".to_owned(), if kvm { "host" } else { cpu }.to_owned()]);
        }
        args
    }

    /// Debian's cross gcc package (`gcc-x86-64-linux-gnu`), from the cross prefix.
    #[cfg(test)]
    pub fn debian_gcc(&self) -> String {
        format!("gcc-{}", self.cross_prefix.trim_end_matches('-').replace('_', "-"))
    }

    /// Whether /proc/cpuinfo shows hardware virtualization; None where this arch's cpuinfo
    /// does not list it.
    pub fn has_hardware_virtualization(&self, cpuinfo: &str) -> Option<bool> {
        if self.kvm_cpu_flags.is_empty() {
            return None;
        }
        let flags = cpuinfo.lines().filter(|l| l.starts_with("flags"));
        Some(flags.flat_map(str::split_whitespace).any(|f| self.kvm_cpu_flags.contains(&f)))
    }

    /// Fails unless KVM can run this guest: only on the same architecture.
    pub fn check_kvm(&self) -> Result<()> {
        if !self.is_host() {
            bail!(
                "--kvm runs guests of the host's own architecture ({}), not {}: drop --kvm to emulate it",
                std::env::consts::ARCH,
                self.name
            );
        }
        Ok(())
    }
}

/// The architecture named `name` or one of its aliases; for clap.
pub fn parse(name: &str) -> Result<&'static Arch> {
    let lower = name.to_lowercase();
    ARCHES
        .iter()
        .find(|a| a.name == lower || a.aliases.contains(&lower.as_str()))
        .ok_or_else(|| anyhow::anyhow!("unknown architecture `{name}`: choose one of {}", names().join(", ")))
}

/// `--arch`'s default: the host's own architecture.
pub fn host() -> Result<&'static Arch> {
    let rust = std::env::consts::ARCH;
    ARCHES.iter().find(|a| a.rust == rust).ok_or_else(|| {
        anyhow::anyhow!(
            "this host's architecture ({rust}) is not one we build for: choose one with --arch ({})",
            names().join(", ")
        )
    })
}

pub fn names() -> Vec<&'static str> {
    ARCHES.iter().map(|a| a.name).collect()
}

/// `--arch`'s help: the names and aliases of the table.
pub fn help() -> String {
    let aliases: Vec<&str> = ARCHES.iter().flat_map(|a| a.aliases).copied().collect();
    format!(
        "The architecture to build and boot ({}; also {}) [default: the host's]",
        names().join(", "),
        aliases.join(", ")
    )
}

impl Arch {
    /// The file name of the arch's boot image (`bzImage`, `Image`).
    pub fn image_name(&self) -> &'static str {
        self.image.rsplit('/').next().unwrap_or(self.image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_find_their_arch() {
        for (given, name) in [
            ("x86_64", "x86_64"),
            ("amd64", "x86_64"),
            ("arm64", "arm64"),
            ("AArch64", "arm64"),
            ("riscv", "riscv64"),
            ("arm", "armhf"),
            ("armv7", "armhf"),
            ("ppc64el", "ppc64le"),
            ("s390", "s390x"),
        ] {
            assert_eq!(parse(given).unwrap().name, name, "{given}");
        }
        let err = parse("mips").unwrap_err().to_string();
        assert!(
            err.contains("unknown architecture `mips`")
                && err.contains("x86_64, arm64, riscv64, armhf, ppc64le, s390x"),
            "{err}"
        );
    }

    #[test]
    fn every_arch_names_its_console_driver_as_config_lines() {
        for a in ARCHES {
            let lines: String = a.console_options.iter().map(|l| format!("{l}\n")).collect();
            let settings = crate::kconfig::parse(a.name, &lines).unwrap();
            assert_eq!(settings.len(), a.console_options.len(), "{}", a.name);
            assert!(a.console_options.contains(&"CONFIG_TTY=y"), "{}", a.name);
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut all: Vec<&str> =
            ARCHES.iter().flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().copied())).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn the_host_is_the_default_and_compiles_natively() {
        let host = host().unwrap();
        assert_eq!(host.rust, std::env::consts::ARCH);
        assert!(host.is_host() && host.cross_compile().is_empty());
        host.check_kvm().unwrap();
        for other in ARCHES.iter().filter(|a| *a != host) {
            assert_eq!(other.make_args()[1], format!("CROSS_COMPILE={}", other.cross_prefix));
            let err = other.check_kvm().unwrap_err().to_string();
            assert!(err.contains(other.name) && err.contains("drop --kvm"), "{err}");
        }
    }

    #[test]
    fn x86_keeps_its_folders_and_arguments() {
        let x86 = parse("x86_64").unwrap();
        assert_eq!((x86.dir, x86.make_args()[0].as_str()), ("x86", "ARCH=x86"));
        assert!(x86.machine_args(false).is_empty());
    }

    #[test]
    fn arm64_runs_a_cortex_a57_or_the_host_cpu_under_kvm() {
        let arm64 = parse("arm64").unwrap();
        assert_eq!(arm64.machine_args(false), ["-M", "virt", "-cpu", "cortex-a57"]);
        assert_eq!(arm64.machine_args(true), ["-M", "virt", "-cpu", "host"]);
        assert_eq!(parse("riscv64").unwrap().machine_args(false), ["-M", "virt"]);
    }

    #[test]
    fn the_dockerfile_installs_every_other_arches_cross_compiler() {
        let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/Dockerfile")).unwrap();
        for a in ARCHES {
            // The loop's `DEBIAN:TRIPLET` pairs: gcc-TRIPLET, libc6-dev-DEBIAN-cross.
            let pair = format!("{}:{}", a.debian, a.debian_gcc().trim_start_matches("gcc-"));
            assert!(dockerfile.contains(&pair), "docker/Dockerfile lacks {pair} for {}", a.name);
        }
        assert!(dockerfile.contains("gcc-${a#*:} libc6-dev-${a%%:*}-cross"), "the loop's package names");
    }

    #[test]
    fn each_transport_names_its_qemu_device_and_kernel_driver() {
        let kinds = [Virtio::Pci, Virtio::Mmio, Virtio::Ccw].map(|v| v.device("9p"));
        assert_eq!(kinds, ["virtio-9p-pci", "virtio-9p-device", "virtio-9p-ccw"]);
        assert!(Virtio::Ccw.kernel_options().contains(&"CONFIG_S390_GUEST=y"));
        assert_eq!(parse("s390").unwrap().virtio, Virtio::Ccw);
    }

    #[test]
    fn ci_installs_every_arches_qemu() {
        let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/run")).unwrap();
        for a in ARCHES {
            assert!(ci.contains(a.qemu_package), ".ci/run does not install {} for {}", a.qemu_package, a.name);
        }
    }

    #[test]
    fn hardware_virtualization_is_a_cpu_flag_where_cpuinfo_lists_it() {
        let x86 = parse("x86_64").unwrap();
        assert_eq!(x86.has_hardware_virtualization("flags\t\t: fpu vme svm lm\n"), Some(true));
        assert_eq!(x86.has_hardware_virtualization("model name\t: Intel\nflags\t\t: fpu vmx\n"), Some(true));
        // An AMD EPYC cloud VM whose /dev/kvm is kvm_pvm: guests failed with KVM internal errors.
        let pvm = "model name\t: AMD EPYC\nflags\t\t: fpu vme hypervisor lm\n";
        assert_eq!(x86.has_hardware_virtualization(pvm), Some(false));
        // arm64's cpuinfo has `Features`, not the virtualization extensions: no warning there.
        assert_eq!(parse("arm64").unwrap().has_hardware_virtualization("Features\t: fp asimd\n"), None);
        assert_eq!(x86.debian_gcc(), "gcc-x86-64-linux-gnu");
        assert_eq!(parse("arm").unwrap().debian_gcc(), "gcc-arm-linux-gnueabihf");
    }
}
