//! `qemu --gdb` and `cargo xtask gdb`: the booted kernel under gdb, gdb from the builder image.
//!
//! `qemu --gdb` boots the config's `-debug` variant halted, with qemu's gdb stub on a unix
//! socket in the build folder: the builder container reaches it through its mount of that
//! folder, without a network. A session file says which socket, vmlinux and qemu belong
//! together, so `cargo xtask gdb` needs no flags of its own.

use crate::ctx::{Ctx, write_atomic};
use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fs_err as fs;

/// Kernel command line for debugging: symbols at their link addresses.
pub const APPEND: &str = "nokaslr";

/// A `qemu --gdb` run, as `cargo xtask gdb` finds it.
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    pub socket: Utf8PathBuf,
    pub vmlinux: Utf8PathBuf,
    /// The kernel source tree, which vmlinux-gdb.py links into.
    pub source: Utf8PathBuf,
    pub qemu_pid: u32,
}

impl Session {
    fn to_text(&self) -> String {
        format!(
            "socket {}\nvmlinux {}\nsource {}\nqemu_pid {}\n",
            self.socket, self.vmlinux, self.source, self.qemu_pid
        )
    }

    fn parse(origin: &Utf8Path, text: &str) -> Result<Session> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .with_context(|| format!("{origin}: no `{key}` line"))
        };
        Ok(Session {
            socket: field("socket")?.into(),
            vmlinux: field("vmlinux")?.into(),
            source: field("source")?.into(),
            qemu_pid: field("qemu_pid")?.parse().with_context(|| format!("{origin}: qemu_pid"))?,
        })
    }
}

fn session_path(ctx: &Ctx) -> Utf8PathBuf {
    ctx.build.join(format!("gdb-{}.session", ctx.arch.name))
}

/// The stub's socket for this arch. A unix socket path has at most 107 bytes.
pub fn socket(ctx: &Ctx) -> Result<Utf8PathBuf> {
    let path = ctx.build.join(format!("gdb-{}.sock", ctx.arch.name));
    if path.as_str().len() > 107 {
        bail!(
            "--gdb: the socket path {path} is longer than a unix socket allows (107 bytes): use a shorter --build-dir"
        );
    }
    Ok(path)
}

/// qemu's arguments: halted at the first instruction, the gdb stub on `socket`.
pub fn qemu_args(socket: &Utf8Path) -> Vec<String> {
    ["-S", "-chardev", &format!("socket,id=teenygdb,path={socket},server=on,wait=off"), "-gdb", "chardev:teenygdb"]
        .map(String::from)
        .into()
}

/// Records the session once qemu runs, and tells the user how to attach.
pub fn started(ctx: &Ctx, vmlinux: &Utf8Path, socket: &Utf8Path, qemu_pid: u32) -> Result<()> {
    // `make` links vmlinux-gdb.py beside vmlinux to the source tree's scripts/gdb/.
    let link = vmlinux.with_file_name("vmlinux-gdb.py");
    let target = fs::read_link(&link).with_context(|| format!("{link}: the gdb helpers were not built"))?;
    let target = Utf8PathBuf::try_from(target)?;
    let source = target.ancestors().nth(3).filter(|_| target.ends_with("scripts/gdb/vmlinux-gdb.py"));
    let source = source.with_context(|| format!("{link} links to {target}, not to a kernel tree's scripts/gdb"))?;
    let session =
        Session { socket: socket.to_owned(), vmlinux: vmlinux.to_owned(), source: source.to_owned(), qemu_pid };
    write_atomic(&session_path(ctx), session.to_text().as_bytes())?;
    eprintln!(
        "qemu is halted until gdb continues it; in another terminal:\n  cargo xtask{} gdb\n  (runs in the builder: {})",
        if ctx.arch.is_host() { String::new() } else { format!(" --arch {}", ctx.arch.name) },
        crate::runner::display(&gdb_argv(&session, &[]))
    );
    Ok(())
}

/// gdb's command line: the kernel's helpers allowed to load, attached to the stub.
pub fn gdb_argv(session: &Session, extra: &[String]) -> Vec<String> {
    let obj = session.vmlinux.parent().unwrap_or(Utf8Path::new("/"));
    let mut argv: Vec<String> = [
        "gdb-multiarch",
        "-q",
        "-iex",
        &format!("add-auto-load-safe-path {obj}"),
        "-ex",
        &format!("target remote {}", session.socket),
        session.vmlinux.as_str(),
    ]
    .map(String::from)
    .into();
    argv.extend(extra.iter().cloned());
    argv
}

