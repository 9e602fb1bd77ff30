//! `bench --dry-run`: each config's build steps and the boots' qemu command lines, printed; no
//! boot, no run folder, no chart.

use super::{Options, instrumented, packing, saved};
use crate::arch::Arch;
use crate::ctx::Ctx;
use crate::runner::display;
use anyhow::{Result, bail};

type Target = (&'static Arch, String);

/// Prints what `bench` would run for `targets`, one context per arch in `ctxs` (the first's
/// packer comparison too). A config whose build a dry run cannot go past says so and the
/// others go on; one that fails as a real run would fails the run at the end.
pub fn run(
    ctxs: &[Ctx],
    opts: &Options,
    targets: &[Target],
    graph: Option<&Target>,
    profiled: Option<&Target>,
) -> Result<()> {
    let ctx_of = |arch: &Arch| ctxs.iter().find(|c| c.arch == arch).expect("a context per arch");
    eprintln!("dry run: a run would write its charts and logs in a new folder of {}", ctxs[0].build.join("bench"));
    eprintln!("dry run: the packer comparison would run: $ {}", packing::shown(&ctxs[0]));
    let mut failed = Vec::new();
    for t @ (arch, config) in targets {
        let ctx = ctx_of(arch);
        let shown = (|| -> Result<()> {
            let kernel = crate::kernel::build(ctx, config)?;
            saved(&kernel, config)?;
            let initrd = kernel.initrd(ctx, false)?;
            let argv = crate::qemu::boot_argv(&kernel, Some(&initrd), opts.kvm, &opts.guest, &[], &[]);
            eprintln!("boot 1-{} of {config}: $ {}", opts.runs, display(&argv));
            let profile = profiled == Some(t);
            if profile || graph == Some(t) {
                let argv = instrumented::argv(ctx, opts, &kernel, &initrd, profile);
                eprintln!("instrumented boot of {config}: $ {}", display(&argv));
            }
            Ok(())
        })();
        match shown {
            Ok(()) => {}
            Err(ref e) if let Some(stop) = crate::dry::stop(e) => eprintln!("{}/{config}: {stop}", arch.name),
            Err(e) => {
                eprintln!("error: {}/{config}: {e:#}", arch.name);
                failed.push(format!("{}/{config}", arch.name));
            }
        }
    }
    if !failed.is_empty() {
        bail!("{} config(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}
