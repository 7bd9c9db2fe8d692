//! What can go wrong with the state database.

use std::path::PathBuf;

use unattended_core::{Disposition, HasDisposition};

/// The state database could not do what was asked. Nothing was half-written: every write is one
/// transaction, and a failed one leaves the earlier data as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the state database {}: {source}; check the path or address, and its permissions or login", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        #[source]
        source: unattended_core::BoxError,
    },
    /// The disk (or the configured size limit) is full; the write was not made.
    #[error("the state database {} is full (disk or size limit); free space, then run again", path.display())]
    Full {
        /// The database file.
        path: PathBuf,
    },
    /// The database file or its directory is read-only.
    #[error("the state database {} is read-only; make it and its directory writable", path.display())]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a database, or its contents are damaged.
    #[error("the state database {} is damaged ({detail}); restore it from a backup or move it away", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Another process held the database locked for longer than the busy timeout.
    #[error("the state database {} stayed locked by another process; is a second runner using it?", path.display())]
    Busy {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer version of this program.
    #[error(
        "the state database {} has schema version {found}, newer than the {supported} this program knows; upgrade the program",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this program knows.
        supported: i64,
    },
    /// A checkpoint changed since the caller read it: another writer works on the same task.
    #[error(
        "checkpoint of {task} is at version {found}, not the expected {expected}: another writer saved it"
    )]
    Conflict {
        /// The task.
        task: String,
        /// The version the caller read.
        expected: u64,
        /// The version in the database.
        found: u64,
    },
    /// A value could not be turned into JSON (or a stored one back into the caller's type).
    #[error("a value could not be stored or read as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Another SQLite failure.
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Another failure of a PostgreSQL state database.
    #[cfg(feature = "postgres")]
    #[error("state database {}: {source}", target.display())]
    Postgres {
        /// The server and database (`postgres://user@host:port/dbname`, no password).
        target: PathBuf,
        /// What the server or the driver said.
        #[source]
        source: postgres::Error,
    },
    /// The background worker stopped (it panicked); no write was made.
    #[error("the state database worker stopped unexpectedly")]
    WorkerGone,
}

impl StoreError {
    /// Classifies a SQLite failure on the database at `path`.
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(DiskFull) => Self::Full { path },
            Some(ReadOnly) => Self::ReadOnly { path },
            Some(DatabaseCorrupt | NotADatabase) => {
                Self::Corrupt { path, detail: source.to_string() }
            }
            Some(DatabaseBusy | DatabaseLocked) => Self::Busy { path },
            Some(CannotOpen | PermissionDenied) => Self::Open { path, source: source.into() },
            _ => Self::Sqlite { path, source },
        }
    }
}

impl HasDisposition for StoreError {
    /// Every store failure needs a human: a job that cannot record its progress must not go on
    /// as if it could.
    fn disposition(&self) -> Disposition {
        Disposition::Stop
    }
}
