//! The same database on a PostgreSQL server, for several runners on several machines.
//!
//! One connection per [`Store`](crate::Store), used from tokio's blocking pool like the SQLite
//! file (the driver's blocking client); it reconnects when the server closed it. The schema is
//! versioned in `unattended_schema` and migrated on connect under an advisory lock, so runners
//! started together migrate it once. Leases are claimed with `SELECT … FOR UPDATE SKIP LOCKED`:
//! a runner never waits on another's claim.
//!
//! The connection is plain TCP (or a Unix socket): keep the server on a private network or
//! reach it through a tunnel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Transaction};
use secrecy::{ExposeSecret, SecretString};

use crate::alerts::{
    AlertId, AlertKind, AlertRecord, Delivery, Incident, NewAlert, PendingDelivery,
};
use crate::db::{self, LEASE_COLUMNS, LEASE_RANGE, abandoned_by, lease_decision, micros};
use crate::entries::Entry;
use crate::error::StoreError;
use crate::records::{
    Checkpoint, Claim, Expect, HeldService, Holder, LearnedPace, Lease, RunEnd, RunId, RunRecord,
    TaskState, TaskStatus,
};

/// Each entry takes the schema from version `i` to `i + 1`. Never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite file holds at its version 7.
    "CREATE TABLE checkpoints (
        task        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        version     BIGINT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task         TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        outcome      TEXT,
        disposition  TEXT,
        error        TEXT,
        attempts     BIGINT NOT NULL DEFAULT 0,
        summary      TEXT,
        runner       TEXT
    );
    CREATE INDEX runs_by_task ON runs (task, id);
    CREATE TABLE task_states (
        task              TEXT PRIMARY KEY,
        state             TEXT NOT NULL,
        since             TEXT NOT NULL,
        next_run          TEXT,
        updated_at        TEXT NOT NULL,
        reason            TEXT,
        last_slot         TEXT,
        last_success      TEXT,
        last_error        TEXT,
        last_disposition  TEXT,
        failures          BIGINT NOT NULL DEFAULT 0,
        run_id            BIGINT
    );
    CREATE TABLE held (
        kind        TEXT NOT NULL,
        holder      TEXT NOT NULL,
        key         TEXT NOT NULL,
        until       TEXT NOT NULL,
        until_us    BIGINT NOT NULL,
        PRIMARY KEY (kind, holder, key)
    );
    CREATE TABLE credentials (
        name        TEXT PRIMARY KEY,
        secret      TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE alerts (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        incident    TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('raised', 'recovered')),
        task        TEXT,
        title       TEXT NOT NULL,
        detail      TEXT NOT NULL,
        help        TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE alert_deliveries (
        alert            BIGINT NOT NULL REFERENCES alerts (id),
        sink             TEXT NOT NULL,
        delivered_at     TEXT,
        attempts         BIGINT NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT,
        PRIMARY KEY (alert, sink)
    );
    CREATE INDEX alert_deliveries_pending ON alert_deliveries (alert) WHERE delivered_at IS NULL;
    CREATE TABLE incidents (
        key        TEXT PRIMARY KEY,
        opened_at  TEXT NOT NULL,
        alert      BIGINT NOT NULL REFERENCES alerts (id)
    );
    CREATE TABLE entries (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        UNIQUE (task, kind, key)
    );
    CREATE INDEX entries_in_order ON entries (task, kind, seq);
    CREATE TABLE paces (
        name        TEXT NOT NULL,
        key         TEXT NOT NULL,
        rate        DOUBLE PRECISION NOT NULL,
        learned_at  TEXT NOT NULL,
        PRIMARY KEY (name, key)
    );
    CREATE TABLE leases (
        task         TEXT PRIMARY KEY,
        holder       TEXT NOT NULL,
        host         TEXT NOT NULL,
        pid          BIGINT NOT NULL,
        instance     BIGINT NOT NULL,
        expires_us   BIGINT NOT NULL,
        released     BOOLEAN NOT NULL DEFAULT FALSE
    );",
];

/// The schema version this program writes on PostgreSQL.
const LATEST: i64 = MIGRATIONS.len() as i64;

