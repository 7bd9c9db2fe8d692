//! An engine that runs a program, so any script gets what the runner gives its engines: a
//! schedule in a time zone, jitter, catch-up, no overlapping runs, `max_runtime`, heartbeats,
//! alerts once per incident, and a checkpoint that survives crashes.
//!
//! ```toml
//! [tasks.backup]
//! engine = "command"
//! cron = "30 2 * * *"
//! tz = "Europe/London"
//! program = "/usr/local/bin/backup.sh"
//! args = ["--incremental"]
//! ```
//!
//! The program runs with its working directory set to the config's folder (or `dir`) and these
//! environment variables:
//!
//! | variable | value |
//! |---|---|
//! | `UNATTENDED_TASK` | the task's name |
//! | `UNATTENDED_RUN` | the run's id in the store |
//! | `UNATTENDED_CHECKPOINT` | a file holding the last saved checkpoint (JSON, `null` if none); what the program leaves there is saved when it exits |
//!
//! Its exit status says what happened, in the `sysexits.h` words scripts already use:
//!
//! | exit status | the runner |
//! |---|---|
//! | 0 | success |
//! | 75 (`EX_TEMPFAIL`) | a temporary failure: runs again after `retry_after` (default 5 min) |
//! | 77 (`EX_NOPERM`) | credentials refused: the task is disabled and a human alerted |
//! | 78 (`EX_CONFIG`), 64 (`EX_USAGE`) | a fault retrying cannot fix: disabled, alerted |
//! | anything else, or killed by a signal | the run failed; the next slot runs it again |
//!
//! The last lines of its standard error go in the run's record. A run stopped by the runner
//! (shutdown, `max_runtime`) kills the program.

mod engine;

pub use self::engine::{CommandEngine, CommandSettings};

/// Registers the `command` engine in `kinds`.
pub fn register(kinds: unattended_runner::EngineKinds) -> unattended_runner::EngineKinds {
    kinds.with("command", |s: CommandSettings, setup| CommandEngine::new(s, setup))
}
