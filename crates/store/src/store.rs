//! The async face of the database, and the trait other backends implement.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use unattended_core::Clock;

use crate::alerts::{AlertId, AlertRecord, Delivery, Incident, NewAlert, PendingDelivery};
use crate::db::{StateDb, StoreConfig};
use crate::entries::Entry;
use crate::error::StoreError;
#[cfg(feature = "postgres")]
use crate::pg::PgDb;
use crate::records::{
    Checkpoint, Claim, Expect, HeldService, Holder, LearnedPace, Lease, RunEnd, RunId, RunRecord,
    TaskStatus,
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

    /// Claims `task` for this store's [`holder`](Store::holder) for `lease` (see [`Claim`]).
    fn claim(
        &self,
        task: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Extends this holder's lease on `task` to `lease` from now; `false` if another runner
    /// took it over.
    fn renew(
        &self,
        task: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives back this holder's lease on `task`; `false` if it did not hold it.
    fn release(&self, task: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every task's lease.
    fn leases(&self) -> impl Future<Output = Result<Vec<Lease>, StoreError>> + Send;

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
    db: Arc<Mutex<Database>>,
    path: PathBuf,
    clock: Clock,
    inline: bool,
    holder: Holder,
}

/// The database behind a [`Store`]: a SQLite file or a PostgreSQL server. Both answer the same
/// calls with the same meaning (the methods below); [`Store::blocking`] hands it out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Database {
    /// One SQLite file.
    Sqlite(StateDb),
    /// A PostgreSQL server, shared by several runners.
    #[cfg(feature = "postgres")]
    Postgres(Box<PgDb>),
}

/// Methods of [`Database`] that call the same method of whichever backend it is.
macro_rules! forward {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        impl Database {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                ///
                /// As the backend's method of the same name.
                pub fn $name(&mut self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Self::Sqlite(db) => db.$name($($arg),*),
                        #[cfg(feature = "postgres")]
                        Self::Postgres(db) => db.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

forward! {
    /// The schema version of the database.
    fn schema_version() -> Result<i64, StoreError>;
    /// As [`StateDb::save_checkpoint`].
    fn save_checkpoint(task: &str, json: &str, expect: Expect, now: Timestamp) -> Result<u64, StoreError>;
    /// As [`StateDb::load_checkpoint`].
    fn load_checkpoint(task: &str) -> Result<Option<Checkpoint<String>>, StoreError>;
    /// As [`StateDb::delete_checkpoint`].
    fn delete_checkpoint(task: &str) -> Result<bool, StoreError>;
    /// As [`StateDb::start_run`].
    fn start_run(task: &str, runner: &str, at: Timestamp) -> Result<RunId, StoreError>;
    /// As [`StateDb::finish_run`].
    fn finish_run(id: RunId, end: &RunEnd) -> Result<(), StoreError>;
    /// As [`StateDb::prune_runs`].
    fn prune_runs(task: &str, keep: usize) -> Result<usize, StoreError>;
    /// As [`StateDb::abandon_unfinished_runs`].
    fn abandon_unfinished_runs(at: Timestamp) -> Result<usize, StoreError>;
    /// As [`StateDb::runs`].
    fn runs(task: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
    /// As [`StateDb::set_task_state`].
    fn set_task_state(task: &str, status: &TaskStatus, now: Timestamp) -> Result<(), StoreError>;
    /// As [`StateDb::task_states`].
    fn task_states() -> Result<Vec<(String, TaskStatus)>, StoreError>;
    /// As [`StateDb::task_state`].
    fn task_state(task: &str) -> Result<Option<TaskStatus>, StoreError>;
    /// As [`StateDb::delete_task_state`].
    fn delete_task_state(task: &str) -> Result<bool, StoreError>;
    /// As [`StateDb::replace_held`].
    fn replace_held(kind: &str, holder: &str, held: &[HeldService], now: Timestamp) -> Result<(), StoreError>;
    /// As [`StateDb::held`].
    fn held(kind: &str) -> Result<Vec<HeldService>, StoreError>;
    /// As [`StateDb::replace_paces`].
    fn replace_paces(name: &str, paces: &[LearnedPace]) -> Result<(), StoreError>;
    /// As [`StateDb::paces`].
    fn paces(name: &str) -> Result<Vec<LearnedPace>, StoreError>;
    /// As [`StateDb::save_credential`].
    fn save_credential(name: &str, secret: &secrecy::SecretString, now: Timestamp) -> Result<(), StoreError>;
    /// As [`StateDb::credential`].
    fn credential(name: &str) -> Result<Option<secrecy::SecretString>, StoreError>;
    /// As [`StateDb::claim`].
    fn claim(task: &str, me: &Holder, until: Timestamp, now: Timestamp) -> Result<Claim, StoreError>;
    /// As [`StateDb::renew`].
    fn renew(task: &str, me: &Holder, until: Timestamp) -> Result<bool, StoreError>;
    /// As [`StateDb::release`].
    fn release(task: &str, me: &Holder, now: Timestamp) -> Result<bool, StoreError>;
    /// As [`StateDb::leases`].
    fn leases() -> Result<Vec<Lease>, StoreError>;
    /// As [`StateDb::record_alert`].
    fn record_alert(alert: &NewAlert, sinks: &[String]) -> Result<Option<AlertRecord>, StoreError>;
    /// As [`StateDb::pending_deliveries`].
    fn pending_deliveries() -> Result<Vec<PendingDelivery>, StoreError>;
    /// As [`StateDb::mark_delivered`].
    fn mark_delivered(alert: AlertId, sink: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// As [`StateDb::mark_failed`].
    fn mark_failed(alert: AlertId, sink: &str, error: &str, retry_at: Timestamp) -> Result<bool, StoreError>;
    /// As [`StateDb::open_incidents`].
    fn open_incidents() -> Result<Vec<Incident>, StoreError>;
    /// As [`StateDb::alerts`].
    fn alerts(limit: usize) -> Result<Vec<AlertRecord>, StoreError>;
    /// As [`StateDb::deliveries`].
    fn deliveries(alert: AlertId) -> Result<Vec<Delivery>, StoreError>;
    /// As [`StateDb::prune_alerts`].
    fn prune_alerts(keep: usize) -> Result<usize, StoreError>;
    /// As [`StateDb::put_entry`].
    fn put_entry(task: &str, kind: &str, key: &str, json: &str, now: Timestamp) -> Result<(), StoreError>;
    /// As [`StateDb::insert_entry`].
    fn insert_entry(task: &str, kind: &str, key: &str, json: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// As [`StateDb::entry`].
    fn entry(task: &str, kind: &str, key: &str) -> Result<Option<Entry<String>>, StoreError>;
    /// As [`StateDb::entries`].
    fn entries(task: &str, kind: &str, after: Option<i64>, limit: usize) -> Result<Vec<Entry<String>>, StoreError>;
    /// As [`StateDb::delete_entry`].
    fn delete_entry(task: &str, kind: &str, key: &str) -> Result<bool, StoreError>;
    /// As [`StateDb::delete_entries`].
    fn delete_entries(task: &str) -> Result<usize, StoreError>;
}

impl Database {
    /// Whether other processes, perhaps on other machines, may share it.
    pub fn is_shared(&self) -> bool {
        match self {
            Self::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => true,
        }
    }
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

    /// Opens the database at `location`: a `postgres://` (or `postgresql://`) URL connects to
    /// that server, anything else is a SQLite file's path (see [`open`](Self::open)).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), or [`PgDb::connect`](crate::PgDb::connect) for a server; a
    /// server address when this build has no PostgreSQL support.
    pub async fn open_location(
        location: &str,
        config: StoreConfig,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        if !is_server_address(location) {
            return Self::open(location, config, clock).await;
        }
        #[cfg(feature = "postgres")]
        {
            let url = location.to_owned();
            let db = tokio::task::spawn_blocking(move || PgDb::connect(&url))
                .await
                .map_err(|_| StoreError::WorkerGone)??;
            Ok(Self::from_database(Database::Postgres(Box::new(db)), clock, config.inline))
        }
        #[cfg(not(feature = "postgres"))]
        Err(StoreError::Open {
            path: PathBuf::from("postgres://…"),
            source: "this build has no PostgreSQL support (the `postgres` feature)".into(),
        })
    }

    /// Wraps an open [`StateDb`].
    pub fn from_db(db: StateDb, clock: Clock, inline: bool) -> Self {
        Self::from_database(Database::Sqlite(db), clock, inline)
    }

    fn from_database(db: Database, clock: Clock, inline: bool) -> Self {
        let path = match &db {
            Database::Sqlite(db) => db.path().to_path_buf(),
            #[cfg(feature = "postgres")]
            Database::Postgres(db) => db.target().to_path_buf(),
        };
        let holder = Holder::this_process(None);
        Self {
            shared: Arc::new(Shared { db: Arc::new(Mutex::new(db)), path, clock, inline, holder }),
        }
    }

    /// The same database (one connection), its runs, leases and held services written as
    /// `holder`'s.
    #[must_use]
    pub fn with_holder(&self, holder: Holder) -> Self {
        let shared = &self.shared;
        Self {
            shared: Arc::new(Shared {
                db: shared.db.clone(),
                path: shared.path.clone(),
                clock: shared.clock,
                inline: shared.inline,
                holder,
            }),
        }
    }

    /// Who this store's leases and held services belong to.
    pub fn holder(&self) -> &Holder {
        &self.shared.holder
    }

    /// Whether other processes, perhaps on other machines, share the database (PostgreSQL):
    /// then held services are followed, not only restored at start.
    pub fn is_shared(&self) -> bool {
        self.shared.db.lock().unwrap_or_else(PoisonError::into_inner).is_shared()
    }

    /// The database file, or for a server `postgres://user@host:port/dbname` (no password).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The clock that stamps records.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Runs `f` on the database now, blocking the caller: for synchronous callers such as a
    /// [`CredentialStore`](unattended_token::CredentialStore). A server's driver cannot run on
    /// an async worker, so for one `f` runs on a thread of its own while the caller waits.
    pub fn blocking<R: Send>(&self, f: impl FnOnce(&mut Database) -> R + Send) -> R {
        let mut db = self.shared.db.lock().unwrap_or_else(PoisonError::into_inner);
        if !db.is_shared() {
            return f(&mut db);
        }
        std::thread::scope(|scope| {
            let db = &mut *db;
            match scope.spawn(move || f(db)).join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs `f` on the database, off the async workers unless the store is inline.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Database) -> Result<R, StoreError> + Send + 'static,
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
        let runner = self.shared.holder.name.clone();
        self.run(move |db| db.start_run(&task, &runner, now)).await
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
        let (kind, now) = (kind.to_owned(), self.shared.clock.wall());
        let holder = format!("{}/{}", self.shared.holder.name, self.shared.holder.instance);
        self.run(move |db| db.replace_held(&kind, &holder, &held, now)).await
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

    async fn claim(&self, task: &str, lease: Duration) -> Result<Claim, StoreError> {
        let (task, now, me) =
            (task.to_owned(), self.shared.clock.wall(), self.shared.holder.clone());
        let until = unattended_core::clock::add_saturating(now, lease);
        self.run(move |db| db.claim(&task, &me, until, now)).await
    }

    async fn renew(&self, task: &str, lease: Duration) -> Result<bool, StoreError> {
        let (task, now, me) =
            (task.to_owned(), self.shared.clock.wall(), self.shared.holder.clone());
        let until = unattended_core::clock::add_saturating(now, lease);
        self.run(move |db| db.renew(&task, &me, until)).await
    }

    async fn release(&self, task: &str) -> Result<bool, StoreError> {
        let (task, now, me) =
            (task.to_owned(), self.shared.clock.wall(), self.shared.holder.clone());
        self.run(move |db| db.release(&task, &me, now)).await
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.run(|db| db.leases()).await
    }
}

/// Whether `location` names a PostgreSQL server rather than a file.
pub(crate) fn is_server_address(location: &str) -> bool {
    let lower = location.get(..13).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}
