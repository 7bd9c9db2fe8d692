//! The runner's TOML file: state, services, windows, tasks, alerts, monitor.
//!
//! ```toml
//! [state]
//! path = "state.db"                 # relative to this file's folder
//! # or, for several runners on one state: url_env = "UNATTENDED_STATE_URL" (a postgres:// URL),
//! # with lease = "30s" and each runner's [runner] name
//!
//! [services.youtube]                # a client's `ServiceConfig`, plus `oauth`
//! base_url = "https://www.googleapis.com"
//! [services.youtube.oauth]          # tokens from the refresh token `unattended auth google` saved
//! client_id_env = "GOOGLE_CLIENT_ID"
//! client_secret_env = "GOOGLE_CLIENT_SECRET"
//!
//! [windows.daytime]
//! tz = "Europe/London"
//! open = ["daily 09:00-22:00"]
//!
//! [tasks.uploads]
//! engine = "youtube"
//! every = "15m"                     # or cron = "*/15 * * * *"
//! jitter = "1m"
//! window = "daytime"
//! folder = "videos"                 # any other key is the engine's setting
//! ```
//!
//! Every mistake is reported, each with its line and column and the offending text; unknown
//! keys are mistakes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use unattended_client::ServiceConfig;
use unattended_gate::WindowCalendar;

use crate::engine::{Engine, EngineKinds, EngineSetup, MakeError};
use crate::schedule::{Cadence, Schedule};

/// The default file name, looked for in the working directory.
pub const DEFAULT_FILE: &str = "unattended.toml";

/// Where the state lives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateSettings {
    /// The SQLite file (default `unattended.db` beside the config file).
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
    /// A PostgreSQL server instead of the file (`postgres://user:password@host/dbname`), for
    /// several runners sharing tasks, breakers and pauses. Prefer `url_env` when the URL holds
    /// a password.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding that URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// How long a runner's claim on a running task lasts unless renewed (default 30 s; renewed
    /// every third of it). A runner that dies loses its tasks to another after this.
    #[serde(default = "default_lease", with = "unattended_client::duration")]
    pub lease: Duration,
    /// Runs kept per task (default 200): older ones are pruned.
    #[serde(default = "default_keep_runs")]
    pub keep_runs: usize,
}

const fn default_lease() -> Duration {
    Duration::from_secs(30)
}

impl StateSettings {
    /// Where the state is: the server's URL (from `url_env`, read with `env`, or `url`) or the
    /// file's path.
    ///
    /// # Errors
    ///
    /// `url_env` names a variable that is not set (or not UTF-8).
    pub fn location(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, crate::RunnerError> {
        if let Some(var) = &self.url_env {
            return env(var).ok_or_else(|| crate::RunnerError::MissingEnv {
                var: var.clone(),
                what: "the PostgreSQL URL of the state ([state] url_env), \
                       postgres://user:password@host/dbname"
                    .to_owned(),
            });
        }
        Ok(self.url.clone().unwrap_or_else(|| self.path.display().to_string()))
    }

    /// A short name of where the state is, for logs: the file, or the server without its
    /// password.
    pub fn describe(&self) -> String {
        match (&self.url_env, &self.url) {
            (Some(var), _) => format!("the PostgreSQL server in ${var}"),
            (None, Some(url)) => redact_url(url),
            (None, None) => self.path.display().to_string(),
        }
    }
}

/// `url` without the password of its user part.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:…@{host}")
        }
        _ => url.to_owned(),
    }
}

fn default_state_path() -> PathBuf {
    PathBuf::from("unattended.db")
}

const fn default_keep_runs() -> usize {
    200
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            path: default_state_path(),
            url: None,
            url_env: None,
            lease: default_lease(),
            keep_runs: default_keep_runs(),
        }
    }
}

/// The runner process.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RunnerSettings {
    /// This runner's name, shown in `status` beside the tasks it runs (default: the host's
    /// name). Runners sharing one state need names of their own.
    #[serde(default)]
    pub name: Option<String>,
    /// How long running tasks get to save their checkpoint at shutdown (default 30 s).
    #[serde(default = "default_grace", with = "unattended_client::duration")]
    pub shutdown_grace: Duration,
    /// Serve the status page (`/`), `/status.json` and Prometheus `/metrics` on this address
    /// (default: off; `unattended run --http ADDR` sets it too). `metrics` is its old name.
    #[serde(default, alias = "metrics")]
    pub http: Option<SocketAddr>,
    /// The environment variable holding the token the page asks for (as a bearer token, or as
    /// the password of HTTP Basic auth in a browser). Required when `http` is not a loopback
    /// address; with it, every request must carry the token.
    #[serde(default)]
    pub http_token_env: Option<String>,
}

