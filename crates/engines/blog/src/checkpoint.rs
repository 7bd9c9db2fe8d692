//! What the task keeps in the store: for every post, where each copy stands (one store entry per
//! post, written alone when it changes), and as its checkpoint the create last sent.
//!
//! A post's entry is written before every create (the intent: [`CopyState::Sending`]) and after
//! every answer, so a run cut short anywhere is resumed without a second copy. The checkpoint is
//! saved just before each create too: its version check stops a second process running the same
//! task before it can send the same create.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use unattended_store::Store;

use crate::settings::Target;

/// The kind of the store entries that hold the posts' records.
pub const POST_ENTRY: &str = "post";

/// The records of every post the task has touched, by the post's key, as read at the start of
/// a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Posts by key.
    pub posts: BTreeMap<String, PostRecord>,
}

impl Ledger {
    /// Reads `task`'s post records from `store`.
    ///
    /// # Errors
    ///
    /// The store's, or a record that is not a [`PostRecord`].
    pub async fn load(store: &Store, task: &str) -> Result<Self, unattended_store::StoreError> {
        let mut posts = BTreeMap::new();
        let mut after = None;
        loop {
            let page = store.entries::<PostRecord>(task, POST_ENTRY, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            posts.extend(page.into_iter().map(|e| (e.key, e.value)));
        }
        Ok(Self { posts })
    }

    /// The record of `post`, made if it has none yet.
    pub fn record(&mut self, post: &crate::post::Post) -> &mut PostRecord {
        self.posts.entry(post.key.clone()).or_insert_with(|| PostRecord::new(&post.marker))
    }
}

/// Where one post's copies stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PostRecord {
    /// The mark in the body of every copy.
    pub marker: String,
    /// The target whose copy is the original, the one the others name as `canonical_url` (the
    /// first that was published), unless the post names an original of its own.
    #[serde(default)]
    pub original: Option<Target>,
    /// Each target's copy.
    #[serde(default)]
    pub targets: BTreeMap<Target, CopyState>,
}

impl PostRecord {
    /// A post with no copy yet.
    pub fn new(marker: impl Into<String>) -> Self {
        Self { marker: marker.into(), original: None, targets: BTreeMap::new() }
    }

    /// The URL of the original's copy, if it is published.
    pub fn original_url(&self) -> Option<&str> {
        match self.targets.get(&self.original?) {
            Some(CopyState::Published { url, .. }) => Some(url),
            _ => None,
        }
    }
}

/// One target's copy of a post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CopyState {
    /// A create was (or is about to be) sent and its answer was not seen: the target must be
    /// searched for the post's marker before anything is created there again.
    Sending {
        /// The version sent.
        version: String,
        /// When the intent was recorded.
        since: Timestamp,
    },
    /// Published.
    Published {
        /// The target's id of the copy.
        id: String,
        /// Its URL.
        url: String,
        /// The version it holds.
        version: String,
    },
    /// The target refused this version (its message); it is tried again when the file changes.
    Refused {
        /// The version refused.
        version: String,
        /// What the target said.
        message: String,
    },
}

/// The task's checkpoint: the create last sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastCreate {
    /// The post's key.
    pub post: String,
    /// Where.
    pub target: Target,
    /// When.
    pub at: Timestamp,
}
