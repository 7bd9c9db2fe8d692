//! What an engine keeps beyond its checkpoint: small JSON entries by task, kind and key.
//!
//! A checkpoint is one value rewritten at every step, right for "where a run stands". Facts
//! about many things that outlive a run (a scraped page's validators and last hash, a change
//! found, an action done for a message) are entries instead: one row each, written alone.
//! [`StateDb::insert_entry`] writes only if the key is new, so a step replayed after a crash
//! records nothing twice.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::db::StateDb;
use crate::error::StoreError;
use crate::store::Store;

/// One entry, as read back.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Entry<T> {
    /// Its place in the order entries were first written (per database, increasing).
    pub seq: i64,
    /// Its key within its task and kind.
    pub key: String,
    /// Its value.
    pub value: T,
    /// When it was first written.
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "seq, key, value, created_at, updated_at";

impl StateDb {
    /// Writes the entry (`task`, `kind`, `key`) with `json`, replacing its value if it exists
    /// (it keeps its place in the order).
    ///
    /// # Errors
    ///
    /// A full disk or another SQLite failure; the old value stays.
    pub fn put_entry(
        &mut self,
        task: &str,
        kind: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let at = now.to_string();
        self.conn
            .execute(
                "INSERT INTO entries (task, kind, key, value, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (task, kind, key) DO UPDATE SET value = ?4, updated_at = ?5",
                params![task, kind, key, json, at],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Writes the entry only if no entry has its key; returns whether it was written.
    ///
    /// # Errors
    ///
    /// A full disk or another SQLite failure.
    pub fn insert_entry(
        &mut self,
        task: &str,
        kind: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let at = now.to_string();
        let n = self
            .conn
            .execute(
                "INSERT INTO entries (task, kind, key, value, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (task, kind, key) DO NOTHING",
                params![task, kind, key, json, at],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// The entry (`task`, `kind`, `key`), its value as JSON text.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn entry(
        &self,
        task: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<Entry<String>>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM entries WHERE task = ?1 AND kind = ?2 AND key = ?3");
        let row = self
            .conn
            .query_row(&sql, params![task, kind, key], raw)
            .optional()
            .map_err(self.err())?;
        row.map(|r| self.typed(r)).transpose()
    }

    /// Up to `limit` entries of `task` and `kind` written after `after` (a [`seq`](Entry::seq);
    /// `None`: from the first), in the order they were first written.
    ///
    /// # Errors
    ///
    /// A SQLite failure, or a damaged row.
    pub fn entries(
        &self,
        task: &str,
        kind: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry<String>>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM entries WHERE task = ?1 AND kind = ?2 AND seq > ?3
             ORDER BY seq LIMIT ?4"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![task, kind, after.unwrap_or(0), limit], raw)
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.typed(row.map_err(self.err())?)?);
        }
        Ok(out)
    }

    /// Removes the entry (`task`, `kind`, `key`); returns whether there was one.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn delete_entry(&mut self, task: &str, kind: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM entries WHERE task = ?1 AND kind = ?2 AND key = ?3",
                params![task, kind, key],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Removes every entry of `task` (a task reset afresh); returns how many went.
    ///
    /// # Errors
    ///
    /// A SQLite failure.
    pub fn delete_entries(&mut self, task: &str) -> Result<usize, StoreError> {
        self.conn.execute("DELETE FROM entries WHERE task = ?1", [task]).map_err(self.err())
    }

    fn typed(
        &self,
        (seq, key, value, created, updated): RawEntry,
    ) -> Result<Entry<String>, StoreError> {
        Ok(Entry {
            seq,
            key,
            value,
            created_at: self.time(&created)?,
            updated_at: self.time(&updated)?,
        })
    }
}

type RawEntry = (i64, String, String, String, String);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl Store {
    /// As [`StateDb::put_entry`], for a value written as JSON.
    ///
    /// # Errors
    ///
    /// As [`StateDb::put_entry`]; [`StoreError::Json`] if `value` cannot be written as JSON.
    pub async fn put_entry<T: serde::Serialize + ?Sized>(
        &self,
        task: &str,
        kind: &str,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(value)?;
        let (task, kind, key, now) =
            (task.to_owned(), kind.to_owned(), key.to_owned(), self.clock().wall());
        self.run(move |db| db.put_entry(&task, &kind, &key, &json, now)).await
    }

    /// As [`StateDb::insert_entry`], for a value written as JSON.
    ///
    /// # Errors
    ///
    /// As [`StateDb::insert_entry`]; [`StoreError::Json`] if `value` cannot be written as JSON.
    pub async fn insert_entry<T: serde::Serialize + ?Sized>(
        &self,
        task: &str,
        kind: &str,
        key: &str,
        value: &T,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(value)?;
        let (task, kind, key, now) =
            (task.to_owned(), kind.to_owned(), key.to_owned(), self.clock().wall());
        self.run(move |db| db.insert_entry(&task, &kind, &key, &json, now)).await
    }

    /// As [`StateDb::entry`], the value read as a `T`.
    ///
    /// # Errors
    ///
    /// As [`StateDb::entry`]; [`StoreError::Json`] if the value is not a `T`.
    pub async fn entry<T: serde::de::DeserializeOwned>(
        &self,
        task: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<Entry<T>>, StoreError> {
        let (task, kind, key) = (task.to_owned(), kind.to_owned(), key.to_owned());
        let found = self.run(move |db| db.entry(&task, &kind, &key)).await?;
        found.map(parse).transpose()
    }

    /// As [`StateDb::entries`], the values read as `T`s.
    ///
    /// # Errors
    ///
    /// As [`StateDb::entries`]; [`StoreError::Json`] if a value is not a `T`.
    pub async fn entries<T: serde::de::DeserializeOwned>(
        &self,
        task: &str,
        kind: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry<T>>, StoreError> {
        let (task, kind) = (task.to_owned(), kind.to_owned());
        let found = self.run(move |db| db.entries(&task, &kind, after, limit)).await?;
        found.into_iter().map(parse).collect()
    }

    /// As [`StateDb::delete_entry`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::delete_entry`].
    pub async fn delete_entry(
        &self,
        task: &str,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let (task, kind, key) = (task.to_owned(), kind.to_owned(), key.to_owned());
        self.run(move |db| db.delete_entry(&task, &kind, &key)).await
    }

    /// As [`StateDb::delete_entries`].
    ///
    /// # Errors
    ///
    /// As [`StateDb::delete_entries`].
    pub async fn delete_entries(&self, task: &str) -> Result<usize, StoreError> {
        let task = task.to_owned();
        self.run(move |db| db.delete_entries(&task)).await
    }
}

fn parse<T: serde::de::DeserializeOwned>(e: Entry<String>) -> Result<Entry<T>, StoreError> {
    let value = serde_json::from_str(&e.value)?;
    Ok(Entry { seq: e.seq, key: e.key, value, created_at: e.created_at, updated_at: e.updated_at })
}