impl RunnerSettings {
    /// Whether serving on `addr` needs a token: anything but a loopback address does.
    pub fn http_needs_token(addr: &SocketAddr) -> bool {
        !addr.ip().is_loopback()
    }
}

const fn default_grace() -> Duration {
    Duration::from_secs(30)
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self { name: None, shutdown_grace: default_grace(), http: None, http_token_env: None }
    }
}

/// What the monitor watches besides heartbeats.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MonitorSettings {
    /// How often it looks (default 30 s).
    #[serde(default = "default_monitor_interval", with = "unattended_client::duration")]
    pub interval: Duration,
    /// Alert when the runner's resident memory is above this (default `"512MiB"`).
    #[serde(default = "default_max_rss", deserialize_with = "bytes::de_opt")]
    pub max_rss: Option<u64>,
    /// Alert when the store's disk has less free space than this (default `"200MiB"`).
    #[serde(default = "default_min_free", deserialize_with = "bytes::de_opt")]
    pub min_free_disk: Option<u64>,
}

const fn default_monitor_interval() -> Duration {
    Duration::from_secs(30)
}

#[allow(clippy::unnecessary_wraps)]
const fn default_max_rss() -> Option<u64> {
    Some(512 << 20)
}

#[allow(clippy::unnecessary_wraps)]
const fn default_min_free() -> Option<u64> {
    Some(200 << 20)
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            interval: default_monitor_interval(),
            max_rss: default_max_rss(),
            min_free_disk: default_min_free(),
        }
    }
}

/// Tokens from an OAuth 2.0 refresh token kept in the store (saved by `unattended auth`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OAuthSettings {
    /// The token endpoint (default Google's).
    #[serde(default = "google_token_url")]
    pub token_url: String,
    /// The authorization endpoint, for `unattended auth` (default Google's).
    #[serde(default = "google_auth_url")]
    pub auth_url: String,
    /// The environment variable holding the client id.
    pub client_id_env: String,
    /// The environment variable holding the client secret.
    pub client_secret_env: String,
    /// The name the refresh token is stored under (default `"google"`); services that share it
    /// share one token cache.
    #[serde(default = "google")]
    pub credential: String,
    /// The scopes `unattended auth` asks for.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn google_token_url() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}

fn google_auth_url() -> String {
    "https://accounts.google.com/o/oauth2/v2/auth".to_owned()
}

fn google() -> String {
    "google".to_owned()
}

/// One service: how the client reaches it, and where its tokens come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceEntry {
    /// The client's settings.
    pub config: ServiceConfig,
    /// OAuth tokens, if the service uses them (else the config's `auth`).
    pub oauth: Option<OAuthSettings>,
}

/// A task's time window: runs due while it is closed wait for it to open.
#[derive(Clone, Debug)]
pub struct TaskWindow {
    /// The window's name (`[windows.NAME]`).
    pub name: String,
    /// When it is open.
    pub calendar: WindowCalendar,
}

/// A task, as configured.
#[derive(Clone)]
#[non_exhaustive]
pub struct TaskSpec {
    /// Its name (`[tasks.NAME]`).
    pub name: String,
    /// The engine's name.
    pub engine_name: String,
    /// The engine, made from the task's settings.
    pub engine: Arc<dyn Engine>,
    /// When it runs.
    pub schedule: Schedule,
    /// The window its runs must start in, if any.
    pub window: Option<TaskWindow>,
    /// The longest a run may take before it is stopped (default 1 h).
    pub max_runtime: Duration,
    /// How long without a successful run before the task is late (default twice its longest
    /// gap between slots).
    pub stale_after: Duration,
    /// Whether it runs at all.
    pub enabled: bool,
    /// The engine's service names → `[services.NAME]` entries.
    pub services: BTreeMap<String, String>,
    /// A Healthchecks-style ping URL: pinged on success, `/start` and `/fail` appended.
    pub ping: Option<String>,
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("name", &self.name)
            .field("engine", &self.engine_name)
            .field("schedule", &self.schedule)
            .field("max_runtime", &self.max_runtime)
            .field("stale_after", &self.stale_after)
            .field("enabled", &self.enabled)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// The whole file, checked.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Where state lives (its path resolved against the file's folder).
    pub state: StateSettings,
    /// The process's settings.
    pub runner: RunnerSettings,
    /// What the monitor watches.
    pub monitor: MonitorSettings,
    /// Services by name.
    pub services: BTreeMap<String, ServiceEntry>,
    /// Tasks, by name.
    pub tasks: Vec<TaskSpec>,
    /// Alerting (`[alerts]`): sinks and delivery retries.
    pub alerts: unattended_alerts::AlertsConfig,
}

