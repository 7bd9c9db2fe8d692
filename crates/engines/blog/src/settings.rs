//! The task's settings: the folder, the targets, the Hashnode publication, the pace of writes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A place posts are published to. Its name is also the name of the service the task calls
/// (`[services.dev]`, `[services.hashnode]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// DEV (Forem API v1).
    Dev,
    /// Hashnode (its GraphQL API).
    Hashnode,
}

impl Target {
    /// The name, as in front matter and service tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Hashnode => "hashnode",
        }
    }

    /// The least time between two writes when the settings give none: DEV throttles writes to
    /// one per second per key; Hashnode allows 500 mutations a minute.
    pub fn default_pace(self) -> Duration {
        match self {
            Self::Dev => Duration::from_secs(1),
            Self::Hashnode => Duration::from_millis(200),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The settings of a `blog` task (the task table's keys that are not the runner's).
///
/// ```toml
/// [tasks.blog]
/// engine = "blog"
/// every = "15m"
/// folder = "posts"                       # relative to the config file
/// targets = ["dev", "hashnode"]          # the primary first (default ["dev"])
/// hashnode_publication = "6650…"         # needed when Hashnode is a target
/// pace = { dev = "1s" }                  # least time between writes, per target
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BlogSettings {
    /// The folder of posts (`*.md`, subfolders included).
    pub folder: PathBuf,
    /// Every target the task publishes to, the primary first; a post's front matter may name
    /// some of them, in its own order (default `["dev"]`).
    #[serde(default = "default_targets")]
    pub targets: Vec<Target>,
    /// The id of the Hashnode publication posts go to.
    #[serde(default)]
    pub hashnode_publication: Option<String>,
    /// The least time between two writes to a target.
    #[serde(default)]
    pub pace: Pace,
}

fn default_targets() -> Vec<Target> {
    vec![Target::Dev]
}

/// The least time between two writes, per target (defaults: [`Target::default_pace`]).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Pace {
    /// DEV.
    #[serde(default, with = "unattended_client::opt_duration")]
    pub dev: Option<Duration>,
    /// Hashnode.
    #[serde(default, with = "unattended_client::opt_duration")]
    pub hashnode: Option<Duration>,
}

impl Pace {
    /// The pace of `target`.
    pub fn of(&self, target: Target) -> Duration {
        let set = match target {
            Target::Dev => self.dev,
            Target::Hashnode => self.hashnode,
        };
        set.unwrap_or_else(|| target.default_pace())
    }
}

impl BlogSettings {
    /// Checks what serde cannot: at least one target, none twice, a publication for Hashnode.
    ///
    /// # Errors
    ///
    /// What is wrong, in words for the config's reader.
    pub fn check(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("`targets` must name at least one of \"dev\", \"hashnode\"".to_owned());
        }
        for (i, t) in self.targets.iter().enumerate() {
            if self.targets[..i].contains(t) {
                return Err(format!("`targets` names {t} twice"));
            }
        }
        let publication = self.hashnode_publication.as_deref().map(str::trim);
        if self.targets.contains(&Target::Hashnode) && publication.is_none_or(str::is_empty) {
            return Err("`targets` has \"hashnode\": set `hashnode_publication` to the id of the \
                 publication posts go to"
                .to_owned());
        }
        Ok(())
    }
}
