//! The modules a prebuilt kernel needs for what was asked (`--share`'s 9p and virtio), found in
//! its `lib/modules/RELEASE/` with their dependencies (`modules.dep`), or built in
//! (`modules.builtin`). Pure: the text of those two files in, the module files out.

use anyhow::{Result, bail};
use std::collections::BTreeSet;

/// A module's name as modprobe takes it: the file name without `.ko` (and a compression
/// suffix), `-` read as `_`.
pub fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// What `modules.dep` says: each module file with the files it needs.
pub struct Deps<'a> {
    lines: Vec<(&'a str, Vec<&'a str>)>,
    builtin: BTreeSet<String>,
}

impl<'a> Deps<'a> {
    pub fn parse(modules_dep: &'a str, modules_builtin: &str) -> Deps<'a> {
        let lines = modules_dep
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(module, deps)| (module.trim(), deps.split_whitespace().collect()))
            .collect();
        let builtin = modules_builtin.lines().map(name_of).collect();
        Deps { lines, builtin }
    }

    fn find(&self, name: &str) -> Option<&(&'a str, Vec<&'a str>)> {
        let name = name.replace('-', "_");
        self.lines.iter().find(|(module, _)| name_of(module) == name)
    }

    /// The module files (relative to `lib/modules/RELEASE/`) that `names` need, each after the
    /// ones it depends on, and the names to load (those not built in). `release` is for the
    /// message when one is neither a module nor built in.
    pub fn closure(&self, names: &[&str], release: &str) -> Result<(Vec<&'a str>, Vec<String>)> {
        let mut files: Vec<&'a str> = Vec::new();
        let mut load = Vec::new();
        for name in names {
            if self.builtin.contains(&name.replace('-', "_")) {
                continue;
            }
            let Some((module, deps)) = self.find(name) else {
                bail!(
                    "the kernel {release} has no module `{name}` and does not build it in (modules.dep, modules.builtin)"
                )
            };
            // modules.dep lists every dependency, indirect ones too, the deepest last.
            for file in deps.iter().rev().chain([module]) {
                if !files.contains(file) {
                    files.push(file);
                }
            }
            load.push(name.to_string());
        }
        Ok((files, load))
    }

    /// `modules.dep` for just `files`, so the guest's modprobe finds their dependencies.
    pub fn subset(&self, files: &[&str]) -> String {
        self.lines
            .iter()
            .filter(|(module, _)| files.contains(module))
            .map(|(module, deps)| format!("{module}:{}\n", deps.iter().map(|d| format!(" {d}")).collect::<String>()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
        kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
        kernel/net/9p/9pnet.ko:\n\
        kernel/fs/netfs/netfs.ko:\n\
        kernel/drivers/virtio/virtio_ring.ko:\n\
        kernel/drivers/virtio/virtio.ko:\n\
        kernel/lib/crc-itu-t.ko.xz:\n";

    #[test]
    fn names_are_file_names_without_suffixes_and_dashes() {
        assert_eq!(name_of("kernel/lib/crc-itu-t.ko.xz"), "crc_itu_t");
        assert_eq!(name_of("kernel/fs/9p/9p.ko"), "9p");
    }

    #[test]
    fn a_module_comes_after_what_it_needs_and_built_in_ones_are_skipped() {
        let deps = Deps::parse(DEP, "kernel/drivers/virtio/virtio_pci.ko\n");
        let (files, load) = deps.closure(&["9p", "9pnet_virtio", "virtio_pci"], "6.1.0-28-amd64").unwrap();
        assert_eq!(
            files,
            [
                "kernel/fs/netfs/netfs.ko",
                "kernel/net/9p/9pnet.ko",
                "kernel/fs/9p/9p.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/net/9p/9pnet_virtio.ko",
            ]
        );
        assert_eq!(load, ["9p", "9pnet_virtio"]);
        assert_eq!(deps.closure(&["crc-itu-t"], "r").unwrap().1, ["crc-itu-t"]);
        let subset = deps.subset(&files[..3]);
        assert_eq!(
            subset,
            "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\nkernel/net/9p/9pnet.ko:\nkernel/fs/netfs/netfs.ko:\n"
        );
    }

    #[test]
    fn a_module_that_is_neither_there_nor_built_in_is_named() {
        let deps = Deps::parse(DEP, "");
        let err = deps.closure(&["virtio_net"], "6.1.0-28-amd64").unwrap_err().to_string();
        assert_eq!(
            err,
            "the kernel 6.1.0-28-amd64 has no module `virtio_net` and does not build it in (modules.dep, modules.builtin)"
        );
    }
}
