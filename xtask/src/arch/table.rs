//! The architectures' table: each is one entry, all that the build, the boot, the tests and the
//! docs know of it.

use super::{Arch, Virtio};

/// busybox 1.37 does not compile its SHA1 SHA-NI code off x86: `sha1_process_block64_shaNI`
/// is declared for x86 only but used unconditionally (libbb/hash_md5_sha.c).
const NO_SHA_NI: &str = "# CONFIG_SHA1_HWACCEL is not set\n";

/// The PL011 UART of qemu's arm `virt` boards, as config lines.
const PL011: &[&str] = &["CONFIG_TTY=y", "CONFIG_SERIAL_AMBA_PL011=y", "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y"];

pub const ARCHES: &[Arch] = &[
    Arch {
        name: "x86_64",
        aliases: &["amd64", "x86-64"],
        rust: "x86_64",
        dir: "x86",
        kernel_arch: "x86",
        srcarch: "x86",
        cross_prefix: "x86_64-linux-gnu-",
        image: "arch/x86/boot/bzImage",
        qemu: "qemu-system-x86_64",
        qemu_package: "qemu-system-x86",
        machine: &[],
        cpu: None,
        // x86 picks its unwinder; the frame-pointer one brings FRAME_POINTER. tinyconfig's
        // choice, the guess unwinder, must be turned off for it.
        frame_pointer: &["CONFIG_UNWINDER_FRAME_POINTER=y", "# CONFIG_UNWINDER_GUESS is not set"],
        virtio: Virtio::Pci,
        console: "ttyS0",
        console_node: (4, 64),
        console_options: &["CONFIG_TTY=y", "CONFIG_SERIAL_8250=y", "CONFIG_SERIAL_8250_CONSOLE=y"],
        elf_machine: 62, // EM_X86_64
        image_magic: Some((0x202, b"HdrS")),
        monitor_pc: "RIP",
        busybox: "",
        debian: "amd64",
        kvm_cpu_flags: &["vmx", "svm"], // Intel VT-x, AMD-V
        kvm_modules: "`sudo modprobe kvm_intel` or `kvm_amd`",
    },
    Arch {
        name: "arm64",
        aliases: &["aarch64"],
        rust: "aarch64",
        dir: "arm64",
        kernel_arch: "arm64",
        srcarch: "arm64",
        cross_prefix: "aarch64-linux-gnu-",
        image: "arch/arm64/boot/Image",
        qemu: "qemu-system-aarch64",
        qemu_package: "qemu-system-arm",
        machine: &["-M", "virt"],
        // qemu's virt board has no default CPU for aarch64 (it would be a 32-bit cortex-a15).
        cpu: Some("cortex-a57"),
        frame_pointer: &["CONFIG_FRAME_POINTER=y"],
        // In the virt board's device tree: no PCI host driver needed.
        virtio: Virtio::Mmio,
        console: "ttyAMA0", // the virt board's PL011 UART
        console_node: (204, 64),
        console_options: PL011,
        elf_machine: 183, // EM_AARCH64
        image_magic: Some((0x38, b"ARM\x64")),
        monitor_pc: "PC",
        busybox: NO_SHA_NI,
        debian: "arm64",
        kvm_cpu_flags: &[],
        kvm_modules: "`sudo modprobe kvm`",
    },
    Arch {
        name: "riscv64",
        aliases: &["riscv"],
        rust: "riscv64",
        dir: "riscv64",
        kernel_arch: "riscv",
        srcarch: "riscv",
        cross_prefix: "riscv64-linux-gnu-",
        image: "arch/riscv/boot/Image",
        qemu: "qemu-system-riscv64",
        qemu_package: "qemu-system-misc",
        // qemu loads its bundled OpenSBI, which starts the kernel in supervisor mode.
        machine: &["-M", "virt"],
        cpu: None,
        frame_pointer: &["CONFIG_FRAME_POINTER=y"],
        virtio: Virtio::Mmio,
        console: "ttyS0", // the virt board's 16550 UART, found in the device tree
        console_node: (4, 64),
        console_options: &[
            "CONFIG_TTY=y",
            "CONFIG_SERIAL_8250=y",
            "CONFIG_SERIAL_8250_CONSOLE=y",
            "CONFIG_SERIAL_OF_PLATFORM=y",
        ],
        elf_machine: 243, // EM_RISCV
        image_magic: Some((0x38, b"RSC\x05")),
        monitor_pc: "pc",
        busybox: NO_SHA_NI,
        debian: "riscv64",
        kvm_cpu_flags: &[],
        kvm_modules: "`sudo modprobe kvm`",
    },
    Arch {
        name: "armhf",
        aliases: &["arm", "armv7", "armv7l"],
        rust: "arm",
        dir: "armhf",
        kernel_arch: "arm",
        srcarch: "arm",
        cross_prefix: "arm-linux-gnueabihf-",
        image: "arch/arm/boot/zImage",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        machine: &["-M", "virt"],
        // A 32-bit ARMv7 with the virtualization extensions, as Debian's armhf targets.
        cpu: Some("cortex-a15"),
        // ARM's own unwinder (the default) needs no frame pointers; gdb's backtraces do.
        frame_pointer: &["CONFIG_UNWINDER_FRAME_POINTER=y"],
        virtio: Virtio::Mmio,
        console: "ttyAMA0", // the virt board's PL011 UART, as on arm64
        console_node: (204, 64),
        console_options: PL011,
        elf_machine: 40, // EM_ARM
        // zImage's magic word 0x016f2818, little-endian, in its header.
        image_magic: Some((0x24, &[0x18, 0x28, 0x6f, 0x01])),
        monitor_pc: "R15",
        busybox: NO_SHA_NI,
        debian: "armhf",
        kvm_cpu_flags: &[],
        kvm_modules: "`sudo modprobe kvm`",
    },
    Arch {
        name: "ppc64le",
        aliases: &["ppc64el", "powerpc64le"],
        rust: "powerpc64",
        dir: "ppc64le",
        kernel_arch: "powerpc",
        srcarch: "powerpc",
        cross_prefix: "powerpc64le-linux-gnu-",
        // pseries' firmware (SLOF) loads the ELF kernel itself.
        image: "vmlinux",
        qemu: "qemu-system-ppc64",
        qemu_package: "qemu-system-ppc",
        machine: &["-M", "pseries"],
        cpu: None,
        // powerpc keeps a back chain in every stack frame: no option for it.
        frame_pointer: &[],
        virtio: Virtio::Pci, // the machine's PCI host bridge, found through the firmware
        console: "hvc0",     // the hypervisor's virtual console
        console_node: (229, 0),
        console_options: &["CONFIG_TTY=y", "CONFIG_HVC_CONSOLE=y"],
        elf_machine: 21,   // EM_PPC64
        image_magic: None, // an ELF file: elf_machine tells it
        monitor_pc: "NIP",
        busybox: NO_SHA_NI,
        debian: "ppc64el",
        kvm_cpu_flags: &[],
        kvm_modules: "`sudo modprobe kvm_hv`",
    },
    Arch {
        name: "s390x",
        aliases: &["s390"],
        rust: "s390x",
        dir: "s390x",
        kernel_arch: "s390",
        srcarch: "s390",
        cross_prefix: "s390x-linux-gnu-",
        image: "arch/s390/boot/bzImage",
        qemu: "qemu-system-s390x",
        qemu_package: "qemu-system-misc",
        machine: &[], // the default s390-ccw-virtio
        cpu: None,
        // s390 keeps a back chain in every stack frame: no option for it.
        frame_pointer: &[],
        virtio: Virtio::Ccw,
        console: "ttysclp0", // the SCLP's VT220 console, qemu's -serial on s390x
        console_node: (4, 65),
        console_options: &["CONFIG_TTY=y", "CONFIG_SCLP_VT220_TTY=y", "CONFIG_SCLP_VT220_CONSOLE=y"],
        elf_machine: 22, // EM_S390
        // The kernel's list of entry points (arch/s390/boot/head.S, EP_OFFSET and EP_STRING).
        image_magic: Some((0x10008, b"S390EP")),
        monitor_pc: "addr", // `PSW=mask … addr …`
        busybox: NO_SHA_NI,
        debian: "s390x",
        kvm_cpu_flags: &[],
        kvm_modules: "`sudo modprobe kvm`",
    },
];