/// The runner's keys in a task table; the others are the engine's.
const TASK_KEYS: &[&str] = &[
    "engine",
    "every",
    "cron",
    "tz",
    "jitter",
    "catch_up",
    "window",
    "max_runtime",
    "stale_after",
    "enabled",
    "services",
    "ping",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskKeys {
    engine: Spanned<String>,
    #[serde(default, with = "unattended_client::opt_duration")]
    every: Option<Duration>,
    #[serde(default)]
    cron: Option<Spanned<String>>,
    #[serde(default)]
    tz: Option<Spanned<String>>,
    #[serde(default, with = "unattended_client::opt_duration")]
    jitter: Option<Duration>,
    #[serde(default = "yes")]
    catch_up: bool,
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default, with = "unattended_client::opt_duration")]
    max_runtime: Option<Duration>,
    #[serde(default, with = "unattended_client::opt_duration")]
    stale_after: Option<Duration>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    services: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    ping: Option<Spanned<String>>,
}

const fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowKeys {
    tz: String,
    open: Vec<String>,
    #[serde(default)]
    closed: Vec<String>,
}

/// One mistake in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// What is wrong, and what is allowed.
    pub message: String,
    /// Where, as a byte range of the file, if known.
    pub span: Option<Range<usize>>,
}

/// A config file that cannot be used, with every mistake found in it.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file has mistakes.
    #[error("{}", render(path, text, issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its text, to show the lines at fault.
        text: Arc<str>,
        /// Every mistake found.
        issues: Vec<ConfigIssue>,
    },
}

impl ConfigError {
    /// The mistakes found (none for a file that could not be read).
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { issues, .. } => issues,
        }
    }

    /// The line and column (from 1) of each mistake that has a place.
    pub fn places(&self) -> Vec<(usize, usize)> {
        match self {
            Self::Read { .. } => Vec::new(),
            Self::Invalid { text, issues, .. } => issues
                .iter()
                .filter_map(|i| i.span.as_ref().map(|s| line_col(text, s.start)))
                .collect(),
        }
    }
}

impl unattended_core::HasDisposition for ConfigError {
    fn disposition(&self) -> unattended_core::Disposition {
        unattended_core::Disposition::Stop
    }
}

/// Line and column (from 1, columns in characters) of byte `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..text.floor_char_boundary(at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn render(path: &Path, text: &str, issues: &[ConfigIssue]) -> String {
    let mut out = String::new();
    for (n, issue) in issues.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&issue.message);
        if let Some(span) = &issue.span {
            let (line, col) = line_col(text, span.start);
            let source = text.lines().nth(line - 1).unwrap_or("");
            let width = text
                .get(span.clone())
                .map_or(1, |s| s.lines().next().map_or(1, |l| l.chars().count().max(1)));
            let width = width.min(source.chars().count().saturating_sub(col - 1).max(1));
            let gutter = line.to_string().len();
            out.push_str(&format!(
                "\n{:gutter$}--> {}:{line}:{col}\n{:gutter$} |\n{line} | {source}\n{:gutter$} | {}{}",
                "",
                path.display(),
                "",
                "",
                " ".repeat(col - 1),
                "^".repeat(width),
            ));
        }
    }
    out
}

/// Collects mistakes while the file is read.
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn add(&mut self, message: impl Into<String>, span: Option<Range<usize>>) {
        self.0.push(ConfigIssue { message: message.into(), span });
    }

    fn toml(&mut self, context: &str, e: &toml::de::Error) {
        self.add(format!("{context}: {}", e.message()), e.span());
    }

    fn read<'i, T: Deserialize<'i>>(
        &mut self,
        context: &str,
        value: Spanned<DeValue<'i>>,
    ) -> Option<T> {
        T::deserialize(ValueDeserializer::from(value)).map_err(|e| self.toml(context, &e)).ok()
    }
}

