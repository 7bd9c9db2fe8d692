//! What an engine implements, what a run returns, and how engines are made from settings.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use unattended_core::{BoxError, Disposition, HasDisposition, ServiceKey};

use crate::context::TaskContext;

/// One kind of automation: the only trait an engine implements.
///
/// An engine owns its protocol and its checkpoint; the runner owns time, isolation, memory of
/// what happened and what to do with a failure. A run should be a short, linear story: load the
/// checkpoint, do the next step, save the checkpoint, repeat, return what was done. It is
/// cancelled by dropping its future (at shutdown, or when it runs longer than `max_runtime`), so
/// what a step achieved must be in the checkpoint before the step's next `.await`.
///
/// # Example
///
/// ```
/// use unattended_runner::{Engine, RunSummary, TaskContext, TaskError};
///
/// struct Counter;
///
/// #[async_trait::async_trait]
/// impl Engine for Counter {
///     fn name(&self) -> &str {
///         "counter"
///     }
///
///     fn services(&self) -> Vec<String> {
///         Vec::new()
///     }
///
///     async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
///         let n: u64 = cx.checkpoint()?.unwrap_or(0);
///         cx.save_checkpoint(&(n + 1)).await?;
///         Ok(RunSummary::new().items(1).note(format!("counted to {}", n + 1)))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// The engine's name, as a task's `engine = "..."` gives it.
    fn name(&self) -> &str;

    /// The services it calls, by the names it asks [`TaskContext::client`] for. Each must be
    /// a `[services.NAME]` entry (or mapped to one by the task's `services` table).
    fn services(&self) -> Vec<String>;

    /// Defaults for one of its services, as the TOML of a `[services.NAME]` table (base URL,
    /// timeouts, gate windows, `[oauth]`...). The config file's own table for that service is
    /// laid over it key by key, so a user writes only what differs. `None` (the default): the
    /// file must define the service.
    fn service_defaults(&self, service: &str) -> Option<String> {
        let _ = service;
        None
    }

    /// One run of the task.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] whose [`Disposition`] tells the runner what to do next.
    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError>;
}

/// What a run did, for the run record and `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    items: u64,
    note: Option<String>,
}

impl RunSummary {
    /// A run that did nothing worth counting.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of things it handled (videos uploaded, posts published, messages seen).
    #[must_use]
    pub fn items(mut self, n: u64) -> Self {
        self.items = n;
        self
    }

    /// A line saying what it did.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The number of things handled.
    pub fn item_count(&self) -> u64 {
        self.items
    }

    /// The line, if any.
    pub fn text(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.note {
            Some(note) => f.write_str(note),
            None => write!(f, "{} item(s)", self.items),
        }
    }
}

/// Why a run did not finish its work, and what the runner should do about it.
///
/// Made from any workspace error through `From` (the client's, the store's), which keeps its
/// disposition, or by hand: [`stop`](Self::stop), [`retry_at`](Self::retry_at),
/// [`reauthorize`](Self::reauthorize), [`skip`](Self::skip). Messages must not hold secrets.
#[derive(Debug)]
pub struct TaskError {
    disposition: Disposition,
    message: String,
    help: Option<String>,
    source: Option<BoxError>,
}

impl TaskError {
    /// An error with `disposition`.
    pub fn new(disposition: Disposition, message: impl Into<String>) -> Self {
        Self { disposition, message: message.into(), help: None, source: None }
    }

    /// Retrying cannot help: a human must look (the task is disabled, one alert).
    pub fn stop(message: impl Into<String>) -> Self {
        Self::new(Disposition::Stop, message)
    }

    /// Temporary: run again at (not before) `at`.
    pub fn retry_at(at: Timestamp, message: impl Into<String>) -> Self {
        Self::new(Disposition::RetryAt(at), message)
    }

    /// Credentials were refused for good (the task is disabled until re-authorized).
    pub fn reauthorize(message: impl Into<String>) -> Self {
        Self::new(Disposition::Reauthorize, message)
    }

    /// A service is unavailable: the run counts as degraded, not failed.
    pub fn skip(service: ServiceKey, message: impl Into<String>) -> Self {
        Self::new(Disposition::Skip(service), message)
    }

    /// Keeps `source` as the cause (shown in logs, never holding secrets).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What a human should do about it (`"run \`unattended auth google\`"`).
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The runner's instruction.
    pub fn disposition(&self) -> &Disposition {
        &self.disposition
    }

