//! Embedded state for unattended jobs, in one SQLite file.
//!
//! Automation restarts: a deploy, a crash, a reboot, a process per run. What only memory held is
//! then lost, and a restarted job hammers an API that is still down, re-uploads from byte 0 or
//! forgets what it already published. This crate keeps, in one file (WAL mode, `0600`):
//!
//! - **checkpoints**: each task's last good state as JSON, saved atomically with a version that
//!   catches a second writer ([`Expect`]);
//! - **runs**: when each run started and ended, how, with what error and disposition;
//! - **task states**: idle, running, succeeded, degraded, failed, cooldown, deferred, disabled,
//!   with their times, the last slot served, the last success and the last error;
//! - **open breakers and rate-limit pauses**, restored at start and saved after each change
//!   ([`StateSaver`]), so a job started during an outage still knows the host is down;
//! - **the alert outbox**: alerts written with a pending delivery per sink, and the incidents
//!   open now, in one transaction ([`StateDb::record_alert`]), so an alert survives a crash and
//!   a sink that is down, and an incident raises one alert;
//! - **entries**: what an engine keeps beyond its checkpoint, one JSON value per task, kind
//!   and key ([`Store::put_entry`], [`Store::insert_entry`] only if the key is new, so a step
//!   replayed after a crash records nothing twice);
//! - **refresh tokens** ([`Store::credential`], a token
//!   [`CredentialStore`](unattended_token::CredentialStore)), written with `synchronous=FULL`.
//!
//! Failure is loud: a full disk, a read-only or damaged file gives a [`StoreError`] whose
//! disposition is `Stop`, never a silent loss and never a half-written checkpoint. The schema is
//! versioned and migrated on open.
//!
//! [`Store`] is the async face (blocking work on tokio's blocking pool); [`StateDb`] is the same
//! database with blocking calls; [`StateStore`] is the trait another backend would implement.

mod alerts;
mod db;
mod entries;
mod error;
mod persist;
#[cfg(feature = "postgres")]
mod pg;
mod records;
mod schema;
mod store;

pub use self::alerts::{
    AlertId, AlertKind, AlertRecord, Delivery, Incident, NewAlert, PendingDelivery,
};
pub use self::db::{Durability, StateDb, StoreConfig};
pub use self::entries::Entry;
pub use self::error::StoreError;
pub use self::persist::{Restored, StateSaver, StateSaverBuilder, StoredCredential};
#[cfg(feature = "postgres")]
pub use self::pg::PgDb;
pub use self::records::{
    Checkpoint, Claim, Expect, HeldService, Holder, LearnedPace, Lease, RunEnd, RunId, RunOutcome,
    RunRecord, TaskState, TaskStatus, UnknownName,
};
pub use self::store::{Database, StateStore, Store};
