//! `unattended demo` and `unattended simulate`: the real runner and its engines against the
//! testkit's mocks of Google OAuth, YouTube, Gmail, DEV, Hashnode and a website, under a chaos
//! plan, with an audit read from the mocks' own state.
//!
//! - [`DemoArgs`] (`unattended demo`): about a minute in real time, over sockets on 127.0.0.1,
//!   with a live view and a report at the end; exit code 1 if the audit finds a loss or a
//!   duplicate.
//! - [`SimulateArgs`] (`unattended simulate`): weeks in seconds under a paused clock, in-process,
//!   with a seeded fault mix; the same seed gives the same event log, byte for byte.
//!
//! Both can run the same chaos against a naive setup too (`--naive`): the same engines and
//! runner on clients with three fixed tries a second apart, no breaker and no retry budget,
//! as scripts without these layers do.
//!
//! The pieces: the mocks, the files they are fed and the config that points the engines at them
//! (`world`), the faults and when they strike (`chaos`), what reached the services (`audit`),
//! and the tables (`report`).

mod audit;
mod chaos;
mod crash;
mod demo;
#[cfg(test)]
mod matrix;
mod play;
mod report;
#[cfg(test)]
mod secrets;
mod simulate;
mod world;

pub use crash::{CrashAudit, CrashRig};
pub use demo::DemoArgs;
pub use simulate::{SimulateArgs, Simulation, simulate};

/// The engines the demo and the simulation configure: youtube, email, blog and scrape.
pub fn engines() -> EngineKinds {
    world::kinds()
}

use unattended_cli::{Extension, ExtensionFuture, Global};
use unattended_runner::EngineKinds;

/// The subcommands this crate adds to `unattended`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Watches the runner heal itself: every engine against local mocks, under a chaos plan,
    /// for about a minute; then a report and an audit of what reached the services.
    #[command(after_long_help = demo::AFTER_HELP)]
    Demo(DemoArgs),
    /// Weeks of the same system in seconds, under a paused clock and a seeded fault mix; prints
    /// uptime, manual fixes, lost tasks, rate-limit violations and duplicated effects.
    #[command(after_long_help = simulate::AFTER_HELP)]
    Simulate(SimulateArgs),
}

impl Extension for Command {
    fn run(self, global: Global, kinds: EngineKinds) -> ExtensionFuture {
        match self {
            Self::Demo(args) => Box::pin(demo::run(global, kinds, args)),
            Self::Simulate(args) => Box::pin(simulate::run_command(global, kinds, args)),
        }
    }
}
