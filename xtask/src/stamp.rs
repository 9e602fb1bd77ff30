//! The one up-to-date mechanism: a step's inputs hashed into a stamp file beside its outputs,
//! written (atomically) only after the step succeeded and removed before it starts, so an
//! interrupted or failed step is redone. Kernel configure and build, busybox, the initramfs and
//! the unpacked sources use it.

use crate::ctx::{sha256_hex, write_atomic};
use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

pub struct Stamp {
    path: Utf8PathBuf,
    hash: String,
}

impl Stamp {
    /// The stamp at `path` for these inputs (each one hashed with its length, so that moving a
    /// byte from one input to the next changes the hash).
    pub fn new(path: Utf8PathBuf, inputs: &[&[u8]]) -> Stamp {
        Stamp { path, hash: sha256_hex(inputs) }
    }

    /// The last run of the step had these inputs and succeeded; `outputs` must exist too.
    pub fn fresh(&self, outputs: &[&Utf8Path]) -> bool {
        outputs.iter().all(|o| o.exists()) && std::fs::read_to_string(&self.path).is_ok_and(|s| s == self.hash)
    }

    /// Before the step runs: until it succeeds, nothing is up to date.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// After the step succeeded.
    pub fn write(&self) -> Result<()> {
        write_atomic(&self.path, self.hash.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_only_after_a_write_with_the_same_inputs_and_its_outputs() {
        let dir =
            Utf8PathBuf::try_from(std::env::temp_dir()).unwrap().join(format!("teeny-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let stamp = |inputs: &[&[u8]]| Stamp::new(dir.join(".stamp"), inputs);
        let a = stamp(&[b"config", b"source"]);
        assert!(!a.fresh(&[]), "never written");
        a.write().unwrap();
        assert!(a.fresh(&[]));
        assert!(!a.fresh(&[&out]), "an output is missing");
        std::fs::write(&out, "").unwrap();
        assert!(a.fresh(&[&out]));
        assert!(!stamp(&[b"config", b"source2"]).fresh(&[]), "another input");
        assert!(!stamp(&[b"configs", b"ource"]).fresh(&[]), "the same bytes split otherwise");
        a.clear();
        assert!(!a.fresh(&[&out]), "cleared before a run");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
