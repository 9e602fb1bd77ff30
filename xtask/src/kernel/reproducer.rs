//! The `reproducer` script each kernel build leaves beside its record, as TuxMake leaves one: the
//! commands that build this kernel again from a fresh clone, at the commit it was built from,
//! with the config text it was built from (a variant's or a hand-edited one's too).

use crate::ctx::Ctx;
use crate::runner::display;
use camino::Utf8Path;

pub const FILE: &str = "reproducer";

/// What the script needs to know.
pub struct Inputs<'a> {
    /// Where to clone from: the checkout's `origin`, or its folder.
    pub origin: String,
    /// `git rev-parse HEAD`, and whether the checkout had changes that commit lacks.
    pub commit: Option<(String, bool)>,
    /// The `kernel-configs/` folder name (`--arch`'s) and the config's name and text.
    pub arch: &'a str,
    pub name: &'a str,
    pub text: &'a str,
    /// The global flags that decide what is built (`--arch`, `--toolchain`, `--kernel-version`).
    pub flags: Vec<String>,
    /// A local kernel source, which the other machine must have at the same path.
    pub kernel_source: Option<&'a Utf8Path>,
}

/// The heredoc's end line: no config line looks like it.
const END: &str = "TEENY_CONFIG_END";

/// The script's text. Every word is quoted for sh by [`display`]; the config goes in a quoted
/// heredoc, so nothing in it is expanded.
pub fn script(i: &Inputs) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Builds this kernel again from a fresh clone of teeny-linux (written by its build).\nset -eu\n",
    );
    s += &format!(
        "{}\ncd teeny-linux\n",
        display(&["git".into(), "clone".into(), i.origin.clone(), "teeny-linux".into()])
    );
    match &i.commit {
        Some((commit, dirty)) => {
            s += &format!("git checkout --quiet {commit}\n");
            if *dirty {
                s +=
                    "# The checkout had uncommitted changes, which this commit lacks (the config below is as built).\n";
            }
        }
        None => s += "# Not a git checkout: the clone's newest commit is used.\n",
    }
    if let Some(source) = i.kernel_source {
        s += &format!(
            "# The kernel source, which must be at this path here too:\nexport TEENY_KERNEL_SOURCE={}\n",
            display(&[source.to_string()])
        );
    }
    s += &format!(
        "cat > {} <<'{END}'\n{}\n{END}\n",
        display(&[format!("kernel-configs/{}/{}.config", i.arch, i.name)]),
        i.text.trim_end()
    );
    let mut argv: Vec<String> = vec!["cargo".into(), "xtask".into()];
    argv.extend(i.flags.iter().cloned());
    argv.extend(["kernel".into(), i.name.into()]);
    s += &display(&argv);
    s.push('\n');
    s
}

/// The inputs of this build: the checkout's git state is asked of git, on the host.
pub fn inputs<'a>(ctx: &'a Ctx, name: &'a str, text: &'a str) -> Inputs<'a> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(&ctx.root).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit =
        git(&["rev-parse", "HEAD"]).map(|c| (c, git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty())));
    let mut flags = vec!["--arch".to_owned(), ctx.arch.name.to_owned()];
    if let Some(suffix) = ctx.toolchain.suffix() {
        flags.extend(["--toolchain".to_owned(), suffix.to_owned()]);
    }
    if let Some(version) = &ctx.kernel.wanted {
        flags.extend(["--kernel-version".to_owned(), version.clone()]);
    }
    Inputs {
        origin: git(&["remote", "get-url", "origin"]).unwrap_or_else(|| ctx.root.to_string()),
        commit,
        arch: ctx.arch.name,
        name,
        text,
        flags,
        kernel_source: ctx.kernel.local.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_clones_checks_out_writes_the_config_and_builds() {
        let inputs = Inputs {
            origin: "/home/me/teeny linux".into(),
            commit: Some(("abc123".into(), true)),
            arch: "arm64",
            name: "fast-share",
            text: "#: base allnoconfig\nCONFIG_LOCALVERSION=\"-$(x)\"\n",
            flags: vec!["--arch".into(), "arm64".into(), "--toolchain".into(), "clang".into()],
            kernel_source: Some("/usr/src/linux-source-6.12.tar.xz".into()),
        };
        let s = script(&inputs);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!/bin/sh");
        assert!(lines.contains(&"git clone '/home/me/teeny linux' teeny-linux"), "{s}");
        assert!(lines.contains(&"git checkout --quiet abc123"), "{s}");
        assert!(s.contains("uncommitted changes"), "{s}");
        assert!(lines.contains(&"export TEENY_KERNEL_SOURCE=/usr/src/linux-source-6.12.tar.xz"), "{s}");
        // The config as built, unexpanded, then the build.
        assert!(s.contains("cat > kernel-configs/arm64/fast-share.config <<'TEENY_CONFIG_END'\n#: base allnoconfig\nCONFIG_LOCALVERSION=\"-$(x)\"\nTEENY_CONFIG_END\n"), "{s}");
        assert_eq!(lines.last(), Some(&"cargo xtask --arch arm64 --toolchain clang kernel fast-share"));
    }
}
