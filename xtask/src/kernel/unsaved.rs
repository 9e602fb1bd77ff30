//! Unsaved changes: hand edits of an `O=` folder's `.config` (`scripts/config`, an editor) that
//! its config file does not hold. They are built, as make would, but never silently: configure
//! keeps a copy of the `.config` it made, and every build or boot names what differs from it.

use crate::ctx::write_atomic;
use crate::kconfig::{self, line_of};
use anyhow::Result;
use camino::Utf8Path;
use fs_err as fs;

/// The `.config` as configure left it.
const REFERENCE: &str = ".teeny-configured";

/// After configure (or a `--save` that made the file give this `.config`).
pub fn remember(obj: &Utf8Path) -> Result<()> {
    write_atomic(&obj.join(REFERENCE), &fs::read(obj.join(".config"))?)
}

/// The lines of `.config` that differ from what configure made, as `.config` has them; none
/// when either file is missing (a folder configured before this check existed).
pub fn changes(obj: &Utf8Path) -> Vec<String> {
    let read = |f: &str| std::fs::read_to_string(obj.join(f)).ok();
    let (Some(now), Some(made)) = (read(".config"), read(REFERENCE)) else { return Vec::new() };
    differences(&now, &made)
}

fn differences(now: &str, made: &str) -> Vec<String> {
    kconfig::differences(now, made).iter().map(line_of).collect()
}

/// Says, once, that the kernel in `obj` is built (`verb`) with unsaved changes.
pub fn warn(verb: &str, changes: &[String]) {
    if !changes.is_empty() {
        eprintln!(
            "{verb} with unsaved changes to .config: {} (keep them with --save, drop them with --configure)",
            changes.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_edit_is_named_as_the_config_now_has_it() {
        let made = "CONFIG_TTY=y\n# CONFIG_PRINTK_TIME is not set\nCONFIG_LOCALVERSION=\"\"\n";
        assert!(differences(made, made).is_empty());
        let now = "CONFIG_TTY=y\nCONFIG_PRINTK_TIME=y\nCONFIG_LOCALVERSION=\"-x\"\n";
        assert_eq!(differences(now, made), ["CONFIG_PRINTK_TIME=y", "CONFIG_LOCALVERSION=\"-x\""]);
        // A line removed by hand is `n` to kconfig.
        assert_eq!(differences("CONFIG_TTY=y\n", "CONFIG_TTY=y\nCONFIG_NET=y\n"), ["# CONFIG_NET is not set"]);
    }
}