impl RunnerConfig {
    /// Reads and checks the file at `path`, making each task's engine from `kinds`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or has mistakes (all of them, with their places).
    pub fn load(path: impl AsRef<Path>, kinds: &EngineKinds) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.to_path_buf(), source: Arc::new(e) })?;
        Self::parse(&text, path, kinds)
    }

    /// Checks `text`, as the file at `path` (relative paths in it are relative to its folder).
    ///
    /// # Errors
    ///
    /// The text has mistakes (all of them, with their places).
    pub fn parse(
        text: &str,
        path: impl AsRef<Path>,
        kinds: &EngineKinds,
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let mut issues = Issues(Vec::new());
        let config = match DeTable::parse(text) {
            Ok(root) => read(root.into_inner(), path, &dir, kinds, &mut issues),
            Err(e) => {
                issues.toml("invalid TOML", &e);
                None
            }
        };
        issues.0.sort_by_key(|i| i.span.as_ref().map_or(usize::MAX, |s| s.start));
        match config {
            Some(config) if issues.0.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                text: text.into(),
                issues: issues.0,
            }),
        }
    }

    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

fn read(
    root: DeTable<'_>,
    path: &Path,
    dir: &Path,
    kinds: &EngineKinds,
    issues: &mut Issues,
) -> Option<RunnerConfig> {
    let mut state = StateSettings::default();
    let mut runner = RunnerSettings::default();
    let mut runner_span = None;
    let mut monitor = MonitorSettings::default();
    let mut services = BTreeMap::new();
    let mut service_tables = BTreeMap::new();
    let mut windows = BTreeMap::new();
    let mut task_tables = Vec::new();
    let mut alerts = unattended_alerts::AlertsConfig::default();
    for (key, value) in root {
        let span = key.span();
        match key.get_ref().as_ref() {
            "state" => state = issues.read("in [state]", value).unwrap_or_default(),
            "runner" => {
                runner_span = Some(span.clone());
                runner = issues.read("in [runner]", value).unwrap_or_default();
            }
            "monitor" => monitor = issues.read("in [monitor]", value).unwrap_or_default(),
            "services" => service_tables.extend(tables(value, "services", issues)),
            "windows" => {
                for (name, table) in tables(value, "windows", issues) {
                    let tspan = table.span();
                    let Some(keys) =
                        issues.read::<WindowKeys>(&format!("in [windows.{name}]"), table)
                    else {
                        continue;
                    };
                    let open: Vec<&str> = keys.open.iter().map(String::as_str).collect();
                    let closed: Vec<&str> = keys.closed.iter().map(String::as_str).collect();
                    match WindowCalendar::new(&keys.tz, &open, &closed) {
                        Ok(calendar) => {
                            windows.insert(name.clone(), TaskWindow { name, calendar });
                        }
                        Err(e) => issues.add(format!("in [windows.{name}]: {e}"), Some(tspan)),
                    }
                }
            }
            "tasks" => task_tables = tables(value, "tasks", issues),
            "alerts" => alerts = issues.read("in [alerts]", value).unwrap_or_default(),
            other => issues.add(
                format!(
                    "unknown section `{other}`; expected one of `state`, `runner`, `monitor`, \
                     `services`, `windows`, `tasks`, `alerts`"
                ),
                Some(span),
            ),
        }
    }
    state.path = dir.join(&state.path);
    if state.url.is_some() && state.url_env.is_some() {
        issues.add("in [state]: give `url` or `url_env`, not both", None);
    }
    if let Some(url) = &state.url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        issues.add(
            "in [state]: `url` must be a PostgreSQL URL (postgres://user@host/dbname); a SQLite \
             file is `path`",
            None,
        );
    }
    if state.lease < Duration::from_secs(1) {
        issues.add("in [state]: `lease` must be at least 1s", None);
    }
    if state.keep_runs == 0 {
        issues.add("in [state]: `keep_runs` must be at least 1", None);
    }
    if monitor.interval.is_zero() {
        issues.add("in [monitor]: `interval` must be more than zero", None);
    }
    if let Some(addr) = runner.http
        && RunnerSettings::http_needs_token(&addr)
        && runner.http_token_env.is_none()
    {
        issues.add(
            format!(
                "in [runner]: `http = \"{addr}\"` is not a loopback address, so the page needs \
                 `http_token_env` (the variable holding its token); or serve on 127.0.0.1"
            ),
            runner_span,
        );
    }
    let mut tasks = Vec::new();
    let mut defaults = BTreeMap::new();
    let given: std::collections::BTreeSet<String> = service_tables.keys().cloned().collect();
    for (name, table) in task_tables {
        let known = Known { dir, kinds, services: &given, windows: &windows };
        let task = read_task(&name, table, &known, &mut defaults, issues);
        if let Some(task) = task {
            tasks.push(task);
        }
    }
    // The engines' defaults for their services, under what the file says.
    for (name, text) in &defaults {
        match DeTable::parse(text) {
            Ok(table) => {
                let mut table = table;
                table.get_mut().make_owned();
                let span = table.span();
                let base = Spanned::new(span, DeValue::Table(table.into_inner()));
                let merged = match service_tables.remove(name) {
                    Some(user) => merge(base, user),
                    None => base,
                };
                service_tables.insert(name.clone(), merged);
            }
            Err(e) => {
                issues.add(format!("the defaults of service {name:?} are not TOML: {e}"), None)
            }
        }
    }
    for (name, table) in service_tables {
        if let Some(entry) = read_service(&name, table, issues) {
            services.insert(name, entry);
        }
    }
    Some(RunnerConfig { file: path.to_path_buf(), state, runner, monitor, services, tasks, alerts })
}

