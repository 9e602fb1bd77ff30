//! Variants, the one way a kernel gets options its config file does not hold: a config of ours
//! plus named option sets, built as config `NAME-SET…` (e.g. `fast-share-debug`) in an `O=`
//! folder of its own, the saved config left as it is. `qemu --share` adds `share`, `qemu --gdb`
//! adds `debug`, `qemu --net` adds `net`. A config file that extends another names it with `#: merge NAME` instead
//! (`modules.config` is allnoconfig plus three lines).
//!
//! When every line of the sets already holds in the base's `.config` (a defconfig that has 9p),
//! the variant is the base: same `O=` folder, nothing built twice.

use crate::arch::{Arch, Virtio};
use crate::kconfig;

/// A named set of config lines a variant adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionSet {
    pub name: &'static str,
    pub lines: Vec<String>,
    /// The modules that give these options in a kernel that has them as modules (a prebuilt
    /// one, `qemu --kernel-image`): what init loads there.
    pub modules: Vec<&'static str>,
}

/// What a share needs besides its virtio transport: 9p over virtio. 9p sits in the network
/// layer and, in Kconfig, depends on INET, though it uses no network interface.
const SHARE: &[&str] = &[
    "CONFIG_NET=y",
    "CONFIG_INET=y",
    "CONFIG_NETWORK_FILESYSTEMS=y",
    "CONFIG_NET_9P=y",
    "CONFIG_NET_9P_VIRTIO=y",
    "CONFIG_9P_FS=y",
];

/// What `--net` needs besides its virtio transport: TCP/IP, raw packet sockets (udhcpc's
/// DHCP), and virtio-net.
const NET: &[&str] = &[
    "CONFIG_NET=y",
    "CONFIG_INET=y",
    "CONFIG_PACKET=y",
    "CONFIG_NETDEVICES=y",
    "CONFIG_NET_CORE=y",
    "CONFIG_VIRTIO_NET=y",
];

/// What debugging needs besides the arch's frame-pointer option: DWARF for gdb, the `lx-`
/// helper scripts (vmlinux-gdb.py in the `O=` folder), and symbols.
const DEBUG: &[&str] = &[
    "CONFIG_DEBUG_KERNEL=y",
    "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y",
    "CONFIG_GDB_SCRIPTS=y",
    "CONFIG_KALLSYMS=y",
];

impl OptionSet {
    pub fn new(name: &'static str, lines: impl IntoIterator<Item = impl Into<String>>) -> OptionSet {
        OptionSet { name, lines: lines.into_iter().map(Into::into).collect(), modules: Vec::new() }
    }

    /// `qemu --share`: 9p over the board's virtio transport.
    pub fn share(virtio: Virtio) -> OptionSet {
        let modules = ["9p", "9pnet_virtio"].into_iter().chain(virtio.modules().iter().copied()).collect();
        OptionSet { modules, ..OptionSet::new("share", SHARE.iter().chain(virtio.kernel_options()).copied()) }
    }

    /// `qemu --net`: virtio-net over the board's virtio transport.
    pub fn net(virtio: Virtio) -> OptionSet {
        let modules = ["af_packet", "virtio_net"].into_iter().chain(virtio.modules().iter().copied()).collect();
        OptionSet { modules, ..OptionSet::new("net", NET.iter().chain(virtio.kernel_options()).copied()) }
    }

    /// `qemu --gdb`: DWARF, gdb scripts, symbols, frame pointers.
    pub fn debug(arch: &Arch) -> OptionSet {
        OptionSet::new("debug", DEBUG.iter().chain(arch.frame_pointer).copied())
    }
}

/// The variant's config name: the base's, then each set's, joined by `-`.
pub fn name(base: &str, sets: &[OptionSet]) -> String {
    std::iter::once(base).chain(sets.iter().map(|s| s.name)).collect::<Vec<_>>().join("-")
}

/// The variant's config text: the base's text, then each set's lines under a comment naming it
/// (a set's line overrides the base's).
pub fn compose(base_text: &str, sets: &[OptionSet]) -> String {
    let mut text = base_text.trim_end().to_owned();
    text.push('\n');
    for set in sets {
        text.push_str(&format!("\n# added by the variant's `{}` options\n", set.name));
        for line in &set.lines {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Whether every line of the sets already holds in `config` (a base's .config).
pub fn holds(sets: &[OptionSet], config: &str) -> bool {
    let lines: String = sets.iter().flat_map(|s| &s.lines).map(|l| format!("{l}\n")).collect();
    kconfig::parse("variant", &lines).is_ok_and(|wanted| kconfig::check(&wanted, config).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Vec<OptionSet> {
        vec![
            OptionSet::new("share", ["CONFIG_NET=y", "CONFIG_9P_FS=y"]),
            OptionSet::new("debug", ["CONFIG_KALLSYMS=y"]),
        ]
    }

    #[test]
    fn a_variant_is_named_after_its_base_and_sets() {
        assert_eq!(name("fast", &sets()), "fast-share-debug");
        assert_eq!(name("fast", &[]), "fast");
    }

    #[test]
    fn the_sets_lines_come_after_the_base_and_override_it() {
        let text = compose("#: base allnoconfig\n# CONFIG_NET is not set\n\n", &sets());
        assert_eq!(
            text,
            "#: base allnoconfig\n# CONFIG_NET is not set\n\n# added by the variant's `share` options\nCONFIG_NET=y\nCONFIG_9P_FS=y\n\n# added by the variant's `debug` options\nCONFIG_KALLSYMS=y\n"
        );
        let settings = kconfig::parse("t", &text).unwrap();
        let net: Vec<_> = settings.iter().filter(|s| s.symbol == "NET").map(|s| s.value.as_str()).collect();
        assert_eq!(net.last(), Some(&"y"));
    }

    #[test]
    fn a_base_that_has_every_line_is_the_variant() {
        let all = "CONFIG_NET=y\nCONFIG_9P_FS=y\nCONFIG_KALLSYMS=y\n";
        assert!(holds(&sets(), all));
        assert!(!holds(&sets(), "CONFIG_NET=y\nCONFIG_9P_FS=m\nCONFIG_KALLSYMS=y\n"));
        assert!(!holds(&sets(), "CONFIG_NET=y\nCONFIG_KALLSYMS=y\n"));
        let off = [OptionSet::new("t", ["# CONFIG_VT is not set"])];
        assert!(holds(&off, "# CONFIG_VT is not set\n") && holds(&off, "CONFIG_NET=y\n"));
        assert!(!holds(&off, "CONFIG_VT=y\n"));
    }

    #[test]
    fn every_arch_has_the_three_sets() {
        for arch in crate::arch::ARCHES {
            // Frame pointers for gdb's backtraces, where the arch has an option for them.
            let debug = OptionSet::debug(arch).lines;
            assert_eq!(debug[DEBUG.len()..], arch.frame_pointer.iter().map(|l| l.to_string()).collect::<Vec<_>>());
            // The transport's options and module come with both sets that need virtio.
            let (share, net) = (OptionSet::share(arch.virtio), OptionSet::net(arch.virtio));
            for set in [&share, &net] {
                let transport = arch.virtio.kernel_options().iter().all(|o| set.lines.contains(&o.to_string()));
                assert!(transport && set.modules.contains(&arch.virtio.modules()[0]), "{}: {}", arch.name, set.name);
            }
            assert!(net.lines.contains(&"CONFIG_VIRTIO_NET=y".to_owned()) && net.modules.contains(&"virtio_net"));
        }
    }
}
