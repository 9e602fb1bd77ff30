//! One command of the walk-through, as data: what [`crate::runner::Runner`] runs, in the
//! builder container or on the host. Its own module, so that what builds the container's
//! command line need not import the runner that runs it.

use camino::{Utf8Path, Utf8PathBuf};

/// A bind mount besides the repository and the build folder, which are always mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub path: Utf8PathBuf,
    pub read_only: bool,
}

/// One command of the walk-through, as the user would type it inside the builder.
#[derive(Clone, Debug, Default)]
pub struct Step {
    pub argv: Vec<String>,
    pub cwd: Utf8PathBuf,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Needs the user's terminal (menuconfig and friends).
    pub interactive: bool,
    /// The log under build/logs/ that gets the output (`NAME.log`), e.g. the `O=` folder's name.
    pub log: String,
    /// Reaches the host's network (distcc workers); every other step runs without one.
    pub network: bool,
}

impl Step {
    pub fn new(cwd: &Utf8Path, argv: &[&str]) -> Step {
        Step {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: cwd.to_owned(),
            log: "steps".into(),
            ..Step::default()
        }
    }
    pub fn log(mut self, name: &str) -> Step {
        self.log = name.to_owned();
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Step {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
    pub fn mount(mut self, path: &Utf8Path, read_only: bool) -> Step {
        self.mounts.push(Mount { path: path.to_owned(), read_only });
        self
    }
    pub fn interactive(mut self) -> Step {
        self.interactive = true;
        self
    }
    pub fn network(mut self) -> Step {
        self.network = true;
        self
    }
}
