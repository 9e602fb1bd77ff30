//! distcc: kernel and busybox compiles spread over workers that run this same builder image.
//!
//! `cargo xtask distcc serve` runs distccd from the builder image in a detached container;
//! `--distcc HOST[:PORT][/JOBS],…` sends a build's compiles to such workers. distcc's classic
//! failure, another compiler on some worker, cannot happen: before a build each worker is asked
//! for its image tag through distcc itself (the image's `teeny-builder-tag` "compiler"), and a
//! worker with another tag, or none, is dropped. Preprocessing and linking stay local, so the
//! objects are the same bytes as a local build's.

mod serve;
pub mod worker;

use crate::ctx::Ctx;
use crate::step::Step;
use anyhow::{Result, bail};
use camino::Utf8Path;
use fs_err as fs;
pub use serve::{Action, run};
pub use worker::{Worker, parse_worker};

/// Docker label on worker containers, with their port as its value.
const LABEL: &str = "teeny.distcc";
const TAG_LABEL: &str = "teeny.distcc.tag";
const LISTEN_LABEL: &str = "teeny.distcc.listen";
/// distcc's `gcc` → distcc links, the compile-through-distcc PATH when ccache is off.
const CONTAINER_PATH: &str = "/usr/lib/distcc:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// make's `-j` for a build's compile step, with the workers that pass the check.
pub fn jobs(ctx: &Ctx) -> Result<usize> {
    Ok(total_jobs(ctx.jobs, &checked(ctx)?))
}

/// This machine's jobs plus every worker's slots, as distcc advises, since preprocessing and
/// linking still run here.
fn total_jobs(local: usize, workers: &[Worker]) -> usize {
    local + workers.iter().map(|w| w.slots).sum::<usize>()
}

/// Runs a build's compile step (its `make -jN …` with N from [`jobs`], as the user would type
/// it) through ccache and the distcc workers as they are configured, and says what each
/// worker compiled.
pub fn compile(ctx: &Ctx, stats_log: &Utf8Path, step: Step) -> Result<()> {
    let distcc = Compile::new(ctx)?;
    crate::prepare::runner(ctx)?.run(&distcc.apply(ctx, crate::ccache::apply(ctx, step, stats_log)?))?;
    if !ctx.dry_run {
        distcc.report();
    }
    Ok(())
}

/// How a build compiles: with the workers that passed the check, or locally.
struct Compile {
    workers: Vec<Worker>,
    /// Each worker's compile count before the build, to report what it did.
    before: Vec<Option<u64>>,
}

/// The workers of `--distcc` that answer with this checkout's builder tag; the others are
/// dropped with a line naming them. Checked once per run.
fn checked(ctx: &Ctx) -> Result<Vec<Worker>> {
    if let Some(workers) = ctx.distcc_checked.get() {
        return Ok(workers.clone());
    }
    let mut usable = Vec::new();
    if !ctx.distcc.is_empty() {
        if ctx.runner_kind.engine().is_none() {
            bail!("--distcc needs the builder image, which every worker runs too: not with --runner host");
        }
        let tag = crate::builder::tag(ctx)?;
        if ctx.dry_run {
            // The probe is a compile of a file written for it: a dry run sends none.
            eprintln!("dry run: the distcc workers are not asked for their image (a build drops those not on {tag})");
            usable = ctx.distcc.clone();
        }
        for worker in ctx.distcc.iter().filter(|_| !ctx.dry_run) {
            match probe(ctx, worker)? {
                Ok(theirs) if theirs == tag => usable.push(worker.clone()),
                Ok(theirs) => eprintln!("distcc: dropping {}: it runs {theirs}, this build needs {tag}", worker.addr()),
                Err(why) => eprintln!("distcc: dropping {}: {why}", worker.addr()),
            }
        }
        if usable.is_empty() {
            eprintln!("distcc: no worker left: compiling locally");
        }
    }
    Ok(ctx.distcc_checked.get_or_init(|| usable).clone())
}

/// Asks `worker` for its builder tag: `Ok(Ok(tag))`, or `Ok(Err(why))` when it does not answer.
pub(super) fn probe(ctx: &Ctx, worker: &Worker) -> Result<std::result::Result<String, String>> {
    let dir = ctx.build.join("distcc");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("probe.c"), "int teeny_probe;\n")?;
    let out_name = format!("tag-{}-{}", worker.host, worker.port);
    let _ = fs::remove_file(dir.join(&out_name));
    let step = Step::new(&dir, &["distcc", "teeny-builder-tag", "-c", "probe.c", "-o", &out_name])
        .env("DISTCC_HOSTS", &worker.addr())
        // The answer must come from the worker: never compile the probe here instead.
        .env("DISTCC_FALLBACK", "0")
        .env("DISTCC_SKIP_LOCAL_RETRY", "1")
        .network();
    let out = crate::prepare::runner(ctx)?.output(&step)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err.lines().find_map(|l| l.split_once("ERROR: ")).map_or("no answer", |(_, why)| why.trim());
        return Ok(Err(format!("it does not answer ({why})")));
    }
    Ok(Ok(fs::read_to_string(dir.join(&out_name))?.trim().to_owned()))
}

impl Compile {
    /// Checks the workers (once per run) and notes their counts before the build.
    fn new(ctx: &Ctx) -> Result<Compile> {
        let workers = checked(ctx)?;
        let before = workers.iter().map(Worker::compiles).collect();
        Ok(Compile { workers, before })
    }

    /// The compile step sent through distcc (behind ccache when the cache is on). Only such a
    /// step gets a network; every other step runs without one.
    fn apply(&self, ctx: &Ctx, step: Step) -> Step {
        if self.workers.is_empty() {
            return step;
        }
        let hosts: Vec<String> = self.workers.iter().map(Worker::distcc_host).collect();
        let step = step.env("DISTCC_HOSTS", &hosts.join(" ")).network();
        match ctx.ccache {
            Some(_) => step.env("CCACHE_PREFIX", "distcc"),
            None => step.env("PATH", CONTAINER_PATH),
        }
    }

    /// After the build: what each worker compiled, from its own statistics.
    fn report(&self) {
        for (worker, before) in self.workers.iter().zip(&self.before) {
            match (worker.compiles(), before) {
                (Some(after), Some(before)) => {
                    eprintln!("distcc: {} compiled {} files", worker.addr(), after.saturating_sub(*before))
                }
                (None, Some(_)) => eprintln!(
                    "distcc: {} stopped answering during the build: what it did not finish was compiled here",
                    worker.addr()
                ),
                _ => eprintln!("distcc: {} gives no statistics (port {})", worker.addr(), worker.port + 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_waits_on_local_jobs_and_every_worker_slot() {
        let workers = vec![parse_worker("a/3").unwrap(), parse_worker("b").unwrap()];
        assert_eq!(total_jobs(2, &workers), 9);
    }
}
