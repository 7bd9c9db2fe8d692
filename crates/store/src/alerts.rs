//! The alert outbox: alerts, their deliveries to each sink, and the incidents open now.
//!
//! An alert is written, with one pending delivery per sink, in the same transaction that opens
//! (or closes) its incident, before any sink is tried: a crash or a sink that is down loses
//! nothing, and an incident already open raises nothing more.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::db::StateDb;
use crate::error::StoreError;
use crate::records::UnknownName;
use crate::store::Store;

/// Identifies an alert in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertId(pub i64);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether an alert opens an incident or closes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Something needs a human; the incident is open until it recovers.
    Raised,
    /// The incident is over.
    Recovered,
}

impl AlertKind {
    /// The name stored in the database (and used in the alert's JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Recovered => "recovered",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "raised" => Ok(Self::Raised),
            "recovered" => Ok(Self::Recovered),
            other => Err(UnknownName(other.to_owned())),
        }
    }
}

/// An alert to write: what [`StateDb::record_alert`] is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    /// The incident it opens or closes (such as `task:upload:late`).
    pub incident: String,
    /// Opens or closes the incident.
    pub kind: AlertKind,
    /// The task it is about, if any.
    pub task: Option<String>,
    /// One line.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// What the human should do, if anything.
    pub help: Option<String>,
    /// When it was raised; also when its deliveries are first due.
    pub created_at: Timestamp,
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    /// Its id, increasing with time.
    pub id: AlertId,
    /// The incident it opened or closed.
    pub incident: String,
    /// Opened or closed.
    pub kind: AlertKind,
    /// The task it is about, if any.
    pub task: Option<String>,
    /// One line.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// What the human should do, if anything.
    pub help: Option<String>,
    /// When it was raised.
    pub created_at: Timestamp,
}

/// One alert's delivery to one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The alert.
    pub alert: AlertId,
    /// The sink's name (such as `webhook:0`).
    pub sink: String,
    /// When the sink took it; `None` while pending.
    pub delivered_at: Option<Timestamp>,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed. Never a secret: sinks report errors without them.
    pub last_error: Option<String>,
}

/// A delivery not made yet, with its alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDelivery {
    /// The alert.
    pub alert: AlertRecord,
    /// Its delivery to one sink.
    pub delivery: Delivery,
}

/// An incident open now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// Its key.
    pub key: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// The alert that opened it.
    pub alert: AlertRecord,
}

const ALERT_COLUMNS: &str =
    "a.id, a.incident, a.kind, a.task, a.title, a.detail, a.help, a.created_at";

/// An alert's columns as read, before their text is checked.
type AlertRow = (i64, String, String, Option<String>, String, String, Option<String>, String);

fn alert_row(r: &Row<'_>, at: usize) -> rusqlite::Result<AlertRow> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
    ))
}

impl StateDb {
    /// Records an alert with one pending delivery per sink in `sinks`, due at once, in one
    /// transaction, if it changes its incident:
    ///
    /// - [`AlertKind::Raised`] opens `alert.incident`; if that incident is already open,
    ///   nothing is written and the answer is `None` (one alert per incident);
    /// - [`AlertKind::Recovered`] closes it; if it is not open, nothing is written and the
    ///   answer is `None`.
    ///
    /// # Errors
    ///
    /// A full disk or another SQLite failure; nothing is written.
    pub fn record_alert(
        &mut self,
        alert: &NewAlert,
        sinks: &[String],
    ) -> Result<Option<AlertRecord>, StoreError> {
        let path = self.path().to_path_buf();
        let err = |e| StoreError::sqlite(&path, e);
        let at = alert.created_at.to_string();
        let tx = self.write()?;
        let changed = match alert.kind {
            AlertKind::Raised => tx
                .query_row("SELECT 1 FROM incidents WHERE key = ?1", [&alert.incident], |_| Ok(()))
                .optional()
                .map_err(err)?
                .is_none(),
            AlertKind::Recovered => {
                tx.execute("DELETE FROM incidents WHERE key = ?1", [&alert.incident])
                    .map_err(err)?
                    > 0
            }
        };
        if !changed {
            // Dropping the transaction rolls it back; it wrote nothing anyway.
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO alerts (incident, kind, task, title, detail, help, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                alert.incident,
                alert.kind.as_str(),
                alert.task,
                alert.title,
                alert.detail,
                alert.help,
                at
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO alert_deliveries (alert, sink, next_attempt_at)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for sink in sinks {
                insert.execute(params![id, sink, at]).map_err(err)?;
            }
        }
        if alert.kind == AlertKind::Raised {
            tx.execute(
                "INSERT INTO incidents (key, opened_at, alert) VALUES (?1, ?2, ?3)",
                params![alert.incident, at, id],
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

    /// Every delivery not made yet, with its alert, the earliest due first.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS}, d.sink, d.attempts, d.next_attempt_at, d.last_error
             FROM alert_deliveries d JOIN alerts a ON a.id = d.alert
             WHERE d.delivered_at IS NULL ORDER BY d.alert, d.sink"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    alert_row(r, 0)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(self.err())?;
        let mut pending = Vec::new();
        for row in rows {
            let (alert, sink, attempts, next, last_error) = row.map_err(self.err())?;
            let alert = self.alert(alert)?;
            let delivery = Delivery {
                alert: alert.id,
                sink,
                delivered_at: None,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                next_attempt_at: self.time(&next)?,
                last_error,
            };
            pending.push(PendingDelivery { alert, delivery });
        }
        // Timestamps are compared as times, not as text (their fractions vary in length).
        pending.sort_by_key(|p| (p.delivery.next_attempt_at, p.alert.id));
        Ok(pending)
    }

    /// Records that `sink` took alert `alert` at `at`; returns whether that delivery was
    /// pending.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn mark_delivered(
        &mut self,
        alert: AlertId,
        sink: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE alert_deliveries SET delivered_at = ?3, attempts = attempts + 1,
                 last_error = NULL WHERE alert = ?1 AND sink = ?2 AND delivered_at IS NULL",
                params![alert.0, sink, at.to_string()],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Records a failed attempt to deliver alert `alert` to `sink`, and when to try again;
    /// returns whether that delivery was pending.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn mark_failed(
        &mut self,
        alert: AlertId,
        sink: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?3,
                 next_attempt_at = ?4 WHERE alert = ?1 AND sink = ?2 AND delivered_at IS NULL",
                params![alert.0, sink, error, retry_at.to_string()],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// The incidents open now, the oldest first.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS}, i.key, i.opened_at
             FROM incidents i JOIN alerts a ON a.id = i.alert ORDER BY i.alert"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((alert_row(r, 0)?, r.get::<_, String>(8)?, r.get::<_, String>(9)?))
            })
            .map_err(self.err())?;
        let mut open = Vec::new();
        for row in rows {
            let (alert, key, opened) = row.map_err(self.err())?;
            open.push(Incident { key, opened_at: self.time(&opened)?, alert: self.alert(alert)? });
        }
        Ok(open)
    }