/// Any 64-bit constant: the advisory lock that serialises migrations of one database.
const MIGRATION_LOCK: i64 = 0x756e_6174_7465_6e64;

/// The state database on a PostgreSQL server, with blocking calls.
pub struct PgDb {
    /// Always `Some` but while dropped: the driver's client blocks when dropped, which an async
    /// worker must not do, so it is dropped on a thread of its own.
    client: Option<Client>,
    config: Config,
    /// The server and database, without the password: what errors and `status` show.
    target: PathBuf,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").field("target", &self.target).finish_non_exhaustive()
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgDb {
    /// The schema version this program writes (and the newest it opens).
    pub const SCHEMA_VERSION: i64 = LATEST;

    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, or the
    /// `key=value` form) and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// The address is not a PostgreSQL URL, the server cannot be reached or refuses the login,
    /// or its schema is newer than this program's.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| StoreError::Open {
            path: PathBuf::from("postgres://…"),
            source: format!("not a PostgreSQL address: {e}").into(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("unattended");
        }
        let target = PathBuf::from(display(&config));
        let client = config
            .connect(NoTls)
            .map_err(|e| StoreError::Open { path: target.clone(), source: e.into() })?;
        let mut db = Self { client: Some(client), config, target };
        db.migrate()?;
        Ok(db)
    }

    /// The server and database, as `postgres://user@host:port/dbname` (no password).
    pub fn target(&self) -> &Path {
        &self.target
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.conn()?.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(err)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS unattended_schema (version BIGINT NOT NULL)")
            .map_err(err)?;
        let found: i64 =
            match tx.query_opt("SELECT version FROM unattended_schema", &[]).map_err(err)? {
                Some(row) => row.get(0),
                None => {
                    tx.execute("INSERT INTO unattended_schema (version) VALUES (0)", &[])
                        .map_err(err)?;
                    0
                }
            };
        if found > LATEST {
            return Err(StoreError::TooNew { path: target, found, supported: LATEST });
        }
        for version in found..LATEST {
            let step = usize::try_from(version).unwrap_or(usize::MAX);
            tx.batch_execute(MIGRATIONS.get(step).copied().unwrap_or_default()).map_err(err)?;
            tx.execute("UPDATE unattended_schema SET version = $1", &[&(version + 1)])
                .map_err(err)?;
            tracing::info!(database = %target.display(), version = version + 1, "state database migrated");
        }
        tx.commit().map_err(err)
    }

