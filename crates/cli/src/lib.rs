//! The `unattended` command line, for a runner with any set of engines.
//!
//! The `unattended` binary calls [`main`] with the four engines of the workspace; an engine's own
//! small binary calls it with that engine alone:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     unattended_cli::main(unattended_runner::EngineKinds::new())
//! }
//! ```
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done: the command did what it was asked (a task that ran degraded is done) |
//! | 1 | a task failed, and the runner will try it again on its own |
//! | 2 | the command line or the config file is wrong: nothing ran |
//! | 3 | a human is needed: a task is disabled (credentials revoked, a fault retrying cannot fix) |
//!
//! `auth` ends with 0 once the refresh token is saved, 2 for a mistake in the command line, the
//! config or the environment (no such credential, no client id), 3 when no authorization came of
//! it (consent refused, no answer in time, an answer for another request, the code refused by
//! the token endpoint), and 1 when the token endpoint could not be reached (trying again may
//! work).
//!
//! Errors print like cargo's: `error: <what happened>`, its causes, then `help: <what to do>`.
//!
//! # `status --json` and `/status.json`
//!
//! One object: `at`, `state` (the store's path, or its server without the password), `tasks`
//! (each: `name`, `engine`, `enabled`, `state`, `since`, `next_run`, `last_success`, `reason`,
//! `last_error`, `last_disposition`, `failures`, `last_run`, `recent_runs` (the last 24 hours,
//! newest first; each `started_at`, `finished_at`, `outcome`, `summary`, `error`, `runner`),
//! `progress` (`at`, `done`, `total`, `note`; only from a running process) and `runner` (the
//! runner holding the task now: `name`, `host`, `pid`, `until`; `null` when none does)),
//! `open_breakers` and `paused_hosts` (`service`, `key`,
//! `until`), `open_incidents`, `undelivered_alerts`, `recent_alerts` (`incident`, `kind`:
//! `raised` or `recovered`, `task`, `at`, `title`, `help`). Times are RFC 3339 in UTC. Fields
//! may be added; none is removed or changes meaning.
//!
//! # The status page
//!
//! `run --http ADDR` serves `/` (a page that refreshes itself from `/status.json`),
//! `/status.json` and `/metrics` (Prometheus text). Off loopback, `[runner] http_token_env`
//! names the variable holding the token every request must carry (`Authorization: Bearer`, or
//! a browser's Basic login with the token as the password).

mod auth;
mod bar;
mod check;
mod fetch;
mod http;
mod logging;
mod once;
mod reset;
mod run;
mod status;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use unattended_runner::{EngineKinds, RunnerConfig};

pub use self::logging::LogFormat;
pub use self::status::status_json;

/// Keeps scheduled jobs alive unattended: expired tokens are refreshed, rate limits waited out,
/// outages skipped and retried, crashes resumed from the last checkpoint, and a human alerted
/// only when a human is needed.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 done, 1 a task failed (it will be retried), 2 usage or config \
error, 3 a human is needed.\nSee `unattended help run` for a first config, `unattended help auth` \
for OAuth credentials."
)]
pub struct Cli<X: Subcommand = NoExtension> {
    /// The config file (default: $UNATTENDED_CONFIG, else ./unattended.toml).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log lines as JSON or text; `auto` is text on a terminal, JSON otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command<X>,
}

#[derive(Debug, Subcommand)]
enum Command<X: Subcommand> {
    /// Runs every task on its schedule until stopped (SIGTERM or Ctrl-C).
    #[command(after_long_help = run::EXAMPLE)]
    Run(run::Args),
    /// Runs one task now, once, and records it as `run` would (for people who keep cron).
    Once(once::Args),
    /// Shows every task's state, last success, next run and last error, from the store.
    Status(status::Args),
    /// Validates the config (every mistake, with line and column) and prints each task's next runs.
    Check(check::Args),
    /// Sends one request through the full resilient stack, with the store's breakers and pauses.
    Fetch(fetch::Args),
    /// Makes a disabled or failing task runnable again (the running runner picks it up).
    Reset(reset::Args),
    /// Authorizes an OAuth credential in a browser, once: saves its refresh token in the store
    /// and makes runnable the tasks its refusal disabled.
    #[command(after_long_help = auth::EXAMPLE)]
    Auth(auth::Args),
    #[command(flatten)]
    Extra(X),
}

/// Subcommands a binary adds to the standard ones (the `unattended` binary adds `demo` and
/// `simulate`): a clap `Subcommand` that knows how to run itself.
pub trait Extension: Subcommand + fmt::Debug + Send + 'static {
    /// Runs the subcommand, with the global options and the engines.
    fn run(self, global: Global, kinds: EngineKinds) -> ExtensionFuture;
}

/// What an [`Extension`] returns.
pub type ExtensionFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Exit, Error>> + Send>>;

/// The global options, as given.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Global {
    /// `--config`, else `UNATTENDED_CONFIG`, else `./unattended.toml`.
    pub config: PathBuf,
    /// `--log-format`.
    pub log_format: LogFormat,
}

/// No extra subcommands.
#[derive(Debug, Subcommand)]
pub enum NoExtension {}

impl Extension for NoExtension {
    fn run(self, _: Global, _: EngineKinds) -> ExtensionFuture {
        match self {}
    }
}

impl Global {
    /// Installs logging for an extension's command: to standard output when `stdout`, else to
    /// standard error, at `default` unless `RUST_LOG` says otherwise.
    pub fn init_logging(&self, stdout: bool, default: &str) {
        let sink = if stdout { logging::Sink::Stdout } else { logging::Sink::Stderr };
        logging::init(self.log_format, sink, default);
    }
}