/// The sub-tables of `[section]`, by name.
fn tables<'i>(
    value: Spanned<DeValue<'i>>,
    section: &str,
    issues: &mut Issues,
) -> Vec<(String, Spanned<DeValue<'i>>)> {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        issues.add(format!("`{section}` must be a table of tables ([{section}.NAME])"), Some(span));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.get_ref().to_string();
        if value.get_ref().is_table() {
            out.push((name, value));
        } else {
            issues.add(
                format!("`{section}.{name}` must be a table ([{section}.{name}])"),
                Some(key.span()),
            );
        }
    }
    out
}

fn read_service(
    name: &str,
    table: Spanned<DeValue<'_>>,
    issues: &mut Issues,
) -> Option<ServiceEntry> {
    let span = table.span();
    let DeValue::Table(mut fields) = table.into_inner() else { return None };
    let oauth = take(&mut fields, "oauth")
        .and_then(|v| issues.read::<OAuthSettings>(&format!("in [services.{name}.oauth]"), v));
    let rest = Spanned::new(span, DeValue::Table(fields));
    let config = issues.read::<ServiceConfig>(&format!("in [services.{name}]"), rest)?;
    Some(ServiceEntry { config, oauth })
}

/// `over` laid on `base`: tables merge key by key, anything else in `over` wins.
fn merge<'i>(base: Spanned<DeValue<'i>>, over: Spanned<DeValue<'i>>) -> Spanned<DeValue<'i>> {
    let span = over.span();
    match (base.into_inner(), over.into_inner()) {
        (DeValue::Table(mut base), DeValue::Table(over)) => {
            for (key, value) in over {
                let existing = base.keys().find(|k| k.get_ref() == key.get_ref()).cloned();
                let value = match existing.and_then(|k| base.remove(&k)) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                base.insert(key, value);
            }
            Spanned::new(span, DeValue::Table(base))
        }
        (_, over) => Spanned::new(span, over),
    }
}

/// Removes `key` from `table`.
fn take<'i>(table: &mut DeTable<'i>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    let found = table.keys().find(|k| k.get_ref().as_ref() == key)?.clone();
    table.remove(&found)
}

/// What a task may refer to.
struct Known<'a> {
    dir: &'a Path,
    kinds: &'a EngineKinds,
    services: &'a std::collections::BTreeSet<String>,
    windows: &'a BTreeMap<String, TaskWindow>,
}

