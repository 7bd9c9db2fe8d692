//! What a run is given: its clients, its checkpoint, the clock, cancellation, progress.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use unattended_client::Client;
use unattended_core::{Clock, ServiceKey};
use unattended_store::{Expect, RunId, StateStore, Store};

use crate::engine::TaskError;

/// A run's view of the runner. One per run, given to [`Engine::run`](crate::Engine::run).
///
/// Clients are shared: every task that names the same service gets a clone of the same
/// [`Client`], so breakers, pauses, retry budgets and tokens are learnt once for all of them.
pub struct TaskContext {
    task: Arc<str>,
    run: RunId,
    clock: Clock,
    clients: Arc<BTreeMap<String, Client>>,
    store: Store,
    checkpoint: Option<serde_json::Value>,
    version: u64,
    cancel: CancellationToken,
    live: Arc<LiveTask>,
    skipped: Vec<Skipped>,
    rng: fastrand::Rng,
    failures: u32,
}

/// A step a run skipped because a service was unavailable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The service.
    pub service: String,
    /// Why, as the run said.
    pub reason: String,
}

impl TaskContext {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        task: Arc<str>,
        run: RunId,
        clock: Clock,
        clients: Arc<BTreeMap<String, Client>>,
        store: Store,
        checkpoint: Option<(serde_json::Value, u64)>,
        cancel: CancellationToken,
        live: Arc<LiveTask>,
        seed: u64,
        failures: u32,
    ) -> Self {
        let (checkpoint, version) = match checkpoint {
            Some((value, version)) => (Some(value), version),
            None => (None, 0),
        };
        Self {
            task,
            run,
            clock,
            clients,
            store,
            checkpoint,
            version,
            cancel,
            live,
            skipped: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            failures,
        }
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// This run's id in the store.
    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// The clock: every time read and sleep of a run goes through it.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The client for `service` (a name from the engine's [`services`](crate::Engine::services)).
    ///
    /// # Errors
    ///
    /// `Stop` if the engine did not declare it (a bug the config check would have caught).
    pub fn client(&self, service: &str) -> Result<&Client, TaskError> {
        self.clients.get(service).ok_or_else(|| {
            TaskError::stop(format!(
                "task {} asked for service {service:?}, which its engine did not declare",
                self.task
            ))
        })
    }

    /// The checkpoint saved by the last run that saved one ("last known good"), read as a `T`.
    ///
    /// # Errors
    ///
    /// `Stop` if the saved value is not a `T` (a change of the engine's checkpoint type that
    /// needs a migration or `unattended reset`).
    pub fn checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>, TaskError> {
        let Some(value) = &self.checkpoint else { return Ok(None) };
        T::deserialize(value).map(Some).map_err(|e| {
            TaskError::stop(format!("the saved checkpoint of {} cannot be read: {e}", self.task))
                .with_help(format!(
                    "`unattended reset {} --checkpoint` starts it afresh",
                    self.task
                ))
        })
    }

    /// Saves `value` as the checkpoint, atomically, and counts as a heartbeat. A second writer
    /// of the same task (another process) is caught: its save fails with `Stop`.
    ///
    /// # Errors
    ///
    /// The store's error (a full disk, a conflict), with its disposition.
    pub async fn save_checkpoint<T: Serialize + Sync>(
        &mut self,
        value: &T,
    ) -> Result<(), TaskError> {
        let json = serde_json::to_value(value).map_err(|e| {
            TaskError::stop(format!("the checkpoint cannot be written as JSON: {e}"))
        })?;
        let expect = if self.version == 0 { Expect::Absent } else { Expect::Version(self.version) };
        self.version = self.store.save_checkpoint(&self.task, json.clone(), expect).await?;
        self.checkpoint = Some(json);
        self.live.beat(self.clock.wall());
        Ok(())
    }

    /// Forgets the checkpoint (the work it described is finished).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn clear_checkpoint(&mut self) -> Result<(), TaskError> {
        self.store.delete_checkpoint(&self.task).await?;
        self.checkpoint = None;
        self.version = 0;
        Ok(())
    }

    /// The store, for engines that keep records beyond one checkpoint.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The signal that the run should stop: at shutdown, a run gets a grace period to save its
    /// checkpoint after this fires, then its future is dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the run has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Reports progress (`done` of `total`, and a line) and counts as a heartbeat.
    pub fn progress(&self, done: u64, total: Option<u64>, note: impl Into<String>) {
        let now = self.clock.wall();
        let mut p = self.live.progress.lock().unwrap_or_else(PoisonError::into_inner);
        *p = Some(Progress { at: now, done, total, note: note.into() });
        drop(p);
        self.live.beat(now);
    }

    /// Records that a step was skipped because `service` is unavailable: the run ends
    /// [`Degraded`](unattended_store::RunOutcome::Degraded) instead of succeeded.
    pub fn skip(&mut self, service: impl fmt::Display, reason: impl fmt::Display) {
        tracing::warn!(task = %self.task, %service, %reason, "step skipped: service unavailable");
        self.skipped.push(Skipped { service: service.to_string(), reason: reason.to_string() });
    }

    /// Records a skip for the service an error named (its [`ServiceKey`]).
    pub fn skip_for(&mut self, key: &ServiceKey, error: &TaskError) {
        self.skip(key, error);
    }

    /// The steps skipped so far.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// A random source seeded from the runner's seed, so a simulated run is reproducible.
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }

    /// How many runs in a row failed before this one.
    pub fn failures_before(&self) -> u32 {
        self.failures
    }

    pub(crate) fn into_skipped(self) -> Vec<Skipped> {
        self.skipped
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("task", &self.task)
            .field("run", &self.run)
            .field("services", &self.clients.keys().collect::<Vec<_>>())
            .field("checkpoint_version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A run's last progress report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// When it was reported.
    pub at: Timestamp,
    /// How much is done.
    pub done: u64,
    /// Out of how much, if known.
    pub total: Option<u64>,
    /// What is going on.
    pub note: String,
}

/// What the runner knows of a task right now, beyond the store: its live progress.
#[derive(Debug, Default)]
pub(crate) struct LiveTask {
    pub(crate) progress: Mutex<Option<Progress>>,
    heartbeat: Mutex<Option<Timestamp>>,
}

impl LiveTask {
    pub(crate) fn beat(&self, at: Timestamp) {
        *self.heartbeat.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    pub(crate) fn last_beat(&self) -> Option<Timestamp> {
        *self.heartbeat.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn progress(&self) -> Option<Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn clear(&self) {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
