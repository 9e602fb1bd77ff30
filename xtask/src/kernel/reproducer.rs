//! `reproducer`, beside a kernel's build record in its `O=` folder, as TuxMake leaves one: a
//! shell script with the commands that build this kernel again from a fresh clone of this
//! repository. It is written (atomically, executable) when the build starts; nothing here runs
//! it. Its text is a pure function of what it says, each word quoted for sh.

use super::Config;
use crate::ctx::Ctx;
use crate::shell::{join, quote};
use crate::sources::Tree;
use anyhow::Result;
use camino::Utf8Path;

pub const FILE: &str = "reproducer";

/// Where a git checkout is: its commit, whether it has changes that commit lacks, its remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    pub commit: String,
    /// `git status --porcelain` lists something: edits, or files git does not know.
    pub dirty: bool,
    /// `origin`'s URL, if it has one.
    pub remote: Option<String>,
}

/// What a reproducer says.
pub struct Script<'a> {
    pub config: &'a str,
    pub arch: &'a str,
    /// This repository, and its git state (None: not the top of a git checkout, or no git).
    pub root: &'a Utf8Path,
    pub checkout: Option<Checkout>,
    /// What the kernel source is, said in a comment.
    pub source: String,
    /// Variables that matter and have no option (`TEENY_DOWNLOADS`).
    pub exports: Vec<(String, String)>,
    /// The `cargo xtask …` words.
    pub command: Vec<String>,
    /// Why the command is not `kernel NAME`, in a comment (a variant).
    pub note: Option<String>,
}

/// The script's text.
pub fn text(s: &Script) -> String {
    let mut lines = vec![
        "#!/bin/sh".to_owned(),
        format!("# Builds the kernel `{}` ({}) of this folder again, from a fresh clone.", s.config, s.arch),
        "# Written by cargo xtask when the build started; teeny-build.json beside it is its record.".to_owned(),
        "set -eu".to_owned(),
    ];
    match &s.checkout {
        Some(c) => {
            let from = c.remote.clone().unwrap_or_else(|| s.root.to_string());
            if c.remote.is_some() {
                lines.push(format!(
                    "# this checkout is {}; {} must be on its remote",
                    quote(s.root.as_str()),
                    c.commit
                ));
            }
            lines.push(format!("git clone {} teeny-linux", quote(&from)));
            lines.push("cd teeny-linux".to_owned());
            lines.push(format!("git checkout {}", quote(&c.commit)));
            if c.dirty {
                lines.push(format!(
                    "# uncommitted changes: the checkout built from had edits or new files that {} lacks (git status)",
                    c.commit
                ));
            }
        }
        None => {
            lines.push(format!("# {} is not a git checkout: the build runs there", quote(s.root.as_str())));
            lines.push(format!("cd {}", quote(s.root.as_str())));
        }
    }
    lines.push(format!("# kernel source: {}", s.source));
    for (key, value) in &s.exports {
        lines.push(format!("export {key}={}", quote(value)));
    }
    if let Some(note) = &s.note {
        lines.push(format!("# {note}"));
    }
    lines.push(join(&s.command));
    lines.join("\n") + "\n"
}

/// The git state of `dir` when it is the top of a git checkout (git's own probes, quiet).
pub fn checkout(dir: &Utf8Path) -> Option<Checkout> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    Some(Checkout {
        commit: git(&["rev-parse", "--verify", "HEAD"])?,
        dirty: !git(&["status", "--porcelain"])?.is_empty(),
        remote: git(&["remote", "get-url", "origin"]).filter(|r| !r.is_empty()),
    })
}

/// What the kernel source of `tree` is, for the comment.
fn source(ctx: &Ctx, tree: &Tree) -> String {
    match (&ctx.kernel.local, &tree.id) {
        (Some(tarball), Some(sha)) => format!("{tarball} (--kernel-source), version {}, sha256 {sha}", tree.version),
        (None, Some(sha)) => format!("sources.txt's linux {}, sha256 {sha}", tree.version),
        (_, None) => match checkout(&tree.dir) {
            Some(c) => format!(
                "the tree {} (--kernel-source), version {}, at commit {}{}",
                tree.dir,
                tree.version,
                c.commit,
                if c.dirty { ", with uncommitted changes" } else { "" }
            ),
            None => format!("the tree {} (--kernel-source), version {}, not a git checkout", tree.dir, tree.version),
        },
    }
}