fn read_task(
    name: &str,
    table: Spanned<DeValue<'_>>,
    known: &Known<'_>,
    defaults: &mut BTreeMap<String, String>,
    issues: &mut Issues,
) -> Option<TaskSpec> {
    let Known { dir, kinds, services, windows } = *known;
    let span = table.span();
    let DeValue::Table(fields) = table.into_inner() else { return None };
    let (mut own, mut theirs) = (DeTable::new(), DeTable::new());
    for (key, value) in fields {
        if TASK_KEYS.contains(&key.get_ref().as_ref()) {
            own.insert(key, value);
        } else {
            theirs.insert(key, value);
        }
    }
    let here = format!("in [tasks.{name}]");
    let keys: TaskKeys = issues.read(&here, Spanned::new(span.clone(), DeValue::Table(own)))?;
    let before = issues.0.len();

    let tz = match &keys.tz {
        Some(tz) => TimeZone::get(tz.get_ref())
            .map_err(|_| {
                issues.add(
                    format!(
                        "{here}: `tz` {:?} is not an IANA time zone (such as \"Europe/London\")",
                        tz.get_ref()
                    ),
                    Some(tz.span()),
                );
            })
            .ok(),
        None => Some(TimeZone::system()),
    };
    let cadence = match (&keys.every, &keys.cron) {
        (Some(_), Some(cron)) => {
            issues.add(format!("{here}: set `every` or `cron`, not both"), Some(cron.span()));
            None
        }
        (None, None) => {
            issues.add(
                format!("{here}: needs `every = \"15m\"` or `cron = \"*/15 * * * *\"`"),
                Some(span.clone()),
            );
            None
        }
        (Some(every), None) if *every < Duration::from_secs(1) => {
            issues.add(format!("{here}: `every` must be at least 1s"), Some(span.clone()));
            None
        }
        (Some(every), None) => Some(Cadence::Every(*every)),
        (None, Some(cron)) => match cron.get_ref().parse() {
            Ok(expr) => Some(Cadence::Cron(expr)),
            Err(e) => {
                issues.add(format!("{here}: `cron` {e}"), Some(cron.span()));
                None
            }
        },
    };
    let jitter = keys.jitter.unwrap_or(Duration::ZERO);
    if let (Some(Cadence::Every(every)), true) =
        (&cadence, jitter >= keys.every.unwrap_or(Duration::MAX))
    {
        issues.add(
            format!("{here}: `jitter` must be shorter than `every` ({every:?})"),
            Some(span.clone()),
        );
    }
    let window = keys.window.as_ref().and_then(|w| {
        let found = windows.get(w.get_ref()).cloned();
        if found.is_none() {
            let known: Vec<&str> = windows.keys().map(String::as_str).collect();
            issues.add(
                format!(
                    "{here}: `window` {:?} is not defined; known windows: {}",
                    w.get_ref(),
                    list(&known)
                ),
                Some(w.span()),
            );
        }
        found
    });
    if let Some(ping) = &keys.ping
        && !(ping.get_ref().starts_with("http://") || ping.get_ref().starts_with("https://"))
    {
        issues.add(format!("{here}: `ping` must be an http(s) URL"), Some(ping.span()));
    }
    let max_runtime = keys.max_runtime.unwrap_or(Duration::from_secs(3600));
    if max_runtime.is_zero() {
        issues.add(format!("{here}: `max_runtime` must be more than zero"), Some(span.clone()));
    }

    let engine_name = keys.engine.get_ref().clone();
    let setup = EngineSetup::new(name, dir);
    let settings = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(theirs)));
    let engine = match kinds.make(&engine_name, settings, &setup) {
        None => {
            let known: Vec<&str> = kinds.names().collect();
            issues.add(
                format!("{here}: unknown engine {engine_name:?}; known engines: {}", list(&known)),
                Some(keys.engine.span()),
            );
            None
        }
        Some(Err(MakeError::Settings(e))) => {
            issues.toml(&format!("{here} (settings of engine {engine_name:?})"), &e);
            None
        }
        Some(Err(MakeError::Refused(why))) => {
            issues.add(format!("{here}: {why}"), Some(span));
            None
        }
        Some(Ok(engine)) => Some(engine),
    };

    let mut mapped = BTreeMap::new();
    if let Some(engine) = &engine {
        for role in engine.services() {
            let (service, place) = match keys.services.get(&role) {
                Some(s) => (s.get_ref().clone(), Some(s.span())),
                None => (role.clone(), Some(keys.engine.span())),
            };
            let default = engine.service_defaults(&role);
            if let Some(text) = default {
                defaults.entry(service.clone()).or_insert(text);
            } else if !services.contains(&service) {
                let known: Vec<&str> = services.iter().map(String::as_str).collect();
                issues.add(
                    format!(
                        "{here}: engine {engine_name:?} uses service {role:?}, but there is no \
                         [services.{service}]; known services: {} (map it with `services = {{ {role} = \"NAME\" }}`)",
                        list(&known)
                    ),
                    place,
                );
            }
            mapped.insert(role, service);
        }
        for (role, s) in &keys.services {
            if !mapped.contains_key(role) {
                issues.add(
                    format!("{here}: engine {engine_name:?} uses no service called {role:?}"),
                    Some(s.span()),
                );
            }
        }
    }
    if issues.0.len() > before {
        return None;
    }
    let schedule = Schedule::new(cadence?, tz?).jitter(jitter).catch_up(keys.catch_up);
    let stale_after = keys.stale_after.unwrap_or_else(|| {
        schedule
            .longest_gap(jiff::Timestamp::UNIX_EPOCH)
            .saturating_mul(2)
            .max(Duration::from_secs(60))
    });
    Some(TaskSpec {
        name: name.to_owned(),
        engine_name,
        engine: engine?,
        schedule,
        window,
        max_runtime,
        stale_after,
        enabled: keys.enabled,
        services: mapped,
        ping: keys.ping.map(Spanned::into_inner),
    })
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    }
}

