//! A runner that keeps automation alive unattended.
//!
//! Scripts that work once die to the environment. The runner is what a person runs so that
//! they do not: it owns **time** (each task's schedule: intervals or cron in an IANA zone,
//! start jitter, catch-up after downtime, no overlapping runs), **isolation** (each run is its
//! own tokio task: a panic, an error or a run past `max_runtime` ends that run only), **memory**
//! (every state change and run is written to the store, so a restarted runner resumes a task
//! from its last checkpoint) and **judgement** (what a failure's [`Disposition`] means: run again
//! at *t*, degrade, or disable the task and alert a human, once).
//!
//! An engine implements one trait, [`Engine`]; it is given a [`TaskContext`] with a client per
//! service it uses (shared with every other task on that service: breakers, pauses, budgets
//! and tokens are learnt once), its checkpoint, the clock and a cancellation signal.
//!
//! ```text
//! config (TOML) → RunnerConfig → Runner::run → per task: plan → start → Engine::run(cx) → finish
//!                                      └── watch: heartbeats (late / recovered), memory, disk
//! ```
//!
//! Every clock read and sleep goes through [`Clock`], so under a paused tokio runtime with
//! in-process transports ([`RunnerBuilder::fallback_transport`]) weeks of operation run in
//! seconds, reproducibly from one seed.
//!
//! # Example
//!
//! ```
//! use tokio_util::sync::CancellationToken;
//! use unattended_runner::{Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError};
//!
//! #[derive(Clone)]
//! struct Hello;
//!
//! #[async_trait::async_trait]
//! impl Engine for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn services(&self) -> Vec<String> { Vec::new() }
//!     async fn run(&self, _: &mut TaskContext) -> Result<RunSummary, TaskError> {
//!         Ok(RunSummary::new().note("said hello"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let kinds = EngineKinds::new().with_engine(Hello);
//! let config = RunnerConfig::parse(
//!     "[tasks.greet]\nengine = \"hello\"\nevery = \"15m\"\ntz = \"UTC\"\n",
//!     dir.path().join("unattended.toml"),
//!     &kinds,
//! )?;
//! let clock = unattended_core::Clock::starting_at("2026-12-01T10:00:00Z".parse()?);
//! let mut runner = Runner::builder(config).clock(clock).seed(7).build().await?;
//! let stop = CancellationToken::new();
//! let stopper = stop.clone();
//! tokio::spawn(async move {
//!     clock.sleep(std::time::Duration::from_secs(3600)).await; // an hour, at once when paused
//!     stopper.cancel();
//! });
//! runner.run(stop).await?;
//! let runs = unattended_store::StateStore::runs(runner.store(), "greet", 10).await?;
//! assert_eq!(runs.len(), 5); // 10:00, 10:15, 10:30, 10:45, 11:00
//! # Ok(())
//! # }
//! ```

mod alerting;
mod config;
mod context;
mod cron;
mod engine;
mod error;
mod machine;
mod metrics;
mod monitor;
mod runner;
mod schedule;
mod services;

pub use self::alerting::AlertNote;
pub use self::config::{
    ConfigError, ConfigIssue, DEFAULT_FILE, MonitorSettings, OAuthSettings, RunnerConfig,
    RunnerSettings, ServiceEntry, StateSettings, TaskSpec, TaskWindow,
};
pub use self::context::{Progress, Skipped, TaskContext};
pub use self::cron::CronExpr;
pub use self::engine::{Engine, EngineKinds, EngineSetup, RunSummary, TaskError};
pub use self::error::RunnerError;
pub use self::machine::FAILING_ALERT_AFTER;
pub use self::monitor::{free_bytes, resident_bytes};
pub use self::runner::{HeldView, OnceOutcome, Runner, RunnerBuilder, RunnerView, TaskView};
pub use self::schedule::{Cadence, MISSED_COUNT_CAP, Planned, Schedule};
pub use self::services::{Transport, transport};
pub use unattended_core::{Clock, Disposition};
