//! `--kvm`'s checks, before anything is built: the arch's qemu is there, and this user can use
//! KVM; never a fallback to emulation.

use crate::arch::Arch;
use anyhow::{Context, Result, bail};
use camino::Utf8Path;

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