/// Byte sizes as text: `"512MiB"`, `"1GB"`, `"4096"`.
pub(crate) mod bytes {
    use serde::{Deserialize, Deserializer, de};

    pub(crate) fn parse(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 =
            num.parse().map_err(|_| format!("{text:?} is not a size like \"512MiB\""))?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let bytes = (num * scale as f64) as u64;
        Ok(bytes)
    }

    pub(crate) fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Text(String),
            Number(u64),
            Off(bool),
        }
        match Size::deserialize(d)? {
            Size::Text(t) => parse(&t).map(Some).map_err(de::Error::custom),
            Size::Number(n) => Ok(Some(n)),
            Size::Off(false) => Ok(None),
            Size::Off(true) => Err(de::Error::custom("give a size such as \"512MiB\", or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{RunSummary, TaskContext, TaskError};

    #[derive(Clone)]
    struct Uses(&'static str, Option<&'static str>);

    #[async_trait::async_trait]
    impl Engine for Uses {
        fn name(&self) -> &str {
            "uses"
        }
        fn services(&self) -> Vec<String> {
            vec![self.0.to_owned()]
        }
        fn service_defaults(&self, _: &str) -> Option<String> {
            self.1.map(str::to_owned)
        }
        async fn run(&self, _: &mut TaskContext) -> Result<RunSummary, TaskError> {
            Ok(RunSummary::new())
        }
    }

    fn kinds() -> EngineKinds {
        EngineKinds::new()
            .with("plain", |_: toml::Table, _| Ok(Uses("api", None)))
            .with("defaulted", |_: toml::Table, _| {
                Ok(Uses("yt", Some("base_url = \"https://yt.example\"\n[timeouts]\nattempt = \"2m\"\noverall = \"10m\"\n")))
            })
    }

    fn parse(text: &str) -> Result<RunnerConfig, ConfigError> {
        RunnerConfig::parse(text, "/etc/unattended/unattended.toml", &kinds())
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let text = "[tasks.a]\nengine = \"plain\"\nevry = \"15m\"\n\n[tasks.b]\nengine = \"nope\"\nevery = \"1h\"\n\n[statee]\n";
        let err = parse(text).unwrap_err();
        let shown = err.to_string();
        assert_eq!(err.places(), [(1, 1), (2, 10), (6, 10), (9, 2)], "in file order: {shown}");
        assert!(
            shown.contains("unknown engine \"nope\"") && shown.contains("\"plain\""),
            "{shown}"
        );
        assert!(shown.contains("unattended.toml:9:2"), "{shown}");
        assert!(shown.contains("unknown section `statee`"), "{shown}");
        // `evry` is the engine's (it takes any table) but the task has no schedule and no service.
        assert!(shown.contains("needs `every"), "{shown}");
    }

    #[test]
    fn a_page_off_loopback_needs_a_token_and_metrics_is_its_old_name() {
        let task = "[tasks.t]\nengine = \"defaulted\"\nevery = \"1h\"\ntz = \"UTC\"\n";
        let err = parse(&format!("[runner]\nhttp = \"0.0.0.0:9464\"\n{task}")).unwrap_err();
        assert!(err.to_string().contains("needs `http_token_env`"), "{err}");
        assert_eq!(err.places(), [(1, 2)], "at the [runner] table: {err}");
        let ok = parse(&format!("[runner]\nhttp = \"[::]:9464\"\nhttp_token_env = \"T\"\n{task}"))
            .unwrap();
        assert_eq!(ok.runner.http_token_env.as_deref(), Some("T"));
        let old = parse(&format!("[runner]\nmetrics = \"127.0.0.1:9464\"\n{task}")).unwrap();
        assert_eq!(old.runner.http, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(RunnerSettings::http_needs_token(&"[::]:1".parse().unwrap()));
        assert!(!RunnerSettings::http_needs_token(&"[::1]:1".parse().unwrap()));
    }

    #[test]
    fn a_shared_state_is_a_postgres_url_or_a_variable_holding_one() {
        let task = "[tasks.t]\nengine = \"defaulted\"\nevery = \"1h\"\ntz = \"UTC\"\n";
        let config = parse(&format!(
            "[state]\nurl = \"postgres://u:hunter22@db.lan/x\"\nlease = \"10s\"\n[runner]\nname = \"north\"\n{task}"
        ))
        .unwrap();
        assert_eq!(config.state.lease, Duration::from_secs(10));
        assert_eq!(config.runner.name.as_deref(), Some("north"));
        assert_eq!(config.state.location(|_| None).unwrap(), "postgres://u:hunter22@db.lan/x");
        assert_eq!(config.state.describe(), "postgres://u:…@db.lan/x", "no password in logs");
        let config = parse(&format!("[state]\nurl_env = \"STATE_URL\"\n{task}")).unwrap();
        let err = config.state.location(|_| None).unwrap_err();
        assert!(err.to_string().contains("STATE_URL is not set"), "{err}");
        let found = config.state.location(|v| (v == "STATE_URL").then(|| "postgres://h/d".into()));
        assert_eq!(found.unwrap(), "postgres://h/d");
        let file = parse(task).unwrap();
        assert_eq!(file.state.location(|_| None).unwrap(), file.state.path.display().to_string());
        for (bad, says) in [
            ("url = \"/tmp/x.db\"", "must be a PostgreSQL URL"),
            ("url = \"postgres://h/d\"\nurl_env = \"V\"", "not both"),
            ("lease = \"0s\"", "at least 1s"),
        ] {
            let err = parse(&format!("[state]\n{bad}\n{task}")).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_keys_of_a_service_point_at_the_key() {
        let text = "[services.api]\nbase_url = \"https://a.example\"\n[services.api.retry]\nmax_atempts = 3\n[tasks.t]\nengine = \"plain\"\nevery = \"1h\"\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.places(), [(4, 1)], "{err}");
        assert!(err.to_string().contains("max_atempts"), "{err}");
    }

    #[test]
    fn engine_defaults_lie_under_the_file() {
        let config =
            parse("[tasks.t]\nengine = \"defaulted\"\nevery = \"1h\"\ntz = \"UTC\"\n").unwrap();
        let yt = &config.services["yt"].config;
        assert_eq!(yt.base_url.as_deref(), Some("https://yt.example"));
        assert_eq!(yt.timeouts.attempt, Duration::from_secs(120));
        let config = parse(
            "[services.yt.timeouts]\nattempt = \"5s\"\n[tasks.t]\nengine = \"defaulted\"\nevery = \"1h\"\ntz = \"UTC\"\n",
        )
        .unwrap();
        let yt = &config.services["yt"].config;
        assert_eq!(
            (yt.timeouts.attempt, yt.timeouts.overall),
            (Duration::from_secs(5), Duration::from_secs(600))
        );
        assert_eq!(yt.base_url.as_deref(), Some("https://yt.example"), "kept from the defaults");
        assert_eq!(config.state.path, PathBuf::from("/etc/unattended/unattended.db"));
    }

    #[test]
    fn a_missing_service_names_the_known_ones() {
        let err =
            parse("[services.other]\n[tasks.t]\nengine = \"plain\"\nevery = \"1h\"\n").unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("no [services.api]") && shown.contains("\"other\""), "{shown}");
    }

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(bytes::parse("512MiB"), Ok(512 << 20));
        assert_eq!(bytes::parse("1GB"), Ok(1_000_000_000));
        assert!(bytes::parse("lots").is_err());
        assert!(bytes::parse("3 parsecs").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_col("a\nbé c", 5), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