    /// What to do about it, if the error says.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The message and every cause, joined by `": "`.
    pub fn chain(&self) -> String {
        let mut out = self.message.clone();
        let mut next = self.source.as_deref().map(|e| e as &(dyn StdError + 'static));
        while let Some(e) = next {
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }

    fn from_error(e: impl StdError + HasDisposition + Send + Sync + 'static) -> Self {
        Self { disposition: e.disposition(), message: e.to_string(), help: None, source: None }
            .with_source(e)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TaskError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

impl HasDisposition for TaskError {
    fn disposition(&self) -> Disposition {
        self.disposition.clone()
    }
}

impl From<unattended_client::Error> for TaskError {
    fn from(e: unattended_client::Error) -> Self {
        let help = e.is_credentials().then(|| {
            "the service refused the credentials: renew them with `unattended auth CREDENTIAL` \
             (an OAuth credential; it also makes the task runnable again), or fix the key and \
             `unattended reset TASK`"
                .to_owned()
        });
        let mut err = Self::from_error(e);
        err.help = help;
        err
    }
}

impl From<unattended_store::StoreError> for TaskError {
    fn from(e: unattended_store::StoreError) -> Self {
        Self::from_error(e)
    }
}

/// What an engine is given when it is made for a task.
#[derive(Clone, Debug)]
pub struct EngineSetup {
    task: String,
    config_dir: PathBuf,
}

impl EngineSetup {
    /// Setup for `task`, whose config file is in `config_dir`.
    pub fn new(task: impl Into<String>, config_dir: impl Into<PathBuf>) -> Self {
        Self { task: task.into(), config_dir: config_dir.into() }
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The folder of the config file: relative paths in settings are relative to it.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// `path` relative to the config's folder (absolute paths as they are).
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        self.config_dir.join(path)
    }
}

type Make = dyn Fn(toml::de::ValueDeserializer<'_>, &EngineSetup) -> Result<Arc<dyn Engine>, MakeError>
    + Send
    + Sync;

/// Why an engine could not be made from a task's settings.
#[derive(Debug)]
pub(crate) enum MakeError {
    /// The settings do not match the engine's settings type (with their place in the file).
    Settings(toml::de::Error),
    /// The engine refused the settings.
    Refused(String),
}

/// The engines a runner knows, by name: each made from a task's settings (the task table's keys
/// that are not the runner's), read into the engine's own serde type.
///
/// ```
/// use serde::Deserialize;
/// use unattended_runner::{Engine, EngineKinds, RunSummary, TaskContext, TaskError};
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Settings { greeting: String }
///
/// struct Greeter(String);
///
/// #[async_trait::async_trait]
/// impl Engine for Greeter {
///     fn name(&self) -> &str { "greeter" }
///     fn services(&self) -> Vec<String> { Vec::new() }
///     async fn run(&self, _: &mut TaskContext) -> Result<RunSummary, TaskError> {
///         Ok(RunSummary::new().note(self.0.clone()))
///     }
/// }
///
/// let kinds = EngineKinds::new()
///     .with("greeter", |s: Settings, _setup| Ok(Greeter(s.greeting)));
/// assert_eq!(kinds.names().collect::<Vec<_>>(), ["greeter"]);
/// ```
#[derive(Clone, Default)]
pub struct EngineKinds {
    kinds: BTreeMap<String, Arc<Make>>,
}

impl EngineKinds {
    /// No engines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the engine `name`, made by `make` from settings of type `S`.
    #[must_use]
    pub fn with<S, E, F>(mut self, name: &str, make: F) -> Self
    where
        S: DeserializeOwned,
        E: Engine,
        F: Fn(S, &EngineSetup) -> Result<E, String> + Send + Sync + 'static,
    {
        let make = move |de: toml::de::ValueDeserializer<'_>, setup: &EngineSetup| {
            let settings =
                <S as serde::Deserialize>::deserialize(de).map_err(MakeError::Settings)?;
            let engine = make(settings, setup).map_err(MakeError::Refused)?;
            Ok(Arc::new(engine) as Arc<dyn Engine>)
        };
        self.kinds.insert(name.to_owned(), Arc::new(make));
        self
    }

    /// Adds an engine that takes no settings.
    #[must_use]
    pub fn with_engine(self, engine: impl Engine + Clone) -> Self {
        let name = engine.name().to_owned();
        self.with(&name, move |_: NoSettings, _| Ok(engine.clone()))
    }

    /// The names known.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    pub(crate) fn make(
        &self,
        name: &str,
        settings: toml::de::ValueDeserializer<'_>,
        setup: &EngineSetup,
    ) -> Option<Result<Arc<dyn Engine>, MakeError>> {
        self.kinds.get(name).map(|make| make(settings, setup))
    }
}

impl fmt::Debug for EngineKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

/// The settings of an engine that takes none: any key is an error.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}
