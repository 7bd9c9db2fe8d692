//! The database itself, blocking: one SQLite connection in WAL mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use secrecy::{ExposeSecret, SecretString};

use crate::error::StoreError;
use crate::records::{
    Checkpoint, Claim, Expect, HeldService, Holder, LearnedPace, Lease, RunEnd, RunId, RunRecord,
    TaskState, TaskStatus,
};
use crate::schema::{LATEST, MIGRATIONS};

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed; the last
    /// commits before a power cut may be lost (the database stays consistent). Credentials are
    /// always written with `FULL`.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it returns.
    Full,
}

/// How the database is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub(crate) busy_timeout: Duration,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) durability: Durability,
    pub(crate) inline: bool,
    pub(crate) read_only: bool,
}

impl StoreConfig {
    /// Wait up to 5 s for another process's lock, no size limit, [`Durability::Normal`],
    /// blocking work on tokio's blocking pool.
    pub const fn new() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_bytes: None,
            durability: Durability::Normal,
            inline: false,
            read_only: false,
        }
    }

    /// Opens the database for reading only (for a status command next to a running job): no
    /// file is created, no migration runs, and every write fails with [`StoreError::ReadOnly`].
    #[must_use]
    pub const fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// How long a write waits for another process's lock before failing with
    /// [`StoreError::Busy`].
    #[must_use]
    pub const fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Caps the database file's size; a write past it fails with [`StoreError::Full`], as on a
    /// full disk.
    #[must_use]
    pub const fn max_bytes(mut self, max: Option<u64>) -> Self {
        self.max_bytes = max;
        self
    }

    /// How hard a commit tries to reach the disk.
    #[must_use]
    pub const fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Runs database work on the calling task instead of tokio's blocking pool: for tests under
    /// a paused clock (which would otherwise jump ahead while a write runs) and for small
    /// current-thread programs. Writes are short, but they do block the task.
    #[must_use]
    pub const fn inline(mut self, inline: bool) -> Self {
        self.inline = inline;
        self
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The state database, with blocking calls. [`Store`](crate::Store) is the async face.
#[derive(Debug)]
pub struct StateDb {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl StateDb {
    /// The schema version this program writes (and the newest it opens).
    pub const SCHEMA_VERSION: i64 = LATEST;

    /// Opens (creating if needed, mode `0600` on Unix) the database at `path`, checks it and
    /// brings its schema up to date.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or created, is not a database or is damaged, is read-only, or
    /// was written by a newer version of this program.
    pub fn open(path: impl AsRef<Path>, config: &StoreConfig) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if config.read_only {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&path, flags)
                .map_err(|e| StoreError::sqlite(&path, e))?;
            conn.busy_timeout(config.busy_timeout).map_err(|e| StoreError::sqlite(&path, e))?;
            return Ok(Self { conn, path });
        }
        create_private(&path)
            .map_err(|source| StoreError::Open { path: path.clone(), source: source.into() })?;
        let conn = Connection::open(&path).map_err(|e| StoreError::sqlite(&path, e))?;
        let mut db = Self { conn, path };
        db.configure(config)?;
        db.migrate_to(LATEST)?;
        Ok(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| StoreError::sqlite(&self.path, e)
    }

    fn configure(&mut self, config: &StoreConfig) -> Result<(), StoreError> {
        let err = |e| StoreError::sqlite(&self.path, e);
        self.conn.busy_timeout(config.busy_timeout).map_err(err)?;
        let mode: String =
            self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), %mode, "the state database is not in WAL mode");
        }
        let sync = match config.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        self.conn.execute_batch(&format!("PRAGMA synchronous = {sync}")).map_err(err)?;
        if let Some(max) = config.max_bytes {
            let page: i64 =
                self.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(err)?;
            let pages = (max / page.max(512).unsigned_abs()).max(1);
            self.conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(err)?;
        }
        let check: String =
            self.conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(err)?;
        if check != "ok" {
            return Err(StoreError::Corrupt { path: self.path.clone(), detail: check });
        }
        Ok(())
    }

    /// Applies the migrations up to `target`, one transaction each.
    pub(crate) fn migrate_to(&mut self, target: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let found: i64 =
            self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        if found > LATEST {
            return Err(StoreError::TooNew { path, found, supported: LATEST });
        }
        for version in found..target {
            let tx =
                self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
            let step = usize::try_from(version).unwrap_or(usize::MAX);
            tx.execute_batch(MIGRATIONS.get(step).copied().unwrap_or_default()).map_err(err)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1)).map_err(err)?;
            tx.commit().map_err(err)?;
            tracing::info!(path = %path.display(), version = version + 1, "state database migrated");
        }
        Ok(())
    }

    /// The schema version of the file.
    ///
    /// # Errors
    ///
    /// SQLite could not answer.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err())
    }

    pub(crate) fn write(&mut self) -> Result<Transaction<'_>, StoreError> {
        let path = &self.path;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(path, e))
    }

    /// Saves `task`'s checkpoint (JSON text) in one transaction; returns its new version.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if `expect` does not hold; a full disk or another SQLite
    /// failure, with the old checkpoint intact.
    pub fn save_checkpoint(
        &mut self,
        task: &str,
        json: &str,
        expect: Expect,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let tx = self.write()?;
        let found: Option<i64> = tx
            .query_row("SELECT version FROM checkpoints WHERE task = ?1", [task], |r| r.get(0))
            .optional()
            .map_err(err)?;
        let found = found.map_or(0, i64::unsigned_abs);
        let expected = match expect {
            Expect::Any => found,
            Expect::Absent => 0,
            Expect::Version(v) => v,
        };
        if found != expected {
            return Err(StoreError::Conflict { task: task.to_owned(), expected, found });
        }
        let version = found + 1;
        tx.execute(
            "INSERT INTO checkpoints (task, value, version, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (task) DO UPDATE SET value = ?2, version = ?3, updated_at = ?4",
            params![task, json, version.cast_signed(), now.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(version)
    }

    /// `task`'s checkpoint as JSON text, if any.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn load_checkpoint(&self, task: &str) -> Result<Option<Checkpoint<String>>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT value, version, updated_at FROM checkpoints WHERE task = ?1",
                [task],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        row.map(|(value, version, at)| {
            Ok(Checkpoint { value, version: version.unsigned_abs(), updated_at: self.time(&at)? })
        })
        .transpose()
    }

    /// Removes `task`'s checkpoint; returns whether there was one.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn delete_checkpoint(&mut self, task: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM checkpoints WHERE task = ?1", [task])
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Records the start of a run of `task`.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn start_run(
        &mut self,
        task: &str,
        runner: &str,
        at: Timestamp,
    ) -> Result<RunId, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (task, started_at, runner) VALUES (?1, ?2, ?3)",
                params![task, at.to_string(), runner],
            )
            .map_err(self.err())?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Records how run `id` ended.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn finish_run(&mut self, id: RunId, end: &RunEnd) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, disposition = ?4, error = ?5,
                 attempts = ?6, summary = ?7 WHERE id = ?1",
                params![
                    id.0,
                    end.finished_at.to_string(),
                    end.outcome.as_str(),
                    end.disposition,
                    end.error,
                    end.attempts,
                    end.summary
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Deletes all but the newest `keep` finished runs of `task`; returns how many went.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn prune_runs(&mut self, task: &str, keep: usize) -> Result<usize, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM runs WHERE task = ?1 AND finished_at IS NOT NULL AND id NOT IN
                 (SELECT id FROM runs WHERE task = ?1 ORDER BY id DESC LIMIT ?2)",
                params![task, keep],
            )
            .map_err(self.err())
    }

    /// Marks every unfinished run as [`RunOutcome::Abandoned`](crate::RunOutcome::Abandoned) at
    /// `at` (call at start: they were cut short by the previous process's end), except those of
    /// tasks whose lease is live (another runner runs them); returns how many.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn abandon_unfinished_runs(&mut self, at: Timestamp) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?1, outcome = 'abandoned',
                 error = 'the process stopped during the run' WHERE finished_at IS NULL
                 AND task NOT IN (SELECT task FROM leases WHERE released = 0 AND expires_us > ?2)",
                params![at.to_string(), micros(at)],
            )
            .map_err(self.err())
    }

    /// The last `limit` runs of `task`, newest first.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn runs(&self, task: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, task, started_at, finished_at, outcome, disposition, error, attempts,
                 summary, runner FROM runs WHERE task = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(self.err())?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![task, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })
            .map_err(self.err())?;
        let mut runs = Vec::new();
        for row in rows {
            let (
                id,
                task,
                started,
                finished,
                outcome,
                disposition,
                error,
                attempts,
                summary,
                runner,
            ) = row.map_err(self.err())?;
            let end = match (finished, outcome) {
                (Some(finished), Some(outcome)) => Some(RunEnd {
                    finished_at: self.time(&finished)?,
                    outcome: outcome.parse().map_err(|e| self.corrupt(e))?,
                    disposition,
                    error,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    summary,
                }),
                _ => None,
            };
            runs.push(RunRecord {
                id: RunId(id),
                task,
                started_at: self.time(&started)?,
                end,
                runner,
            });
        }
        Ok(runs)
    }

    /// Sets `task`'s state.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn set_task_state(
        &mut self,
        task: &str,
        status: &TaskStatus,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
        self.conn
            .execute(
                "INSERT INTO task_states (task, state, since, next_run, updated_at, reason,
                 last_slot, last_success, last_error, last_disposition, failures, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (task) DO UPDATE SET state = ?2, since = ?3, next_run = ?4,
                 updated_at = ?5, reason = ?6, last_slot = ?7, last_success = ?8,
                 last_error = ?9, last_disposition = ?10, failures = ?11, run_id = ?12",
                params![
                    task,
                    status.state.as_str(),
                    status.since.to_string(),
                    time(status.next_run),
                    now.to_string(),
                    status.reason,
                    time(status.last_slot),
                    time(status.last_success),
                    status.last_error,
                    status.last_disposition,
                    status.failures,
                    status.run.map(|r| r.0),
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Every task's state, by task name.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn task_states(&self) -> Result<Vec<(String, TaskStatus)>, StoreError> {
        self.query_states(
            "SELECT task, state, since, next_run, reason, last_slot, last_success,
             last_error, last_disposition, failures, run_id FROM task_states ORDER BY task",
            [],
        )
    }

    /// `task`'s state, if it has one.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn task_state(&self, task: &str) -> Result<Option<TaskStatus>, StoreError> {
        let found = self.query_states(
            "SELECT task, state, since, next_run, reason, last_slot, last_success,
             last_error, last_disposition, failures, run_id FROM task_states WHERE task = ?1",
            [task],
        )?;
        Ok(found.into_iter().next().map(|(_, status)| status))
    }

    /// Removes `task`'s state; returns whether it had one.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn delete_task_state(&mut self, task: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM task_states WHERE task = ?1", [task])
            .map_err(self.err())?;
        Ok(n > 0)
    }

    fn query_states(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, TaskStatus)>, StoreError> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
        );
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params, |r| {
                Ok::<Row, _>((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(self.err())?;
        let mut states = Vec::new();
        for row in rows {
            let (
                task,
                state,
                since,
                next,
                reason,
                slot,
                success,
                error,
                disposition,
                failures,
                run,
            ) = row.map_err(self.err())?;
            let time = |t: Option<String>| t.map(|t| self.time(&t)).transpose();
            let mut status = TaskStatus::new(
                state.parse::<TaskState>().map_err(|e| self.corrupt(e))?,
                self.time(&since)?,
            );
            status.next_run = time(next)?;
            status.reason = reason;
            status.last_slot = time(slot)?;
            status.last_success = time(success)?;
            status.last_error = error;
            status.last_disposition = disposition;
            status.failures = u32::try_from(failures).unwrap_or(u32::MAX);
            status.run = run.map(RunId);
            states.push((task, status));
        }
        Ok(states)
    }

    /// Replaces what `holder` holds of `kind` (open breakers, pauses) in one transaction, and
    /// forgets what anyone held of `kind` that ended before `now`.
    ///
    /// # Errors
    ///
    /// A SQLite failure; the old rows stay.
    pub fn replace_held(
        &mut self,
        kind: &str,
        holder: &str,
        held: &[HeldService],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM held WHERE kind = ?1 AND (holder = ?2 OR until_us <= ?3)",
            params![kind, holder, micros(now)],
        )
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO held (kind, holder, key, until, until_us)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for h in held {
                insert
                    .execute(params![kind, holder, h.key, h.until.to_string(), micros(h.until)])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The services held of `kind` by any holder, by key; a key held by several runners comes
    /// once, with the latest end.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn held(&self, kind: &str) -> Result<Vec<HeldService>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, until FROM held WHERE kind = ?1 ORDER BY key, until_us DESC")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([kind], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.err())?;
        let mut held: Vec<HeldService> = Vec::new();
        for row in rows {
            let (key, until) = row.map_err(self.err())?;
            if held.last().is_some_and(|h| h.key == key) {
                continue;
            }
            held.push(HeldService { key, until: self.time(&until)? });
        }
        Ok(held)
    }

    /// Replaces the paces saved under `name` in one transaction.
    ///
    /// # Errors
    ///
    /// A SQLite failure; the old rows stay.
    pub fn replace_paces(&mut self, name: &str, paces: &[LearnedPace]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let tx = self.write()?;
        tx.execute("DELETE FROM paces WHERE name = ?1", [name]).map_err(err)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO paces (name, key, rate, learned_at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            for p in paces {
                insert
                    .execute(params![name, p.key, p.rate, p.learned_at.to_string()])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The paces saved under `name`, by key.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn paces(&self, name: &str) -> Result<Vec<LearnedPace>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, rate, learned_at FROM paces WHERE name = ?1 ORDER BY key")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(self.err())?;
        let mut paces = Vec::new();
        for row in rows {
            let (key, rate, learned_at) = row.map_err(self.err())?;
            paces.push(LearnedPace { key, rate, learned_at: self.time(&learned_at)? });
        }
        Ok(paces)
    }

    /// Saves the secret `name` (a refresh token), committed with `synchronous=FULL` whatever the
    /// configured durability: losing a rotated refresh token means asking a human.
    ///
    /// # Errors
    ///
    /// A full disk or another SQLite failure; the old secret stays.
    pub fn save_credential(
        &mut self,
        name: &str,
        secret: &SecretString,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let previous: String = self
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
            .map(|v| v.to_string())
            .map_err(err)?;
        self.conn.execute_batch("PRAGMA synchronous = FULL").map_err(err)?;
        let result = self.conn.execute(
            "INSERT INTO credentials (name, secret, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET secret = ?2, updated_at = ?3",
            params![name, secret.expose_secret(), now.to_string()],
        );
        self.conn.execute_batch(&format!("PRAGMA synchronous = {previous}")).map_err(err)?;
        result.map(drop).map_err(err)
    }

    /// The secret `name`, if saved.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn credential(&self, name: &str) -> Result<Option<SecretString>, StoreError> {
        self.conn
            .query_row("SELECT secret FROM credentials WHERE name = ?1", [name], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|s| s.map(SecretString::from))
            .map_err(self.err())
    }

    /// Claims `task` for `me` until `until` (see [`Claim`]), in one transaction.
    ///
    /// # Errors
    ///
    /// A SQLite failure; nothing changed.
    pub fn claim(
        &mut self,
        task: &str,
        me: &Holder,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let tx = self.write()?;
        let found = tx
            .query_row(&format!("{LEASE_COLUMNS} WHERE task = ?1"), [task], lease_row)
            .optional()
            .map_err(err)?
            .map(|row| {
                lease(row).ok_or_else(|| StoreError::Corrupt {
                    path: path.clone(),
                    detail: LEASE_RANGE.to_owned(),
                })
            })
            .transpose()?;
        let decision = lease_decision(found, me, now);
        if let Claim::Granted { took_over: Some(earlier) } = &decision {
            tx.execute(
                "UPDATE runs SET finished_at = ?2, outcome = 'abandoned', error = ?3
                 WHERE task = ?1 AND finished_at IS NULL",
                params![task, now.to_string(), abandoned_by(earlier)],
            )
            .map_err(err)?;
        }
        if matches!(decision, Claim::Granted { .. }) {
            tx.execute(
                "INSERT INTO leases (task, holder, host, pid, instance, expires_us, released)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (task) DO UPDATE SET holder = ?2, host = ?3, pid = ?4,
                 instance = ?5, expires_us = ?6, released = 0",
                params![task, me.name, me.host, me.pid, me.instance.cast_signed(), micros(until)],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(decision)
    }

    /// Moves the expiry of `me`'s lease on `task` to `until`; `false` if `me` no longer holds
    /// it (another runner took it over).
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn renew(&mut self, task: &str, me: &Holder, until: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE leases SET expires_us = ?3 WHERE task = ?1 AND instance = ?2
                 AND released = 0",
                params![task, me.instance.cast_signed(), micros(until)],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Gives back `me`'s lease on `task`; `false` if `me` did not hold it.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn release(&mut self, task: &str, me: &Holder, now: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE leases SET released = 1, expires_us = ?3 WHERE task = ?1 AND instance = ?2
                 AND released = 0",
                params![task, me.instance.cast_signed(), micros(now)],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Every task's lease, by task.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("{LEASE_COLUMNS} ORDER BY task")).map_err(self.err())?;
        let rows = stmt.query_map([], lease_row).map_err(self.err())?;
        let mut leases = Vec::new();
        for row in rows {
            leases.push(lease(row.map_err(self.err())?).ok_or_else(|| self.corrupt(LEASE_RANGE))?);
        }
        Ok(leases)
    }

    pub(crate) fn time(&self, text: &str) -> Result<Timestamp, StoreError> {
        text.parse().map_err(|e: jiff::Error| self.corrupt(e))
    }

    pub(crate) fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), detail: detail.to_string() }
    }
}

/// A time as microseconds since the epoch: leases and held services are compared in SQL.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> Option<Timestamp> {
    Timestamp::from_microsecond(us).ok()
}

