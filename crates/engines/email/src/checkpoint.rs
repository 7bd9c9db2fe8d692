//! Where the watcher stands in the mailbox, saved after every page.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The checkpoint of an email task.
///
/// `since` is when the task first tried to look at the mailbox: mail older than that was never
/// new to it, so a resync does not act on it. `at` is where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// When the watch began.
    pub since: Timestamp,
    /// Where the next page starts.
    pub at: Position,
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Position {
    /// The watch began at `since`, but the mailbox could not be read then (Gmail down, the
    /// token refused): the next run lists the messages received since, as a resync does,
    /// then follows history. Mail arriving while Gmail was unreachable is new all the same.
    Start,
    /// Following history after `history_id`; `page` is the next page's token while a listing
    /// is under way (the id moves only past the last page).
    History {
        /// The history id the listing started from.
        history_id: u64,
        /// The next page of that listing, if it was cut short.
        page: Option<String>,
        /// The mailbox's history id when the listing's first page was read: where the next
        /// listing starts once this one is done. Records after it may be listed again (seen
        /// messages are skipped); none before it is missed, whether Gmail pages a snapshot or
        /// the live history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<u64>,
    },
    /// History ran out: listing the newest messages, then following history after
    /// `history_id`, read from the profile before the listing began (so mail arriving during
    /// the resync is in that history).
    Resync {
        /// Where history resumes once the resync is done.
        history_id: u64,
        /// The next page of the listing.
        page: Option<String>,
        /// Messages listed so far (a resync stops at `resync_limit`).
        listed: u32,
    },
}
