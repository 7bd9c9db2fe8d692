//! A rig for killing the real `unattended run` process: every engine's mocks served on
//! 127.0.0.1 from the caller's process, a config and a store pointing at them, content fed
//! between the kills, and the audit of what reached the services.
//!
//! The crash campaign (`tests/crash.rs` of the `unattended` package) starts the binary with
//! [`CrashRig::config`] and [`CrashRig::env`], kills it with SIGKILL at seeded moments, restarts
//! it, and at the end asks [`CrashRig::audit`] whether anything was lost or done twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use unattended_core::Clock;

use crate::audit::Audit;
use crate::world::{Cadences, World};

/// The mocks, the folder and the config one campaign runs against.
#[derive(Debug)]
pub struct CrashRig {
    world: World,
    config: PathBuf,
}

/// What the audit found, over every engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrashAudit {
    /// Items fed (videos, posts per site, mails, price changes).
    pub fed: usize,
    /// Done exactly once, intact.
    pub once: usize,
    /// Not done yet, still where their engine finds them.
    pub waiting: usize,
    /// Done more than once.
    pub duplicated: usize,
    /// Gone without being done, or done wrong.
    pub lost: usize,
}

impl CrashRig {
    /// Serves the mocks on 127.0.0.1 (on the caller's tokio runtime, real time), writes the
    /// config and content into `dir` and saves the Google grant in the store, as
    /// `unattended auth google` would.
    ///
    /// # Errors
    ///
    /// A socket, a file or the store could not be made.
    pub async fn new(dir: &Path, seed: u64) -> std::io::Result<Self> {
        let clock = Clock::system();
        let cadences = Cadences {
            uploads: Duration::from_secs(1),
            mail: Duration::from_secs(1),
            blog: Duration::from_secs(1),
            prices: Duration::from_secs(2),
            jitter: Duration::from_millis(200),
            attempt: Duration::from_secs(5),
        };
        let mut world = World::new(dir, clock, seed, cadences, Duration::from_secs(3600), false)?;
        world.serve().await?;
        world.seed_content()?;
        let kinds = crate::world::kinds();
        world.config(&kinds).map_err(std::io::Error::other)?;
        let store = world.store(false).await.map_err(std::io::Error::other)?;
        drop(store);
        let config = dir.join("unattended.toml");
        Ok(Self { world, config })
    }

    /// The config file to run.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The environment the runner needs (the OAuth client and the blogs' API key).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        crate::world::environment()
    }

    /// New work for every engine: a video, a post, a mail, a price change.
    ///
    /// # Errors
    ///
    /// A file could not be written.
    pub fn feed(&mut self) -> std::io::Result<()> {
        self.world.feed_video()?;
        self.world.feed_post()?;
        self.world.feed_mail();
        self.world.change_price();
        Ok(())
    }

    /// What reached the services, set against what was fed.
    pub fn audit(&self) -> CrashAudit {
        let audit = Audit::of(&self.world);
        let mut sum = CrashAudit::default();
        for (_, tally) in audit.rows() {
            sum.fed += tally.fed;
            sum.once += tally.once;
            sum.waiting += tally.waiting;
            sum.duplicated += tally.duplicated;
            sum.lost += tally.lost;
        }
        sum
    }

    /// The audit, one line per engine, for a failure message.
    pub fn audit_rows(&self) -> String {
        let audit = Audit::of(&self.world);
        audit.rows().iter().map(|(name, t)| format!("{name}: {t:?}\n")).collect()
    }
}