/// Writes the reproducer of the build of `config` into its `O=` folder `obj`.
pub(super) fn write(ctx: &Ctx, obj: &Utf8Path, config: &Config, tree: &Tree) -> Result<()> {
    let mut command = vec!["cargo".to_owned(), "xtask".to_owned()];
    command.extend(ctx.build_flags());
    // A variant's config is made by the command that boots it: there is no `kernel` of it.
    let note = match config.variant_of {
        None => {
            command.extend(["kernel".to_owned(), config.name.to_owned()]);
            None
        }
        Some(base) => {
            command.extend(ctx.command.iter().cloned());
            Some(format!("{} is a variant of {base}, built by this command (which also boots it):", config.name))
        }
    };
    let exports = std::env::var("TEENY_DOWNLOADS").ok().filter(|d| !d.is_empty());
    let script = Script {
        config: config.name,
        arch: ctx.arch.name,
        root: &ctx.root,
        checkout: checkout(&ctx.root),
        source: source(ctx, tree),
        exports: exports.map(|d| ("TEENY_DOWNLOADS".to_owned(), d)).into_iter().collect(),
        command,
        note,
    };
    crate::disk::write_executable(&obj.join(FILE), text(&script).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(checkout: Option<Checkout>) -> Script<'static> {
        Script {
            config: "fast",
            arch: "x86_64",
            root: "/home/u/teeny linux".into(),
            checkout,
            source: "sources.txt's linux 6.1.127, sha256 abc".into(),
            exports: vec![("TEENY_DOWNLOADS".into(), "/var/cache/it's".into())],
            command: ["cargo", "xtask", "--arch", "x86_64", "kernel", "fast"].map(String::from).into(),
            note: None,
        }
    }

    #[test]
    fn a_reproducer_clones_checks_out_exports_and_builds() {
        let commit = "0123456789abcdef0123456789abcdef01234567".to_owned();
        let text = text(&script(Some(Checkout { commit: commit.clone(), dirty: false, remote: None })));
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') || l.starts_with("#!")).collect();
        assert_eq!(
            lines,
            [
                "#!/bin/sh",
                "set -eu",
                "git clone '/home/u/teeny linux' teeny-linux",
                "cd teeny-linux",
                &format!("git checkout {commit}"),
                r"export TEENY_DOWNLOADS='/var/cache/it'\''s'",
                "cargo xtask --arch x86_64 kernel fast",
            ]
        );
        assert!(text.contains("# kernel source: sources.txt's linux 6.1.127, sha256 abc\n"), "{text}");
        assert!(!text.contains("uncommitted"), "{text}");
    }

    #[test]
    fn a_reproducer_says_what_the_clone_lacks() {
        let dirty = Checkout { commit: "c0ffee".into(), dirty: true, remote: Some("https://example.org/t.git".into()) };
        let text = text(&script(Some(dirty)));
        assert!(text.contains("\ngit clone https://example.org/t.git teeny-linux\n"), "{text}");
        assert!(text.contains("# uncommitted changes: "), "{text}");
        assert!(text.contains("c0ffee must be on its remote"), "{text}");
        let text = super::text(&script(None));
        assert!(text.contains("\ncd '/home/u/teeny linux'\n") && !text.contains("git clone"), "{text}");
        let variant = Script { note: Some("fast-kunit is a variant of fast".into()), ..script(None) };
        assert!(super::text(&variant).contains("# fast-kunit is a variant of fast\ncargo xtask"));
    }

    /// The script is valid sh (`sh -n` parses it without running it).
    #[test]
    fn sh_parses_the_reproducer() {
        let text = text(&script(Some(Checkout { commit: "c".into(), dirty: true, remote: None })));
        let status = std::process::Command::new("sh").args(["-n", "-c", &text]).status().unwrap();
        assert!(status.success(), "{text}");
    }
}
