//! `cargo xtask distcc serve|stop|status`: the workers on this machine, each distccd from the
//! builder image in a detached container labelled with its port, tag and listen address.

use super::worker::{DEFAULT_PORT, DEFAULT_SLOTS, Worker};
use super::{LABEL, LISTEN_LABEL, TAG_LABEL, probe};
use crate::ctx::Ctx;
use crate::engine::Engine;
use anyhow::{Context, Result, bail};
use std::time::Duration;

/// What `cargo xtask distcc serve` starts: its flags.
#[derive(Clone, Debug, clap::Args)]
pub struct Serve {
    /// Address to listen on (0.0.0.0: every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: String,
    /// Port to listen on (its statistics on the next one).
    #[arg(long, default_value_t = DEFAULT_PORT, value_parser = clap::value_parser!(u16).range(1..65535))]
    pub port: u16,
    /// Clients allowed to send compiles, as ADDRESS or ADDRESS/BITS; repeatable. Only your
    /// own network: distccd compiles whatever an allowed address sends it.
    #[arg(long, value_name = "CIDR", default_value = "127.0.0.1/32")]
    pub allow: Vec<String>,
    /// Slots: the global --jobs.
    #[arg(skip)]
    pub jobs: usize,
}

/// `docker run` for a detached worker: distccd in the foreground of its container, on the
/// host's network (the address and port are the host's), as nobody, with statistics on port + 1.
pub fn serve_argv(engine: Engine, image: &str, s: &Serve) -> Vec<String> {
    let options = [
        "--detach",
        "--init",
        &format!("--name=teeny-distcc-{}", s.port),
        &format!("--label={LABEL}={}", s.port),
        &format!("--label={TAG_LABEL}={image}"),
        &format!("--label={LISTEN_LABEL}={}", s.listen),
        "--network=host",
        "--user=65534:65534",
    ]
    .map(String::from)
    .into();
    let mut command: Vec<String> = [
        "distccd",
        "--daemon",
        "--no-detach",
        "--log-stderr",
        "--listen",
        &s.listen,
        "--port",
        &s.port.to_string(),
        "--stats",
        "--stats-port",
        &(s.port + 1).to_string(),
        "--jobs",
        &s.jobs.to_string(),
    ]
    .map(String::from)
    .into();
    for a in &s.allow {
        command.extend(["--allow".to_owned(), a.clone()]);
    }
    engine.run_argv(options, image, command)
}

/// Checks an `--allow` value (`A.B.C.D` or `A.B.C.D/BITS`); says whether it is a private network
/// (loopback, RFC 1918, carrier-grade NAT, link-local).
fn check_allow(cidr: &str) -> Result<bool> {
    let bad = || anyhow::anyhow!("--allow {cidr}: not an IPv4 address or ADDRESS/BITS");
    let (addr, bits) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let bits: u8 = bits.parse().ok().filter(|b| *b <= 32).ok_or_else(bad)?;
    let [a, b, ..] = addr.octets();
    let private =
        addr.is_loopback() || addr.is_private() || addr.is_link_local() || (a == 100 && (64..128).contains(&b));
    // A short prefix covers more than the private block its address is in.
    let widest = match a {
        10 | 127 => 8,
        100 => 10,
        172 => 12,
        _ => 16,
    };
    Ok(private && bits >= widest)
}

