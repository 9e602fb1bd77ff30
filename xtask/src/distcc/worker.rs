//! A distcc worker as `--distcc` names it (`HOST[:PORT][/JOBS]`): plain data, its parser, and
//! its statistics page.

use anyhow::Result;
use std::io::{Read, Write};
use std::time::Duration;

/// distccd's own port; its statistics answer on the next one.
pub const DEFAULT_PORT: u16 = 3632;
/// Compiles a worker takes at once when `--distcc` does not say: distcc's own default.
pub const DEFAULT_SLOTS: usize = 4;
/// One `HOST[:PORT][/JOBS]` of `--distcc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    pub host: String,
    pub port: u16,
    pub slots: usize,
}

impl Worker {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The worker in DISTCC_HOSTS's syntax.
    pub fn distcc_host(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.slots)
    }

    /// Compiles this worker's distccd has done so far, from its statistics port (port + 1);
    /// None if that does not answer.
    pub fn compiles(&self) -> Option<u64> {
        use std::net::ToSocketAddrs;
        let addr = (self.host.as_str(), self.port.checked_add(1)?).to_socket_addrs().ok()?.next()?;
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        compiles_ok(&text)
    }
}

/// `dcc_compile_ok N` of distccd's statistics page.
fn compiles_ok(stats: &str) -> Option<u64> {
    stats.lines().find_map(|l| l.strip_prefix("dcc_compile_ok ")?.trim().parse().ok())
}

/// The most compile slots one worker may claim.
const MAX_SLOTS: usize = 1024;

/// Parses one `HOST[:PORT][/JOBS]` of `--distcc`.
pub fn parse_worker(spec: &str) -> Result<Worker> {
    let bad = |why: &str| anyhow::anyhow!("distcc worker `{spec}`: {why} (expected HOST[:PORT][/JOBS])");
    let (rest, slots) = match spec.split_once('/') {
        Some((rest, jobs)) => (
            rest,
            jobs.parse()
                .ok()
                .filter(|j| (1..=MAX_SLOTS).contains(j))
                .ok_or_else(|| bad("JOBS is not a number from 1 to 1024"))?,
        ),
        None => (spec, DEFAULT_SLOTS),
    };
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => {
            // distccd's statistics answer on PORT + 1, which must be a port too.
            (
                host,
                port.parse()
                    .ok()
                    .filter(|&p| p > 0 && p < u16::MAX)
                    .ok_or_else(|| bad("PORT is not a port number from 1 to 65534"))?,
            )
        }
        None => (rest, DEFAULT_PORT),
    };
    if host.is_empty() || host.contains(':') {
        return Err(bad("no host name or IPv4 address"));
    }
    Ok(Worker { host: host.to_owned(), port, slots })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_take_a_port_and_slots_or_distccs_defaults() {
        let w = ["10.0.0.2:3700/8", "build1"].map(|s| parse_worker(s).unwrap());
        assert_eq!(w[0], Worker { host: "10.0.0.2".into(), port: 3700, slots: 8 });
        assert_eq!(w[1], Worker { host: "build1".into(), port: 3632, slots: 4 });
        assert_eq!(w[0].distcc_host(), "10.0.0.2:3700/8");
        for bad in ["host:x", "host/0", ":3632", "::1", "host:65535", "host/1025", "host/99999999999999999999"] {
            let err = parse_worker(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("distcc worker `{bad}`")), "{err}");
        }
    }

    #[test]
    fn statistics_give_the_compiles_done() {
        let page = "argv /distccd\n<distccstats>\ndcc_tcp_accept 9\ndcc_compile_ok 7\ndcc_compile_error 0\n";
        assert_eq!(compiles_ok(page), Some(7));
        assert_eq!(compiles_ok("HTTP/1.0 404\n"), None);
    }
}