    /// The schema version of the database.
    ///
    /// # Errors
    ///
    /// The server could not answer.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        let row = self.one("SELECT version FROM unattended_schema", &[])?;
        Ok(row.get(0))
    }

    /// The connection, made again if the server closed it.
    fn conn(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            tracing::warn!(database = %self.target.display(), "the state database closed its connection; connecting again");
            let client = self
                .config
                .connect(NoTls)
                .map_err(|e| StoreError::Open { path: self.target.clone(), source: e.into() })?;
            if let Some(old) = self.client.replace(client) {
                drop_off_thread(old);
            }
        }
        self.client.as_mut().ok_or_else(|| StoreError::WorkerGone)
    }

    fn tx(&mut self) -> Result<Transaction<'_>, StoreError> {
        let target = self.target.clone();
        self.conn()?.transaction().map_err(|e| pg_error(&target, e))
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let target = self.target.clone();
        self.conn()?.execute(sql, params).map_err(|e| pg_error(&target, e))
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let target = self.target.clone();
        self.conn()?.query(sql, params).map_err(|e| pg_error(&target, e))
    }

    fn opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        let target = self.target.clone();
        self.conn()?.query_opt(sql, params).map_err(|e| pg_error(&target, e))
    }

    fn one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let target = self.target.clone();
        self.conn()?.query_one(sql, params).map_err(|e| pg_error(&target, e))
    }

    fn time(&self, text: &str) -> Result<Timestamp, StoreError> {
        text.parse().map_err(|e: jiff::Error| self.corrupt(e))
    }

    fn times(&self, text: Option<String>) -> Result<Option<Timestamp>, StoreError> {
        text.map(|t| self.time(&t)).transpose()
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: self.target.clone(), detail: detail.to_string() }
    }

    /// As [`StateDb::save_checkpoint`](crate::StateDb::save_checkpoint).
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if `expect` does not hold; a server failure.
    pub fn save_checkpoint(
        &mut self,
        task: &str,
        json: &str,
        expect: Expect,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.tx()?;
        let found = tx
            .query_opt("SELECT version FROM checkpoints WHERE task = $1 FOR UPDATE", &[&task])
            .map_err(err)?
            .map_or(0, |r| r.get::<_, i64>(0).unsigned_abs());
        let expected = match expect {
            Expect::Any => found,
            Expect::Absent => 0,
            Expect::Version(v) => v,
        };
        if found != expected {
            return Err(StoreError::Conflict { task: task.to_owned(), expected, found });
        }
        let version = found + 1;
        // A first save that races another inserts once: the loser's insert conflicts and its
        // update sees the winner's version, which it did not expect.
        let n = tx
            .execute(
                "INSERT INTO checkpoints (task, value, version, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (task) DO UPDATE SET value = $2, version = $3, updated_at = $4
                 WHERE checkpoints.version = $5",
                &[&task, &json, &version.cast_signed(), &now.to_string(), &found.cast_signed()],
            )
            .map_err(err)?;
        if n == 0 {
            return Err(StoreError::Conflict { task: task.to_owned(), expected, found: found + 1 });
        }
        tx.commit().map_err(err)?;
        Ok(version)
    }

    /// As [`StateDb::load_checkpoint`](crate::StateDb::load_checkpoint).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn load_checkpoint(
        &mut self,
        task: &str,
    ) -> Result<Option<Checkpoint<String>>, StoreError> {
        let Some(row) = self
            .opt("SELECT value, version, updated_at FROM checkpoints WHERE task = $1", &[&task])?
        else {
            return Ok(None);
        };
        Ok(Some(Checkpoint {
            value: row.get(0),
            version: row.get::<_, i64>(1).unsigned_abs(),
            updated_at: self.time(row.get(2))?,
        }))
    }

    /// As [`StateDb::delete_checkpoint`](crate::StateDb::delete_checkpoint).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn delete_checkpoint(&mut self, task: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM checkpoints WHERE task = $1", &[&task])? > 0)
    }

    /// As [`StateDb::start_run`](crate::StateDb::start_run).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn start_run(
        &mut self,
        task: &str,
        runner: &str,
        at: Timestamp,
    ) -> Result<RunId, StoreError> {
        let row = self.one(
            "INSERT INTO runs (task, started_at, runner) VALUES ($1, $2, $3) RETURNING id",
            &[&task, &at.to_string(), &runner],
        )?;
        Ok(RunId(row.get(0)))
    }

    /// As [`StateDb::finish_run`](crate::StateDb::finish_run).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn finish_run(&mut self, id: RunId, end: &RunEnd) -> Result<(), StoreError> {
        self.execute(
            "UPDATE runs SET finished_at = $2, outcome = $3, disposition = $4, error = $5,
             attempts = $6, summary = $7 WHERE id = $1",
            &[
                &id.0,
                &end.finished_at.to_string(),
                &end.outcome.as_str(),
                &end.disposition,
                &end.error,
                &i64::from(end.attempts),
                &end.summary,
            ],
        )
        .map(drop)
    }

    /// As [`StateDb::prune_runs`](crate::StateDb::prune_runs).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn prune_runs(&mut self, task: &str, keep: usize) -> Result<usize, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let n = self.execute(
            "DELETE FROM runs WHERE task = $1 AND finished_at IS NOT NULL AND id NOT IN
             (SELECT id FROM runs WHERE task = $1 ORDER BY id DESC LIMIT $2)",
            &[&task, &keep],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// As [`StateDb::abandon_unfinished_runs`](crate::StateDb::abandon_unfinished_runs).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn abandon_unfinished_runs(&mut self, at: Timestamp) -> Result<usize, StoreError> {
        let n = self.execute(
            "UPDATE runs SET finished_at = $1, outcome = 'abandoned',
             error = 'the process stopped during the run' WHERE finished_at IS NULL
             AND task NOT IN (SELECT task FROM leases WHERE NOT released AND expires_us > $2)",
            &[&at.to_string(), &micros(at)],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// As [`StateDb::runs`](crate::StateDb::runs).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn runs(&mut self, task: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            "SELECT id, task, started_at, finished_at, outcome, disposition, error, attempts,
             summary, runner FROM runs WHERE task = $1 ORDER BY id DESC LIMIT $2",
            &[&task, &limit],
        )?;
        let mut runs = Vec::with_capacity(rows.len());
        for r in rows {
            let end = match (r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(4)) {
                (Some(finished), Some(outcome)) => Some(RunEnd {
                    finished_at: self.time(&finished)?,
                    outcome: outcome.parse().map_err(|e| self.corrupt(e))?,
                    disposition: r.get(5),
                    error: r.get(6),
                    attempts: u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
                    summary: r.get(8),
                }),
                _ => None,
            };
            runs.push(RunRecord {
                id: RunId(r.get(0)),
                task: r.get(1),
                started_at: self.time(r.get(2))?,
                end,
                runner: r.get(9),
            });
        }
        Ok(runs)
    }

    /// As [`StateDb::set_task_state`](crate::StateDb::set_task_state).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn set_task_state(
        &mut self,
        task: &str,
        status: &TaskStatus,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
        self.execute(
            "INSERT INTO task_states (task, state, since, next_run, updated_at, reason,
             last_slot, last_success, last_error, last_disposition, failures, run_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (task) DO UPDATE SET state = $2, since = $3, next_run = $4,
             updated_at = $5, reason = $6, last_slot = $7, last_success = $8,
             last_error = $9, last_disposition = $10, failures = $11, run_id = $12",
            &[
                &task,
                &status.state.as_str(),
                &status.since.to_string(),
                &time(status.next_run),
                &now.to_string(),
                &status.reason,
                &time(status.last_slot),
                &time(status.last_success),
                &status.last_error,
                &status.last_disposition,
                &i64::from(status.failures),
                &status.run.map(|r| r.0),
            ],
        )
        .map(drop)
    }

    /// As [`StateDb::task_states`](crate::StateDb::task_states).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn task_states(&mut self) -> Result<Vec<(String, TaskStatus)>, StoreError> {
        let rows = self.query(&format!("{STATE_COLUMNS} ORDER BY task"), &[])?;
        rows.iter().map(|r| self.state(r)).collect()
    }

    /// As [`StateDb::task_state`](crate::StateDb::task_state).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn task_state(&mut self, task: &str) -> Result<Option<TaskStatus>, StoreError> {
        let row = self.opt(&format!("{STATE_COLUMNS} WHERE task = $1"), &[&task])?;
        row.map(|r| self.state(&r).map(|(_, s)| s)).transpose()
    }

    /// As [`StateDb::delete_task_state`](crate::StateDb::delete_task_state).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn delete_task_state(&mut self, task: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM task_states WHERE task = $1", &[&task])? > 0)
    }

    fn state(&self, r: &Row) -> Result<(String, TaskStatus), StoreError> {
        let state: String = r.get(1);
        let mut status = TaskStatus::new(
            state.parse::<TaskState>().map_err(|e| self.corrupt(e))?,
            self.time(r.get(2))?,
        );
        status.next_run = self.times(r.get(3))?;
        status.reason = r.get(4);
        status.last_slot = self.times(r.get(5))?;
        status.last_success = self.times(r.get(6))?;
        status.last_error = r.get(7);
        status.last_disposition = r.get(8);
        status.failures = u32::try_from(r.get::<_, i64>(9)).unwrap_or(u32::MAX);
        status.run = r.get::<_, Option<i64>>(10).map(RunId);
        Ok((r.get(0), status))
    }

    /// As [`StateDb::replace_held`](crate::StateDb::replace_held).
    ///
    /// # Errors
    ///
    /// A server failure; the old rows stay.
    pub fn replace_held(
        &mut self,
        kind: &str,
        holder: &str,
        held: &[HeldService],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.tx()?;
        tx.execute(
            "DELETE FROM held WHERE kind = $1 AND (holder = $2 OR until_us <= $3)",
            &[&kind, &holder, &micros(now)],
        )
        .map_err(err)?;
        let insert = tx
            .prepare(
                "INSERT INTO held (kind, holder, key, until, until_us) VALUES ($1, $2, $3, $4, $5)",
            )
            .map_err(err)?;
        for h in held {
            tx.execute(&insert, &[&kind, &holder, &h.key, &h.until.to_string(), &micros(h.until)])
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// As [`StateDb::held`](crate::StateDb::held).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn held(&mut self, kind: &str) -> Result<Vec<HeldService>, StoreError> {
        let rows = self.query(
            "SELECT DISTINCT ON (key) key, until FROM held WHERE kind = $1
             ORDER BY key, until_us DESC",
            &[&kind],
        )?;
        rows.iter()
            .map(|r| Ok(HeldService { key: r.get(0), until: self.time(r.get(1))? }))
            .collect()
    }

    /// As [`StateDb::replace_paces`](crate::StateDb::replace_paces).
    ///
    /// # Errors
    ///
    /// A server failure; the old rows stay.
    pub fn replace_paces(&mut self, name: &str, paces: &[LearnedPace]) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.tx()?;
        tx.execute("DELETE FROM paces WHERE name = $1", &[&name]).map_err(err)?;
        let insert = tx
            .prepare("INSERT INTO paces (name, key, rate, learned_at) VALUES ($1, $2, $3, $4)")
            .map_err(err)?;
        for p in paces {
            tx.execute(&insert, &[&name, &p.key, &p.rate, &p.learned_at.to_string()])
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// As [`StateDb::paces`](crate::StateDb::paces).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn paces(&mut self, name: &str) -> Result<Vec<LearnedPace>, StoreError> {
        let rows = self.query(
            "SELECT key, rate, learned_at FROM paces WHERE name = $1 ORDER BY key",
            &[&name],
        )?;
        rows.iter()
            .map(|r| {
                Ok(LearnedPace { key: r.get(0), rate: r.get(1), learned_at: self.time(r.get(2))? })
            })
            .collect()
    }

    /// As [`StateDb::save_credential`](crate::StateDb::save_credential): committed when the
    /// server has it on disk (`synchronous_commit = on` for this transaction).
    ///
    /// # Errors
    ///
    /// A server failure; the old secret stays.
    pub fn save_credential(
        &mut self,
        name: &str,
        secret: &SecretString,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.tx()?;
        tx.batch_execute("SET LOCAL synchronous_commit = on").map_err(err)?;
        tx.execute(
            "INSERT INTO credentials (name, secret, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET secret = $2, updated_at = $3",
            &[&name, &secret.expose_secret(), &now.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// As [`StateDb::credential`](crate::StateDb::credential).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn credential(&mut self, name: &str) -> Result<Option<SecretString>, StoreError> {
        let row = self.opt("SELECT secret FROM credentials WHERE name = $1", &[&name])?;
        Ok(row.map(|r| SecretString::from(r.get::<_, String>(0))))
    }

    /// As [`StateDb::claim`](crate::StateDb::claim): the lease row is locked with `FOR UPDATE
    /// SKIP LOCKED`, so a claim another runner is making answers [`Claim::Busy`] at once.
    ///
    /// # Errors
    ///
    /// A server failure; nothing changed.
    pub fn claim(
        &mut self,
        task: &str,
        me: &Holder,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let mut tx = self.tx()?;
        let row = tx
            .query_opt(&format!("{LEASE_COLUMNS} WHERE task = $1 FOR UPDATE SKIP LOCKED"), &[&task])
            .map_err(err)?;
        let found = match row {
            Some(r) => Some(lease(&r).ok_or_else(|| StoreError::Corrupt {
                path: target.clone(),
                detail: LEASE_RANGE.to_owned(),
            })?),
            None => {
                // No row, or one another runner has locked: only an insert tells them apart.
                let inserted = tx
                    .execute(
                        "INSERT INTO leases (task, holder, host, pid, instance, expires_us)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task) DO NOTHING",
                        &[
                            &task,
                            &me.name,
                            &me.host,
                            &i64::from(me.pid),
                            &me.instance.cast_signed(),
                            &micros(until),
                        ],
                    )
                    .map_err(err)?;
                if inserted == 0 {
                    return Ok(Claim::Busy);
                }
                tx.commit().map_err(err)?;
                return Ok(Claim::Granted { took_over: None });
            }
        };
        let decision = lease_decision(found, me, now);
        if let Claim::Granted { took_over } = &decision {
            if let Some(earlier) = took_over {
                tx.execute(
                    "UPDATE runs SET finished_at = $2, outcome = 'abandoned', error = $3
                     WHERE task = $1 AND finished_at IS NULL",
                    &[&task, &now.to_string(), &abandoned_by(earlier)],
                )
                .map_err(err)?;
            }
            tx.execute(
                "UPDATE leases SET holder = $2, host = $3, pid = $4, instance = $5,
                 expires_us = $6, released = FALSE WHERE task = $1",
                &[
                    &task,
                    &me.name,
                    &me.host,
                    &i64::from(me.pid),
                    &me.instance.cast_signed(),
                    &micros(until),
                ],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(decision)
    }

    /// As [`StateDb::renew`](crate::StateDb::renew).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn renew(&mut self, task: &str, me: &Holder, until: Timestamp) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE leases SET expires_us = $3 WHERE task = $1 AND instance = $2 AND NOT released",
            &[&task, &me.instance.cast_signed(), &micros(until)],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::release`](crate::StateDb::release).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn release(&mut self, task: &str, me: &Holder, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE leases SET released = TRUE, expires_us = $3
             WHERE task = $1 AND instance = $2 AND NOT released",
            &[&task, &me.instance.cast_signed(), &micros(now)],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::leases`](crate::StateDb::leases).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        let rows = self.query(&format!("{LEASE_COLUMNS} ORDER BY task"), &[])?;
        rows.iter().map(|r| lease(r).ok_or_else(|| self.corrupt(LEASE_RANGE))).collect()
    }

    /// As [`StateDb::record_alert`](crate::StateDb::record_alert).
    ///
    /// # Errors
    ///
    /// A server failure; nothing is written.
    pub fn record_alert(
        &mut self,
        alert: &NewAlert,
        sinks: &[String],
    ) -> Result<Option<AlertRecord>, StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let at = alert.created_at.to_string();
        let mut tx = self.tx()?;
        // One incident opens once even when two runners raise it together.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&alert.incident])
            .map_err(err)?;
        let changed = match alert.kind {
            AlertKind::Raised => tx
                .query_opt("SELECT 1 FROM incidents WHERE key = $1", &[&alert.incident])
                .map_err(err)?
                .is_none(),
            AlertKind::Recovered => {
                tx.execute("DELETE FROM incidents WHERE key = $1", &[&alert.incident])
                    .map_err(err)?
                    > 0
            }
        };
        if !changed {
            return Ok(None);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO alerts (incident, kind, task, title, detail, help, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &alert.incident,
                    &alert.kind.as_str(),
                    &alert.task,
                    &alert.title,
                    &alert.detail,
                    &alert.help,
                    &at,
                ],
            )
            .map_err(err)?
            .get(0);
        for sink in sinks {
            tx.execute(
                "INSERT INTO alert_deliveries (alert, sink, next_attempt_at) VALUES ($1, $2, $3)",
                &[&id, sink, &at],
            )
            .map_err(err)?;
        }
        if alert.kind == AlertKind::Raised {
            tx.execute(
                "INSERT INTO incidents (key, opened_at, alert) VALUES ($1, $2, $3)",
                &[&alert.incident, &at, &id],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Some(AlertRecord {
            id: AlertId(id),
            incident: alert.incident.clone(),
            kind: alert.kind,
            task: alert.task.clone(),
            title: alert.title.clone(),
            detail: alert.detail.clone(),
            help: alert.help.clone(),
            created_at: alert.created_at,
        }))
    }

    /// As [`StateDb::pending_deliveries`](crate::StateDb::pending_deliveries).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn pending_deliveries(&mut self) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT {ALERT_COLUMNS}, d.sink, d.attempts, d.next_attempt_at, d.last_error
                 FROM alert_deliveries d JOIN alerts a ON a.id = d.alert
                 WHERE d.delivered_at IS NULL ORDER BY d.alert, d.sink"
            ),
            &[],
        )?;
        let mut pending = Vec::with_capacity(rows.len());
        for r in &rows {
            let alert = self.alert(r)?;
            let delivery = Delivery {
                alert: alert.id,
                sink: r.get(8),
                delivered_at: None,
                attempts: u32::try_from(r.get::<_, i64>(9)).unwrap_or(u32::MAX),
                next_attempt_at: self.time(r.get(10))?,
                last_error: r.get(11),
            };
            pending.push(PendingDelivery { alert, delivery });
        }
        pending.sort_by_key(|p| (p.delivery.next_attempt_at, p.alert.id));
        Ok(pending)
    }

    /// As [`StateDb::mark_delivered`](crate::StateDb::mark_delivered).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn mark_delivered(
        &mut self,
        alert: AlertId,
        sink: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE alert_deliveries SET delivered_at = $3, attempts = attempts + 1,
             last_error = NULL WHERE alert = $1 AND sink = $2 AND delivered_at IS NULL",
            &[&alert.0, &sink, &at.to_string()],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::mark_failed`](crate::StateDb::mark_failed).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn mark_failed(
        &mut self,
        alert: AlertId,
        sink: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $3,
             next_attempt_at = $4 WHERE alert = $1 AND sink = $2 AND delivered_at IS NULL",
            &[&alert.0, &sink, &error, &retry_at.to_string()],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::open_incidents`](crate::StateDb::open_incidents).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn open_incidents(&mut self) -> Result<Vec<Incident>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT {ALERT_COLUMNS}, i.key, i.opened_at
                 FROM incidents i JOIN alerts a ON a.id = i.alert ORDER BY i.alert"
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Incident {
                    key: r.get(8),
                    opened_at: self.time(r.get(9))?,
                    alert: self.alert(r)?,
                })
            })
            .collect()
    }

    /// As [`StateDb::alerts`](crate::StateDb::alerts).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn alerts(&mut self, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts a ORDER BY a.id DESC LIMIT $1"),
            &[&limit],
        )?;
        rows.iter().map(|r| self.alert(r)).collect()
    }

    /// As [`StateDb::deliveries`](crate::StateDb::deliveries).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn deliveries(&mut self, alert: AlertId) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.query(
            "SELECT sink, delivered_at, attempts, next_attempt_at, last_error
             FROM alert_deliveries WHERE alert = $1 ORDER BY sink",
            &[&alert.0],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    alert,
                    sink: r.get(0),
                    delivered_at: self.times(r.get(1))?,
                    attempts: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                    next_attempt_at: self.time(r.get(3))?,
                    last_error: r.get(4),
                })
            })
            .collect()
    }

    /// As [`StateDb::prune_alerts`](crate::StateDb::prune_alerts).
    ///
    /// # Errors
    ///
    /// A server failure; nothing is deleted.
    pub fn prune_alerts(&mut self, keep: usize) -> Result<usize, StoreError> {
        let target = self.target.clone();
        let err = |e| pg_error(&target, e);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut tx = self.tx()?;
        let ids: Vec<i64> = tx
            .query(
                "SELECT a.id FROM alerts a
                 WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries d
                                   WHERE d.alert = a.id AND d.delivered_at IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.alert = a.id)
                 ORDER BY a.id DESC OFFSET $1",
                &[&keep],
            )
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute("DELETE FROM alert_deliveries WHERE alert = ANY($1)", &[&ids]).map_err(err)?;
        tx.execute("DELETE FROM alerts WHERE id = ANY($1)", &[&ids]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(ids.len())
    }

    fn alert(&self, r: &Row) -> Result<AlertRecord, StoreError> {
        let kind: String = r.get(2);
        Ok(AlertRecord {
            id: AlertId(r.get(0)),
            incident: r.get(1),
            kind: kind.parse().map_err(|e| self.corrupt(e))?,
            task: r.get(3),
            title: r.get(4),
            detail: r.get(5),
            help: r.get(6),
            created_at: self.time(r.get(7))?,
        })
    }

    /// As [`StateDb::put_entry`](crate::StateDb::put_entry).
    ///
    /// # Errors
    ///
    /// A server failure; the old value stays.
    pub fn put_entry(
        &mut self,
        task: &str,
        kind: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO entries (task, kind, key, value, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (task, kind, key) DO UPDATE SET value = $4, updated_at = $5",
            &[&task, &kind, &key, &json, &now.to_string()],
        )
        .map(drop)
    }

    /// As [`StateDb::insert_entry`](crate::StateDb::insert_entry).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn insert_entry(
        &mut self,
        task: &str,
        kind: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            "INSERT INTO entries (task, kind, key, value, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (task, kind, key) DO NOTHING",
            &[&task, &kind, &key, &json, &now.to_string()],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::entry`](crate::StateDb::entry).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn entry(
        &mut self,
        task: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<Entry<String>>, StoreError> {
        let row = self.opt(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE task = $1 AND kind = $2 AND key = $3"
            ),
            &[&task, &kind, &key],
        )?;
        row.map(|r| self.entry_of(&r)).transpose()
    }

    /// As [`StateDb::entries`](crate::StateDb::entries).
    ///
    /// # Errors
    ///
    /// A server failure, or a damaged row.
    pub fn entries(
        &mut self,
        task: &str,
        kind: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry<String>>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE task = $1 AND kind = $2 AND seq > $3
                 ORDER BY seq LIMIT $4"
            ),
            &[&task, &kind, &after.unwrap_or(0), &limit],
        )?;
        rows.iter().map(|r| self.entry_of(r)).collect()
    }

    /// As [`StateDb::delete_entry`](crate::StateDb::delete_entry).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn delete_entry(&mut self, task: &str, kind: &str, key: &str) -> Result<bool, StoreError> {
        let n = self.execute(
            "DELETE FROM entries WHERE task = $1 AND kind = $2 AND key = $3",
            &[&task, &kind, &key],
        )?;
        Ok(n > 0)
    }

    /// As [`StateDb::delete_entries`](crate::StateDb::delete_entries).
    ///
    /// # Errors
    ///
    /// A server failure.
    pub fn delete_entries(&mut self, task: &str) -> Result<usize, StoreError> {
        let n = self.execute("DELETE FROM entries WHERE task = $1", &[&task])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn entry_of(&self, r: &Row) -> Result<Entry<String>, StoreError> {
        Ok(Entry {
            seq: r.get(0),
            key: r.get(1),
            value: r.get(2),
            created_at: self.time(r.get(3))?,
            updated_at: self.time(r.get(4))?,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop_off_thread(client);
        }
    }
}

/// Drops the client (which says goodbye to the server, blocking) on a thread of its own, and
/// waits: an async worker cannot block on the driver's runtime.
fn drop_off_thread(client: Client) {
    std::thread::scope(|scope| {
        let _ = scope.spawn(move || drop(client)).join();
    });
}

const STATE_COLUMNS: &str = "SELECT task, state, since, next_run, reason, last_slot, last_success,
    last_error, last_disposition, failures, run_id FROM task_states";

const ALERT_COLUMNS: &str =
    "a.id, a.incident, a.kind, a.task, a.title, a.detail, a.help, a.created_at";

const ENTRY_COLUMNS: &str = "seq, key, value, created_at, updated_at";

fn lease(r: &Row) -> Option<Lease> {
    db::lease((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
}

/// `postgres://user@host:port/dbname`, never the password.
fn display(config: &Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{db}")
}

/// Classifies a server failure.
fn pg_error(target: &Path, source: postgres::Error) -> StoreError {
    let path = target.to_path_buf();
    match source.code() {
        Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            StoreError::Full { path }
        }
        Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly { path },
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { path, detail: source.to_string() }
        }
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreError::Busy { path }
        }
        _ => StoreError::Postgres { target: path, source },
    }
}