/// Whether process `pid` is a qemu that still runs: a pid can be reused, and a killed qemu can
/// stay a zombie (see [`crate::proc::live_comm`]).
fn qemu_runs(pid: u32) -> bool {
    crate::proc::live_comm(pid).is_some_and(|comm| comm.starts_with("qemu-system"))
}

/// Fails, naming it, while the qemu of an earlier `qemu --gdb` of this arch still runs: a second
/// one would take its socket away.
pub fn check_free(ctx: &Ctx) -> Result<()> {
    let path = session_path(ctx);
    let Ok(text) = fs::read_to_string(&path) else { return Ok(()) };
    let Ok(session) = Session::parse(&path, &text) else { return Ok(()) };
    if qemu_runs(session.qemu_pid) {
        bail!(
            "--gdb: the qemu of an earlier `cargo xtask qemu --gdb` (pid {}) still runs on {}: quit it (Ctrl-a x) or `kill {}` first",
            session.qemu_pid,
            session.socket,
            session.qemu_pid
        );
    }
    Ok(())
}

/// `cargo xtask gdb [-- ARGS]`: gdb on the running `qemu --gdb` of this arch.
pub fn run(ctx: &Ctx, extra: &[String]) -> Result<()> {
    let path = session_path(ctx);
    let none = || format!("no `cargo xtask qemu --gdb` has run for {} (no {path}): start one first", ctx.arch.name);
    let text = fs::read_to_string(&path).with_context(none)?;
    let session = Session::parse(&path, &text)?;
    let alive = || qemu_runs(session.qemu_pid);
    // The session is written as qemu starts; its socket follows once qemu has set up the stub.
    let start = std::time::Instant::now();
    while alive() && !session.socket.exists() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            bail!(
                "qemu's gdb stub socket {} did not appear in 30 s: start `cargo xtask qemu --gdb` again",
                session.socket
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if !alive() {
        bail!("the qemu of the last `cargo xtask qemu --gdb` (pid {}) has ended: start it again", session.qemu_pid);
    }
    let argv = gdb_argv(&session, extra);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let step = crate::step::Step::new(&ctx.build, &argv).mount(&session.source, true).interactive();
    crate::prepare::runner(ctx)?.run(&step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            socket: "/b/gdb-x86_64.sock".into(),
            vmlinux: "/b/obj/linux-x86-fast-debug/vmlinux".into(),
            source: "/b/src/linux".into(),
            qemu_pid: 42,
        }
    }

    #[test]
    fn only_a_qemu_that_is_not_a_zombie_is_live() {
        // A running process that is not qemu (this test), and none; zombies: crate::proc's tests.
        assert!(!qemu_runs(std::process::id()));
        assert!(!qemu_runs(0));
    }

    #[test]
    fn a_session_reads_back_what_was_written() {
        assert_eq!(Session::parse("f".into(), &session().to_text()).unwrap(), session());
        let err = Session::parse("f".into(), "socket /s\n").unwrap_err().to_string();
        assert_eq!(err, "f: no `vmlinux` line");
    }

    #[test]
    fn gdb_loads_the_helpers_attaches_then_runs_the_users_arguments() {
        let extra = ["-batch".to_owned(), "-ex".to_owned(), "bt".to_owned()];
        assert_eq!(
            gdb_argv(&session(), &extra),
            [
                "gdb-multiarch",
                "-q",
                "-iex",
                "add-auto-load-safe-path /b/obj/linux-x86-fast-debug",
                "-ex",
                "target remote /b/gdb-x86_64.sock",
                "/b/obj/linux-x86-fast-debug/vmlinux",
                "-batch",
                "-ex",
                "bt",
            ]
        );
    }

    #[test]
    fn qemu_starts_halted_with_the_stub_on_the_socket() {
        assert_eq!(
            qemu_args("/b/gdb.sock".into()),
            ["-S", "-chardev", "socket,id=teenygdb,path=/b/gdb.sock,server=on,wait=off", "-gdb", "chardev:teenygdb"]
        );
    }
}
