//! `qemu --net` and `--forward HOST_PORT:GUEST_PORT`: the guest on qemu's user-mode network
//! (slirp), as virtme-ng's `--network user` gives it.
//!
//! qemu's user network is a NAT inside the qemu process: the guest gets 10.0.2.15 by DHCP, the
//! host is its gateway 10.0.2.2 (a service on the host's 127.0.0.1 answers there), and nothing
//! outside reaches the guest but the ports forwarded from the host's 127.0.0.1. The device is
//! virtio-net on the board's transport; the kernel options come as the variant's `net` set
//! ([`crate::kernel::OptionSet::net`]); init brings the interface up with DHCP when the kernel
//! command line has `teeny.net` (`rootfs/etc/teeny/session`).

use crate::arch::Virtio;
use anyhow::{Result, bail};

/// The word on the kernel command line that tells init to configure the network.
pub const APPEND: &str = "teeny.net";

/// One `--forward HOST_PORT:GUEST_PORT`: a TCP port on the host's 127.0.0.1 to one of the guest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    pub host: u16,
    pub guest: u16,
}

/// `--forward`'s value parser: clap names the option itself.
pub fn parse_forward(spec: &str) -> Result<Forward, String> {
    let port = |s: &str, side: &str| match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{spec:?}: the {side} port {s:?} is not a port number (1-65535); give HOST_PORT:GUEST_PORT")),
    };
    let Some((host, guest)) = spec.split_once(':') else {
        return Err(format!("{spec:?} is not HOST_PORT:GUEST_PORT (e.g. 8080:80)"));
    };
    Ok(Forward { host: port(host, "host")?, guest: port(guest, "guest")? })
}

/// Refuses forwards that cannot all be set up, before anything is built: a host port given
/// twice, or one that another program already listens on (qemu would fail after the build).
pub fn check_forwards(forwards: &[Forward]) -> Result<()> {
    for (i, f) in forwards.iter().enumerate() {
        if forwards[..i].iter().any(|g| g.host == f.host) {
            bail!("--forward: host port {} is given twice", f.host);
        }
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", f.host)) {
            bail!("--forward {}:{}: host port 127.0.0.1:{} is not free ({e})", f.host, f.guest, f.host);
        }
    }
    Ok(())
}

/// qemu's arguments for the network: a user-mode netdev with the forwards, and virtio-net on
/// `virtio`'s transport. PCI's network device loads a boot ROM for PXE by default; we boot
/// `-kernel`, so `romfile=` leaves it out.
pub fn qemu_args(forwards: &[Forward], virtio: Virtio) -> Vec<String> {
    let mut netdev = "user,id=net0".to_owned();
    for f in forwards {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest));
    }
    let device = match virtio {
        Virtio::Pci => format!("{},netdev=net0,romfile=", virtio.device("net")),
        Virtio::Mmio | Virtio::Ccw => format!("{},netdev=net0", virtio.device("net")),
    };
    vec!["-netdev".to_owned(), netdev, "-device".to_owned(), device]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_guest_ports() {
        assert_eq!(parse_forward("8080:80"), Ok(Forward { host: 8080, guest: 80 }));
        assert_eq!(parse_forward("65535:1"), Ok(Forward { host: 65535, guest: 1 }));
        let err = parse_forward("8080").unwrap_err();
        assert!(err.contains("is not HOST_PORT:GUEST_PORT"), "{err}");
        let err = parse_forward("0:80").unwrap_err();
        assert!(err.contains("the host port \"0\" is not a port number"), "{err}");
        let err = parse_forward("80:65536").unwrap_err();
        assert!(err.contains("the guest port \"65536\""), "{err}");
        assert!(parse_forward("a:80").is_err() && parse_forward(":80").is_err() && parse_forward("80:").is_err());
    }

    #[test]
    fn a_user_network_with_forwards_on_the_transport() {
        let forwards = [Forward { host: 8080, guest: 80 }, Forward { host: 2222, guest: 22 }];
        assert_eq!(
            qemu_args(&forwards, Virtio::Pci),
            [
                "-netdev",
                "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:2222-:22",
                "-device",
                "virtio-net-pci,netdev=net0,romfile="
            ]
        );
        assert_eq!(
            qemu_args(&[], Virtio::Mmio),
            ["-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0"]
        );
    }

    #[test]
    fn refuses_a_port_given_twice_or_in_use() {
        let free = || std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
        let p = free();
        let err = check_forwards(&[Forward { host: p, guest: 2 }, Forward { host: p, guest: 3 }]).unwrap_err();
        assert_eq!(err.to_string(), format!("--forward: host port {p} is given twice"));
        let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = check_forwards(&[Forward { host: port, guest: 80 }]).unwrap_err().to_string();
        assert!(err.contains(&format!("host port 127.0.0.1:{port} is not free")), "{err}");
        drop(busy);
        assert!(check_forwards(&[Forward { host: free(), guest: 80 }]).is_ok());
    }
}