/// A lease's columns, in the order of [`LeaseRow`] (both backends).
pub(crate) const LEASE_COLUMNS: &str =
    "SELECT task, holder, host, pid, instance, expires_us, released FROM leases";

pub(crate) const LEASE_RANGE: &str = "a lease's expiry is out of range";

/// A lease as read: task, holder, host, pid, instance, expiry (µs), released.
pub(crate) type LeaseRow = (String, String, String, i64, i64, i64, bool);

fn lease_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

/// The lease of a row; `None` if its expiry is out of range.
pub(crate) fn lease(
    (task, name, host, pid, instance, expires, released): LeaseRow,
) -> Option<Lease> {
    Some(Lease {
        task,
        holder: Holder {
            name,
            host,
            pid: u32::try_from(pid).unwrap_or(0),
            instance: instance.cast_unsigned(),
        },
        expires_at: from_micros(expires)?,
        released,
    })
}

/// Whether `me` may take `task` at `now`, given its lease as found (the one rule of both
/// backends).
pub(crate) fn lease_decision(found: Option<Lease>, me: &Holder, now: Timestamp) -> Claim {
    match found {
        None => Claim::Granted { took_over: None },
        Some(lease) if lease.excludes(me, now) => Claim::Held(lease),
        Some(lease) => Claim::Granted {
            took_over: (!lease.released && !me.is(&lease.holder)).then_some(lease.holder),
        },
    }
}

/// Why a run was marked abandoned when its task was taken over.
pub(crate) fn abandoned_by(earlier: &Holder) -> String {
    format!("the runner {earlier} stopped during the run; another runner took the task over")
}

/// Creates the file readable by its owner only, if it does not exist yet (SQLite gives its WAL
/// and shared-memory files the same mode).
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_: &Path) -> std::io::Result<()> {
    Ok(())
}