    /// The last `limit` alerts, the newest first.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn alerts(&self, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts a ORDER BY a.id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], |r| alert_row(r, 0)).map_err(self.err())?;
        let mut alerts = Vec::new();
        for row in rows {
            alerts.push(self.alert(row.map_err(self.err())?)?);
        }
        Ok(alerts)
    }

    /// The deliveries of alert `alert`, by sink name.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn deliveries(&self, alert: AlertId) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sink, delivered_at, attempts, next_attempt_at, last_error
                 FROM alert_deliveries WHERE alert = ?1 ORDER BY sink",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([alert.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (sink, delivered, attempts, next, last_error) = row.map_err(self.err())?;
            out.push(Delivery {
                alert,
                sink,
                delivered_at: delivered.map(|d| self.time(&d)).transpose()?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                next_attempt_at: self.time(&next)?,
                last_error,
            });
        }
        Ok(out)
    }

    /// Deletes, with their deliveries, the alerts that every sink has taken, except the newest
    /// `keep` of them and those that opened an incident still open; returns how many went. One
    /// transaction.
    ///
    /// # Errors
    ///
    /// A SQLite failure; nothing is deleted.
    pub fn prune_alerts(&mut self, keep: usize) -> Result<usize, StoreError> {
        let path = self.path().to_path_buf();
        let err = |e| StoreError::sqlite(&path, e);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let tx = self.write()?;
        let ids: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT a.id FROM alerts a
                     WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries d
                                       WHERE d.alert = a.id AND d.delivered_at IS NULL)
                       AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.alert = a.id)
                     ORDER BY a.id DESC LIMIT -1 OFFSET ?1",
                )
                .map_err(err)?;
            let rows = stmt.query_map([keep], |r| r.get(0)).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        {
            let mut deliveries =
                tx.prepare("DELETE FROM alert_deliveries WHERE alert = ?1").map_err(err)?;
            let mut alerts = tx.prepare("DELETE FROM alerts WHERE id = ?1").map_err(err)?;
            for id in &ids {
                deliveries.execute([id]).map_err(err)?;
                alerts.execute([id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(ids.len())
    }

    fn alert(&self, row: AlertRow) -> Result<AlertRecord, StoreError> {
        let (id, incident, kind, task, title, detail, help, created) = row;
        Ok(AlertRecord {
            id: AlertId(id),
            incident,
            kind: kind.parse().map_err(|e| self.corrupt(e))?,
            task,
            title,
            detail,
            help,
            created_at: self.time(&created)?,
        })
    }
}

impl Store {
    /// As [`StateDb::record_alert`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::record_alert`].
    pub async fn record_alert(
        &self,
        alert: NewAlert,
        sinks: Vec<String>,
    ) -> Result<Option<AlertRecord>, StoreError> {
        self.run(move |db| db.record_alert(&alert, &sinks)).await
    }

    /// As [`StateDb::pending_deliveries`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::pending_deliveries`].
    pub async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        self.run(|db| db.pending_deliveries()).await
    }

    /// As [`StateDb::mark_delivered`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::mark_delivered`].
    pub async fn mark_delivered(
        &self,
        alert: AlertId,
        sink: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let sink = sink.to_owned();
        self.run(move |db| db.mark_delivered(alert, &sink, at)).await
    }

    /// As [`StateDb::mark_failed`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::mark_failed`].
    pub async fn mark_failed(
        &self,
        alert: AlertId,
        sink: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (sink, error) = (sink.to_owned(), error.to_owned());
        self.run(move |db| db.mark_failed(alert, &sink, &error, retry_at)).await
    }

    /// As [`StateDb::open_incidents`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::open_incidents`].
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.run(|db| db.open_incidents()).await
    }

    /// As [`StateDb::alerts`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::alerts`].
    pub async fn alerts(&self, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        self.run(move |db| db.alerts(limit)).await
    }

    /// As [`StateDb::deliveries`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::deliveries`].
    pub async fn deliveries(&self, alert: AlertId) -> Result<Vec<Delivery>, StoreError> {
        self.run(move |db| db.deliveries(alert)).await
    }

    /// As [`StateDb::prune_alerts`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::prune_alerts`].
    pub async fn prune_alerts(&self, keep: usize) -> Result<usize, StoreError> {
        self.run(move |db| db.prune_alerts(keep)).await
    }
}
