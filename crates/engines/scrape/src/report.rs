//! What a change looks like, and how each sink gets it exactly once.
//!
//! A change's id is derived from the page and the hashes before and after, so finding the same
//! change again (a run cut short between recording it and marking it delivered) gives the same
//! id, and every sink drops what it already has: the JSON Lines file reads back the lines
//! appended after the last length the checkpoint knows, the store writes only new keys, and
//! the webhook gets the id as `Idempotency-Key` (at least once; once for a receiver that
//! honours the key).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::extract::{Fields, hex};

/// Where a change goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sink {
    /// A line of JSON appended to a file.
    Jsonl,
    /// An entry of kind `change` in the store.
    Store,
    /// A JSON POST to a URL.
    Webhook,
}

/// What happened to a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Seen for the first time.
    New,
    /// Its fields changed.
    Changed,
    /// It answered `404` or `410` after it had been seen.
    Gone,
}

/// One change of one page, as every sink gets it (a stable JSON shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Stable for this page, these two versions and its place among the page's changes: the
    /// same change found twice (a run cut before its record) has one id; a value that flips
    /// back has a new one.
    pub id: String,
    /// The task that watches the page.
    pub task: String,
    /// The page.
    pub url: String,
    /// What happened.
    pub kind: ChangeKind,
    /// When it was seen.
    pub at: Timestamp,
    /// The fields now (`null` for a page gone).
    pub fields: Option<Fields>,
    /// The fields before (`null` for a new page).
    pub previous: Option<Fields>,
    /// The names of the fields that differ.
    pub changed: Vec<String>,
}

impl Change {
    /// The `seq`-th change of `url` (from 1), from `previous` (with its hash) to `fields`
    /// (with its).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        task: &str,
        url: &str,
        seq: u64,
        kind: ChangeKind,
        at: Timestamp,
        previous: Option<(&str, &Fields)>,
        now: Option<(&str, &Fields)>,
    ) -> Self {
        let mut id = Sha256::new();
        let seq = seq.to_string();
        for part in [url, previous.map_or("", |p| p.0), now.map_or("", |n| n.0), &seq] {
            id.update(part.as_bytes());
            id.update([0]);
        }
        let (old, new) = (previous.map(|p| p.1), now.map(|n| n.1));
        let names: BTreeSet<&String> = old.into_iter().chain(new).flat_map(|f| f.keys()).collect();
        let changed = names
            .into_iter()
            .filter(|k| old.and_then(|f| f.get(*k)) != new.and_then(|f| f.get(*k)))
            .cloned()
            .collect();
        Self {
            id: hex(&id.finalize()[..16]),
            task: task.to_owned(),
            url: url.to_owned(),
            kind,
            at,
            fields: new.cloned(),
            previous: old.cloned(),
            changed,
        }
    }
}

/// Appends each of `changes` as a line to the file at `path` unless a line past `known_len`
/// (the length the checkpoint knows; `None`: the whole file) already has its id, then syncs
/// the file. Returns the file's new length.
///
/// # Errors
///
/// The file cannot be opened, read or written.
pub(crate) fn append_jsonl(
    path: &Path,
    changes: &[&Change],
    known_len: Option<u64>,
) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
    let len = file.metadata()?.len();
    // A file shorter than we knew was rotated or cut by someone else: nothing of ours in it.
    let from = match known_len {
        None => 0,
        Some(known) => known.min(len),
    };
    let present = ids_after(&mut file, from)?;
    let mut lines = Vec::new();
    for change in changes.iter().filter(|c| !present.contains(&c.id)) {
        serde_json::to_writer(&mut lines, change).map_err(io::Error::other)?;
        lines.push(b'\n');
    }
    if !lines.is_empty() {
        file.write_all(&lines)?;
        file.sync_data()?;
    }
    Ok(len + lines.len() as u64)
}

/// The ids of the JSON lines of `file` from byte `from` on.
fn ids_after(file: &mut File, from: u64) -> io::Result<BTreeSet<String>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(tail
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Id>(line).ok())
        .map(|l| l.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(price: &str) -> Fields {
        Fields::from([("price".to_owned(), serde_json::Value::String(price.to_owned()))])
    }

    fn change(url: &str, old: &str, new: &str) -> Change {
        let (a, b) = (fields(old), fields(new));
        let at = "2026-12-01T10:00:00Z".parse().unwrap();
        Change::new("t", url, 1, ChangeKind::Changed, at, Some((old, &a)), Some((new, &b)))
    }

    #[test]
    fn the_id_is_stable_and_names_the_change() {
        let c = change("https://a.example/1", "h1", "h2");
        assert_eq!(c.id, change("https://a.example/1", "h1", "h2").id);
        assert_ne!(c.id, change("https://a.example/1", "h2", "h3").id);
        assert_ne!(c.id, change("https://a.example/2", "h1", "h2").id);
        assert_eq!(c.changed, ["price"]);
        assert_eq!(c.id.len(), 32);
    }

    #[test]
    fn a_replayed_append_writes_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("changes.jsonl");
        let (a, b) =
            (change("https://a.example/1", "h1", "h2"), change("https://a.example/2", "h1", "h2"));
        let len = append_jsonl(&path, &[&a], None).unwrap();
        // A run cut short after appending b, before its checkpoint knew the new length.
        append_jsonl(&path, &[&b], Some(len)).unwrap();
        let len = append_jsonl(&path, &[&b], Some(len)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(len, text.len() as u64);
        // Lines the checkpoint knows are not read again (they are not replayed either).
        let c = change("https://a.example/3", "h1", "h2");
        append_jsonl(&path, &[&c], Some(len)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