/// `cargo xtask distcc serve|stop|status`.
#[derive(clap::Subcommand)]
pub enum Action {
    /// Start distccd from the builder image in a detached container (teeny-distcc-PORT), with
    /// as many slots as --jobs; its statistics answer on PORT + 1.
    Serve(Serve),
    /// Stop the workers on this machine (all, or the one on --port).
    Stop {
        /// The worker's port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// List the workers on this machine and ask each (or each of --distcc) for its builder image.
    Status,
}

/// `cargo xtask distcc …`.
pub fn run(ctx: &Ctx, action: Action) -> Result<()> {
    let engine = ctx.runner_kind.engine().context("distcc workers run in the builder image: not with --runner host")?;
    match action {
        Action::Serve(s) => serve(ctx, engine, &Serve { jobs: ctx.jobs, ..s }),
        Action::Stop { port } => stop(engine, port),
        Action::Status => status(ctx, engine),
    }
}

fn serve(ctx: &Ctx, engine: Engine, s: &Serve) -> Result<()> {
    for a in &s.allow {
        if !check_allow(a)? {
            eprintln!("warning: --allow {a} is not a private network: anyone there can run compilers on this machine");
        }
    }
    let image = crate::prepare::runner(ctx)?.image().context("no builder image")?.to_owned();
    if let Some(left) = workers_here(engine, true)?.into_iter().find(|w| w.port == s.port && !w.running) {
        // Stopped without `distcc stop` (e.g. `docker stop`): its name would be taken.
        eprintln!("removing {}, a worker that was stopped but not removed", left.name);
        let _ = engine.remove(&left.name);
    }
    if let Some(running) = workers_here(engine, false)?.into_iter().find(|w| w.port == s.port) {
        bail!(
            "a distcc worker already runs on port {} ({}): `cargo xtask distcc stop --port {}` first",
            s.port,
            running.name,
            s.port
        );
    }
    let argv = serve_argv(engine, &image, s);
    eprintln!("$ {}", crate::runner::display(&argv));
    engine.start(&argv)?;
    let name = format!("teeny-distcc-{}", s.port);
    // distccd is up once its port accepts; if it exits first (port taken, bad option), say why.
    let worker = Worker { host: local_host(&s.listen).to_owned(), port: s.port, slots: s.jobs };
    let start = std::time::Instant::now();
    while worker.compiles().is_none() {
        if start.elapsed() > Duration::from_secs(10) || !workers_here(engine, false)?.iter().any(|w| w.name == name) {
            let logs = engine.logs_tail(&name, 5)?;
            let _ = engine.remove(&name);
            bail!("distccd did not start on {}: {}", worker.addr(), logs.trim().lines().last().unwrap_or("no output"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "distcc worker {name}: {image} on {}:{}, {} jobs, allowing {}",
        s.listen,
        s.port,
        s.jobs,
        s.allow.join(" ")
    );
    println!("  use it:  cargo xtask --distcc {}:{}/{} kernel NAME", worker.host, s.port, s.jobs);
    println!("  stop it: cargo xtask distcc stop --port {}", s.port);
    Ok(())
}

/// Where this machine reaches a worker that listens on `listen`.
fn local_host(listen: &str) -> &str {
    if listen == "0.0.0.0" { "127.0.0.1" } else { listen }
}

/// A worker container on this machine.
struct Local {
    name: String,
    port: u16,
    running: bool,
    tag: String,
    listen: String,
}

/// The worker containers here: running ones, or with `all` stopped ones too.
fn workers_here(engine: Engine, all: bool) -> Result<Vec<Local>> {
    let format = format!(
        "{{{{.Names}}}} {{{{.Label \"{LABEL}\"}}}} {{{{.State}}}} {{{{.Label \"{TAG_LABEL}\"}}}} {{{{.Label \"{LISTEN_LABEL}\"}}}}"
    );
    Ok(engine
        .ps(&format!("label={LABEL}"), &format, all)?
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Local {
                name: f.next()?.to_owned(),
                port: f.next()?.parse().ok()?,
                running: f.next()? == "running",
                tag: f.next().unwrap_or("").to_owned(),
                listen: f.next().unwrap_or("127.0.0.1").to_owned(),
            })
        })
        .collect())
}

fn stop(engine: Engine, port: Option<u16>) -> Result<()> {
    // Stopped ones too: a worker stopped with `docker stop` still holds its name.
    let workers: Vec<Local> =
        workers_here(engine, true)?.into_iter().filter(|w| port.is_none_or(|p| w.port == p)).collect();
    if workers.is_empty() {
        match port {
            Some(p) => bail!("no distcc worker runs on port {p} here (see `cargo xtask distcc status`)"),
            None => eprintln!("no distcc worker runs here"),
        }
    }
    for w in workers {
        engine.remove_shown(&w.name)?;
    }
    Ok(())
}

/// The workers here, and those of `--distcc`: which answer, with which tag.
fn status(ctx: &Ctx, engine: Engine) -> Result<()> {
    let here = workers_here(engine, false)?;
    for w in &here {
        println!("{} on port {} runs {}", w.name, w.port, w.tag);
    }
    let mut asked = ctx.distcc.clone();
    if asked.is_empty() {
        asked = here
            .iter()
            .map(|w| Worker { host: local_host(&w.listen).to_owned(), port: w.port, slots: DEFAULT_SLOTS })
            .collect();
    }
    if here.is_empty() && asked.is_empty() {
        println!("no distcc worker runs here; give --distcc HOSTS to ask others");
        return Ok(());
    }
    let tag = crate::builder::tag(ctx)?;
    for w in &asked {
        match probe(ctx, w)? {
            Ok(theirs) => {
                let same = if theirs == tag { "the same as this checkout's" } else { "NOT this checkout's" };
                let done = w.compiles().map_or(String::new(), |n| format!(", compiles done: {n}"));
                println!("{} answers: {theirs} ({same}){done}", w.addr());
            }
            Err(why) => println!("{}: {why}", w.addr()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_runs_distccd_detached_on_the_host_network_with_statistics() {
        let s = Serve { listen: "127.0.0.1".into(), port: 3700, allow: vec!["127.0.0.1/32".into()], jobs: 2 };
        let argv = serve_argv(Engine::DOCKER, "teeny-linux-builder:abc", &s).join(" ");
        assert!(
            argv.starts_with("docker run --detach --init --name=teeny-distcc-3700 --label=teeny.distcc=3700"),
            "{argv}"
        );
        assert!(argv.contains("--label=teeny.distcc.listen=127.0.0.1 --network=host"), "{argv}");
        assert!(
            argv.contains("--network=host --user=65534:65534 teeny-linux-builder:abc distccd --daemon --no-detach")
        );
        assert!(
            argv.ends_with("--listen 127.0.0.1 --port 3700 --stats --stats-port 3701 --jobs 2 --allow 127.0.0.1/32")
        );
    }

    #[test]
    fn only_private_networks_pass_the_allow_check() {
        for private in ["127.0.0.1", "192.168.1.0/24", "10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10"] {
            assert!(check_allow(private).unwrap(), "{private}");
        }
        for public in ["8.8.8.8", "0.0.0.0/0", "192.168.0.0/12"] {
            assert!(!check_allow(public).unwrap(), "{public}");
        }
        assert!(check_allow("10.0.0.300").is_err() && check_allow("10.0.0.0/33").is_err());
    }
}
