//! The async face of the database, and the trait other backends implement.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use unattended_core::Clock;

use crate::db::{StateDb, StoreConfig};
use crate::error::StoreError;
use crate::records::{
    Checkpoint, Expect, HeldService, LearnedPace, RunEnd, RunId, RunRecord, TaskStatus,
};

/// Where a runner keeps what must outlive its process.
///
/// [`Store`] keeps it in one SQLite file; a networked backend can implement this trait so that
/// several machines share it. Checkpoint values are JSON; [`save`](Self::save) and
/// [`load`](Self::load) convert typed values.
pub trait StateStore: Send + Sync + 'static {
    /// Saves `task`'s checkpoint atomically; returns its new version.
    fn save_checkpoint(
        &self,
        task: &str,
        value: serde_json::Value,
        expect: Expect,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// `task`'s checkpoint, if any.
    fn load_checkpoint(
        &self,
        task: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint<serde_json::Value>>, StoreError>> + Send;

    /// Records the start of a run.
    fn start_run(&self, task: &str) -> impl Future<Output = Result<RunId, StoreError>> + Send;

    /// Records how a run ended.
    fn finish_run(
        &self,
        id: RunId,
        end: RunEnd,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The last `limit` runs of `task`, newest first.
    fn runs(
        &self,
        task: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunRecord>, StoreError>> + Send;

    /// Sets `task`'s state.
    fn set_task_state(
        &self,
        task: &str,
        status: TaskStatus,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every task's state.
    fn task_states(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, TaskStatus)>, StoreError>> + Send;

    /// `task`'s state, if it has one.
    fn task_state(
        &self,
        task: &str,
    ) -> impl Future<Output = Result<Option<TaskStatus>, StoreError>> + Send;

    /// Deletes all but the newest `keep` finished runs of `task`; returns how many went.
    fn prune_runs(
        &self,
        task: &str,
        keep: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Marks every unfinished run abandoned (the process that ran it is gone); returns how many.
    fn abandon_unfinished_runs(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes `task`'s checkpoint; returns whether there was one.
    fn delete_checkpoint(
        &self,
        task: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the held services (open breakers, pauses) of `kind`.
    fn replace_held(
        &self,
        kind: &str,
        held: Vec<HeldService>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The held services of `kind`.
    fn held(&self, kind: &str)
    -> impl Future<Output = Result<Vec<HeldService>, StoreError>> + Send;

    /// Replaces the learned paces saved under `name`.
    fn replace_paces(
        &self,
        name: &str,
        paces: Vec<LearnedPace>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The learned paces saved under `name`.
    fn paces(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<LearnedPace>, StoreError>> + Send;

    /// Saves `value` as `task`'s checkpoint.
    fn save<T: Serialize + Sync>(
        &self,
        task: &str,
        value: &T,
        expect: Expect,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send
    where
        Self: Sized,
    {
        let value = serde_json::to_value(value);
        async move { self.save_checkpoint(task, value?, expect).await }
    }

    /// `task`'s checkpoint, read as a `T`.
    fn load<T: DeserializeOwned>(
        &self,
        task: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint<T>>, StoreError>> + Send
    where
        Self: Sized,
    {
        async move {
            let Some(c) = self.load_checkpoint(task).await? else { return Ok(None) };
            let value = serde_json::from_value(c.value)?;
            Ok(Some(Checkpoint { value, version: c.version, updated_at: c.updated_at }))
        }
    }
}

/// The state database, for async code: one SQLite file in WAL mode, its blocking work on tokio's
/// blocking pool (or inline, see [`StoreConfig::inline`]). Clones share the connection.
///
/// # Example
///
/// ```
/// use unattended_core::Clock;
/// use unattended_store::{Expect, StateStore, Store, StoreConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("state.db"), StoreConfig::new(), Clock::system()).await?;
/// let version = store.save("upload", &("video.mp4", 262_144_u64), Expect::Absent).await?;
/// let saved = store.load::<(String, u64)>("upload").await?.unwrap();
/// assert_eq!((saved.value.1, saved.version), (262_144, version));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    db: Mutex<StateDb>,
    path: PathBuf,
    clock: Clock,
    inline: bool,
}

impl Store {
    /// Opens the database at `path` (see [`StateDb::open`]).
    ///
    /// # Errors
    ///
    /// As [`StateDb::open`].
    pub async fn open(
        path: impl AsRef<Path>,
        config: StoreConfig,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = if config.inline {
            StateDb::open(&path, &config)?
        } else {
            let p = path.clone();
            tokio::task::spawn_blocking(move || StateDb::open(&p, &config))
                .await
                .map_err(|_| StoreError::WorkerGone)??
        };
        Ok(Self::from_db(db, clock, config.inline))
    }

    /// Wraps an open [`StateDb`].
    pub fn from_db(db: StateDb, clock: Clock, inline: bool) -> Self {
        let path = db.path().to_path_buf();
        Self { shared: Arc::new(Shared { db: Mutex::new(db), path, clock, inline }) }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The clock that stamps records.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Runs `f` on the database now, blocking the caller: for synchronous callers such as a
    /// [`CredentialStore`](unattended_token::CredentialStore).
    pub fn blocking<R>(&self, f: impl FnOnce(&mut StateDb) -> R) -> R {
        f(&mut self.shared.db.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on the database, off the async workers unless the store is inline.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut StateDb) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        if self.shared.inline {
            return self.blocking(f);
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            f(&mut shared.db.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await
        .map_err(|_| StoreError::WorkerGone)?
    }
}

impl StateStore for Store {
    async fn save_checkpoint(
        &self,
        task: &str,
        value: serde_json::Value,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let (task, now) = (task.to_owned(), self.shared.clock.wall());
        let json = serde_json::to_string(&value)?;
        self.run(move |db| db.save_checkpoint(&task, &json, expect, now)).await
    }

    async fn load_checkpoint(
        &self,
        task: &str,
    ) -> Result<Option<Checkpoint<serde_json::Value>>, StoreError> {
        let task = task.to_owned();
        let Some(c) = self.run(move |db| db.load_checkpoint(&task)).await? else {
            return Ok(None);
        };
        let value = serde_json::from_str(&c.value).map_err(|e| StoreError::Corrupt {
            path: self.shared.path.clone(),
            detail: format!("a checkpoint is not JSON: {e}"),
        })?;
        Ok(Some(Checkpoint { value, version: c.version, updated_at: c.updated_at }))
    }

    async fn start_run(&self, task: &str) -> Result<RunId, StoreError> {
        let (task, now) = (task.to_owned(), self.shared.clock.wall());
        self.run(move |db| db.start_run(&task, now)).await
    }

    async fn finish_run(&self, id: RunId, end: RunEnd) -> Result<(), StoreError> {
        self.run(move |db| db.finish_run(id, &end)).await
    }

    async fn runs(&self, task: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let task = task.to_owned();
        self.run(move |db| db.runs(&task, limit)).await
    }

    async fn set_task_state(&self, task: &str, status: TaskStatus) -> Result<(), StoreError> {
        let (task, now) = (task.to_owned(), self.shared.clock.wall());
        self.run(move |db| db.set_task_state(&task, &status, now)).await
    }

    async fn task_states(&self) -> Result<Vec<(String, TaskStatus)>, StoreError> {
        self.run(|db| db.task_states()).await
    }

    async fn task_state(&self, task: &str) -> Result<Option<TaskStatus>, StoreError> {
        let task = task.to_owned();
        self.run(move |db| db.task_state(&task)).await
    }

    async fn prune_runs(&self, task: &str, keep: usize) -> Result<usize, StoreError> {
        let task = task.to_owned();
        self.run(move |db| db.prune_runs(&task, keep)).await
    }

    async fn abandon_unfinished_runs(&self) -> Result<usize, StoreError> {
        let now = self.shared.clock.wall();
        self.run(move |db| db.abandon_unfinished_runs(now)).await
    }

    async fn delete_checkpoint(&self, task: &str) -> Result<bool, StoreError> {
        let task = task.to_owned();
        self.run(move |db| db.delete_checkpoint(&task)).await
    }

    async fn replace_held(&self, kind: &str, held: Vec<HeldService>) -> Result<(), StoreError> {
        let kind = kind.to_owned();
        self.run(move |db| db.replace_held(&kind, &held)).await
    }

    async fn held(&self, kind: &str) -> Result<Vec<HeldService>, StoreError> {
        let kind = kind.to_owned();
        self.run(move |db| db.held(&kind)).await
    }

    async fn replace_paces(&self, name: &str, paces: Vec<LearnedPace>) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.run(move |db| db.replace_paces(&name, &paces)).await
    }

    async fn paces(&self, name: &str) -> Result<Vec<LearnedPace>, StoreError> {
        let name = name.to_owned();
        self.run(move |db| db.paces(&name)).await
    }
}
