//! What a run saves after each step, and what the store keeps of each page.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::Validators;
use crate::extract::Fields;
use crate::report::{Change, Sink};

/// The checkpoint: the round in progress (its frontier), and what was recorded but may not
/// have reached the store or the sinks yet. Every such effect is replayed at the next start
/// and is idempotent, so a run cut short anywhere repeats nothing and loses nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The round in progress, if one is.
    #[serde(default)]
    pub round: Option<Round>,
    /// Page states recorded here, to be written to the store (by URL).
    #[serde(default)]
    pub unsaved: BTreeMap<String, PageState>,
    /// Changes found and not yet delivered to every sink.
    #[serde(default)]
    pub outbox: Vec<Outgoing>,
    /// The JSON Lines file's length after the last append this checkpoint knows of: lines past
    /// it were appended by a run cut short, and are read back before appending again.
    #[serde(default)]
    pub jsonl_len: Option<u64>,
}

/// One pass over every watched page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// When it started.
    pub started: Timestamp,
    /// Its pages, in order (the settings' pages, then those the sitemaps listed).
    pub urls: Vec<String>,
    /// The indexes in `urls` of the pages done (fetched, unchanged, disallowed or failed for
    /// good), ascending.
    pub done: Vec<u32>,
}

impl Round {
    /// Whether page `i` is done.
    pub fn is_done(&self, i: usize) -> bool {
        u32::try_from(i).is_ok_and(|i| self.done.binary_search(&i).is_ok())
    }

    /// Marks page `i` done.
    pub fn mark_done(&mut self, i: usize) {
        let Ok(i) = u32::try_from(i) else { return };
        if let Err(at) = self.done.binary_search(&i) {
            self.done.insert(at, i);
        }
    }

    /// The pages not done yet, by index.
    pub fn pending(&self) -> impl Iterator<Item = (usize, &str)> {
        self.urls
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.is_done(*i))
            .map(|(i, u)| (i, u.as_str()))
    }
}

/// What the store keeps of one page between runs (an entry of kind `page`, keyed by URL).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    /// Its validators, for the next conditional fetch.
    #[serde(default)]
    pub validators: Validators,
    /// The hash of its fields when last fetched, if it was.
    #[serde(default)]
    pub hash: Option<String>,
    /// Its fields when last fetched.
    #[serde(default)]
    pub fields: Option<Fields>,
    /// When it was last looked at.
    pub checked_at: Option<Timestamp>,
    /// Why the last look failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Changes found on it so far (part of each change's id: a value that comes back to an
    /// earlier one is a new change, not the old one again).
    #[serde(default)]
    pub changes: u64,
}

/// A change on its way to the sinks that have not had it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The change.
    pub change: Change,
    /// The sinks still to deliver it to.
    pub sinks: Vec<Sink>,
}
