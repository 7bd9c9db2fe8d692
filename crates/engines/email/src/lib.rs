//! An engine for the `unattended` runner that watches a Gmail mailbox and applies rules to new
//! mail: once per message, across crashes and restarts.
//!
//! Every few minutes (the task's schedule) a run reads what was added to the watched label
//! since the last run, by Gmail's history (`history.list` from the saved `historyId`, page by
//! page), fetches each new message's metadata once, and gives it to the rules in order. A rule
//! matches on the sender and subject (regular expressions), labels, an attachment and age, and
//! acts: labels added and removed (`messages.modify`), the message's summary POSTed to a webhook,
//! appended to a JSON Lines file, or given to a command.
//!
//! ```toml
//! [tasks.mail]
//! engine = "email"
//! every = "5m"
//!
//! [[tasks.mail.rules]]
//! name = "invoices"
//! from = '(?i)@billing\.example\.com>?$'
//! has_attachment = true
//! add_labels = ["Label_12"]
//! webhook = "https://hooks.example.com/invoices"
//! ```
//!
//! Services: `gmail` (defaults: `https://gmail.googleapis.com`, OAuth tokens from the refresh
//! token `unattended auth google` saved, the client from `GOOGLE_CLIENT_ID` and
//! `GOOGLE_CLIENT_SECRET`, scope `gmail.modify`) and `webhook` (short timeouts, three tries).
//!
//! # Once per message, once per action
//!
//! The checkpoint ([`Checkpoint`]) is where the next page starts; the history id moves only
//! past the last page, after that page's actions are recorded. The store keeps an action log
//! (entries by task): `seen` per message, `done` per message, rule and action, `pending` for
//! an action that failed for now. A run cut short anywhere repeats at most its page, and the
//! log skips what was done. How often an action can happen, by kind (details in [`actions`]):
//!
//! - **labels: exactly once in effect.** Setting labels twice sets them once.
//! - **webhook: at least once.** A POST whose answer was lost may have been received, so it is
//!   sent again, always with the same `Idempotency-Key` header; a receiver that keeps keys sees
//!   it once. It is never lost: until a `2xx`, it is pending and tried at each run's start.
//! - **jsonl: exactly once** when the task is the file's only writer.
//! - **command: at least once**, with the same `UNATTENDED_IDEMPOTENCY_KEY` each time.
//!
//! A message is fetched once, or twice if a run stops between fetching it and recording it.
//!
//! # Where the watch begins
//!
//! At the task's first run: mail received before it was never new to the task and is left
//! alone. The start is saved before Gmail is asked, so when Gmail cannot be reached then (down,
//! a token refused), the run that reaches it lists what arrived since, as a resync does.
//!
//! # When Gmail's history runs out
//!
//! History is kept about a week. A saved id older than that is `404`: the run takes the
//! profile's current history id, lists the newest messages with the label (at most
//! `resync_limit`, and none received before the task first ran) and handles those it has not
//! seen, then follows history from that id. Nothing in the log is done again.
//!
//! # Quota
//!
//! Calls are paced to `quota_per_minute` units (profile 1, history 2, list, get and modify 5
//! each). If Gmail still answers `userRateLimitExceeded`, the host is paused for a minute and the
//! run ends with "retry at": the next run goes on from the saved page.

pub mod actions;
mod api;
mod checkpoint;
mod engine;
mod quota;
mod settings;

pub use self::actions::Delivery;
pub use self::api::MessageSummary;
pub use self::checkpoint::{Checkpoint, Position};
pub use self::engine::{EmailEngine, GMAIL, WEBHOOK};
pub use self::settings::EmailSettings;

use unattended_runner::EngineKinds;

/// `kinds` with the `email` engine added.
pub fn register(kinds: EngineKinds) -> EngineKinds {
    kinds.with("email", |settings: EmailSettings, setup| Ok(EmailEngine::new(settings, setup)))
}

/// The engines of the `unattended-email` binary (`src/main.rs`): just `email`.
pub fn kinds() -> EngineKinds {
    register(EngineKinds::new())
}