/// Runs the command line with `kinds` as the engines a config may name; returns the exit code.
pub fn main(kinds: EngineKinds) -> ExitCode {
    main_with::<NoExtension>(kinds)
}

/// As [`main`], with the subcommands of `X` too.
pub fn main_with<X: Extension>(kinds: EngineKinds) -> ExitCode {
    let cli = Cli::<X>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return CliError::new(format!("cannot start the async runtime: {e}"), Code::Usage)
                .print();
        }
    };
    match runtime.block_on(execute(cli, kinds)) {
        Ok(code) => code.into(),
        Err(e) => e.print(),
    }
}

async fn execute<X: Extension>(cli: Cli<X>, kinds: EngineKinds) -> Result<Code, CliError> {
    let config = config_path(cli.config.clone());
    match cli.command {
        Command::Run(args) => run::run(&config, cli.log_format, &kinds, args).await,
        Command::Once(args) => once::run(&config, cli.log_format, &kinds, args).await,
        Command::Status(args) => status::run(&config, cli.log_format, &kinds, args).await,
        Command::Check(args) => check::run(&config, &kinds, args),
        Command::Fetch(args) => fetch::run(&config, cli.log_format, &kinds, args).await,
        Command::Reset(args) => reset::run(&config, &kinds, args).await,
        Command::Auth(args) => auth::run(&config, cli.log_format, &kinds, args).await,
        Command::Extra(x) => x.run(Global { config, log_format: cli.log_format }, kinds).await,
    }
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("UNATTENDED_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(unattended_runner::DEFAULT_FILE))
}

/// Reads and checks the config, or says what is wrong with it.
pub(crate) fn load(path: &std::path::Path, kinds: &EngineKinds) -> Result<RunnerConfig, CliError> {
    RunnerConfig::load(path, kinds).map_err(|e| {
        let help = match &e {
            unattended_runner::ConfigError::Read { .. } => format!(
                "give the config with `--config FILE` or UNATTENDED_CONFIG; `unattended help run` shows a first one (looked for {})",
                path.display()
            ),
            _ => "fix the places shown, then run `unattended check`".to_owned(),
        };
        CliError::new(e.to_string(), Code::Usage).help(help)
    })
}

/// What a command ended with: the documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: a task failed; the runner will try it again on its own.
    TaskFailed = 1,
    /// 2: the command line or the config file is wrong.
    Usage = 2,
    /// 3: a human is needed.
    NeedsHuman = 3,
}

pub(crate) use Exit as Code;

impl From<Code> for ExitCode {
    fn from(c: Code) -> Self {
        Self::from(c as u8)
    }
}

/// An error as the user sees it: what happened, why, what to do, and the exit code.
#[derive(Debug)]
pub struct Error {
    message: String,
    causes: Vec<String>,
    help: Option<String>,
    code: Code,
}

pub(crate) use Error as CliError;

impl Error {
    /// An error saying `message`, ending the command with `code`.
    pub fn new(message: impl Into<String>, code: Code) -> Self {
        Self { message: message.into(), causes: Vec::new(), help: None, code }
    }

    /// From an error and its `source()` chain.
    pub fn from_error(e: &(dyn std::error::Error + 'static), code: Code) -> Self {
        let mut err = Self::new(e.to_string(), code);
        let mut next = e.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !err.message.contains(&text) {
                err.causes.push(text);
            }
            next = cause.source();
        }
        err
    }

    /// Adds what the user should do.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn print(&self) -> ExitCode {
        eprintln!("{self}");
        self.code.into()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        for cause in &self.causes {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {help}")?;
        }
        Ok(())
    }
}

impl From<unattended_runner::RunnerError> for Error {
    fn from(e: unattended_runner::RunnerError) -> Self {
        use unattended_runner::RunnerError as E;
        let help = match &e {
            E::MissingEnv { var, .. } => {
                Some(format!("set {var} in the environment of the runner"))
            }
            E::Store(_) => Some(STATE_HELP.to_owned()),
            E::HeldElsewhere { .. } => {
                Some("`unattended status` shows which runner runs which task".to_owned())
            }
            E::UnknownTask { .. } => Some("`unattended status` lists the tasks".to_owned()),
            _ => None,
        };
        let code = if matches!(e, E::Store(_)) { Code::NeedsHuman } else { Code::Usage };
        let err = Self::from_error(&e, code);
        match help {
            Some(h) => err.help(h),
            None => err,
        }
    }
}

impl From<unattended_store::StoreError> for Error {
    fn from(e: unattended_store::StoreError) -> Self {
        Self::from_error(&e, Code::NeedsHuman).help(STATE_HELP)
    }
}

const STATE_HELP: &str = "check the `[state] path` file and its disk (space, permissions), or \
     the `[state] url` server (reachable, login, disk)";

/// Opens the state `config` names: its file, or its PostgreSQL server.
pub(crate) async fn open_store(
    config: &RunnerConfig,
    store: unattended_store::StoreConfig,
    clock: unattended_core::Clock,
) -> Result<unattended_store::Store, CliError> {
    let location = config.state.location(|var| std::env::var(var).ok())?;
    Ok(unattended_store::Store::open_location(&location, store, clock).await?)
}

/// A time as people read it: local to `tz`, to the second.
pub(crate) fn show_time(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}
