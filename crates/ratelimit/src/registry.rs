//! The shared table of paused hosts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use jiff::Timestamp;
use unattended_core::ServiceKey;

/// Which services are paused, and until when; shared by every clone of a layer and across tasks.
///
/// A sans-IO value: every method is given `now` and none reads a clock. Checking a key takes
/// one atomic load while nothing is paused (the common case), and a read lock otherwise. Pauses
/// only ever grow: a shorter request from the server never cuts a longer pause short (use
/// [`resume`](Self::resume) for that).
///
/// Engines can pause a host by hand for answers no header describes, for example YouTube's
/// `403 quotaExceeded`, which lasts until the next midnight in America/Los_Angeles.
///
/// # Clone
///
/// Clones share the same table.
#[derive(Clone, Debug, Default)]
pub struct PauseRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// How many entries `pauses` holds (expired ones included until pruned).
    entries: AtomicUsize,
    pauses: RwLock<HashMap<ServiceKey, Timestamp>>,
}

/// One paused service, as saved and restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseSnapshot {
    /// The paused service.
    pub key: ServiceKey,
    /// When the pause ends (wall time, so it means the same after a restart).
    pub until: Timestamp,
}

impl PauseRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pauses `key` until `until`, unless it is already paused until then or later.
    ///
    /// Returns `true` if the pause was set or extended.
    pub fn pause(&self, key: ServiceKey, until: Timestamp, now: Timestamp) -> bool {
        if until <= now {
            return false;
        }
        let mut pauses = self
            .inner
            .pauses
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let changed = match pauses.get_mut(&key) {
            Some(current) if *current >= until => false,
            Some(current) => {
                *current = until;
                true
            }
            None => {
                pauses.insert(key, until);
                true
            }
        };
        self.inner.entries.store(pauses.len(), Ordering::Release);
        changed
    }

    /// When the pause on `key` ends, if it is paused at `now`.
    pub fn paused_until(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        if self.is_empty() {
            return None;
        }
        let pauses = self
            .inner
            .pauses
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        pauses.get(key).copied().filter(|until| *until > now)
    }

    /// True when no service has an entry: the lock-free fast path of every check.
    pub fn is_empty(&self) -> bool {
        self.inner.entries.load(Ordering::Acquire) == 0
    }

    /// Removes the pause on `key` if it is over at `now`; returns `true` if one was removed.
    pub fn end_if_over(&self, key: &str, now: Timestamp) -> bool {
        let mut pauses = self
            .inner
            .pauses
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let over = pauses.get(key).is_some_and(|until| *until <= now);
        if over {
            pauses.remove(key);
            self.inner.entries.store(pauses.len(), Ordering::Release);
        }
        over
    }

    /// Lifts the pause on `key` at once; returns `true` if there was one.
    pub fn resume(&self, key: &str) -> bool {
        let mut pauses = self
            .inner
            .pauses
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = pauses.remove(key).is_some();
        self.inner.entries.store(pauses.len(), Ordering::Release);
        removed
    }

    /// The pauses in force at `now`, sorted by key, for saving.
    pub fn snapshot(&self, now: Timestamp) -> Vec<PauseSnapshot> {
        let pauses = self
            .inner
            .pauses
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut snapshot: Vec<_> = pauses
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(key, until)| PauseSnapshot {
                key: key.clone(),
                until: *until,
            })
            .collect();
        snapshot.sort_by(|a, b| a.key.cmp(&b.key));
        snapshot
    }

    /// Takes back saved pauses; those already over at `now` are dropped. Returns how many are in
    /// force.
    pub fn restore(
        &self,
        snapshot: impl IntoIterator<Item = PauseSnapshot>,
        now: Timestamp,
    ) -> usize {
        snapshot
            .into_iter()
            .filter(|p| self.pause(p.key.clone(), p.until, now))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key(s: &str) -> ServiceKey {
        ServiceKey::new(s)
    }

    const NOW: &str = "2026-11-28T10:00:00Z";

    #[test]
    fn pauses_only_grow() {
        let r = PauseRegistry::new();
        assert!(r.is_empty());
        assert!(r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW)));
        assert!(!r.pause(key("a"), ts("2026-11-28T10:00:10Z"), ts(NOW)));
        assert!(r.pause(key("a"), ts("2026-11-28T10:01:00Z"), ts(NOW)));
        assert_eq!(
            r.paused_until("a", ts(NOW)),
            Some(ts("2026-11-28T10:01:00Z"))
        );
        assert_eq!(r.paused_until("b", ts(NOW)), None);
        // A pause in the past sets nothing.
        assert!(!r.pause(key("c"), ts(NOW), ts(NOW)));
        assert_eq!(r.paused_until("c", ts(NOW)), None);
    }

    #[test]
    fn a_pause_is_over_at_its_end() {
        let r = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW));
        assert!(
            r.paused_until("a", ts("2026-11-28T10:00:29.999Z"))
                .is_some()
        );
        assert_eq!(r.paused_until("a", ts("2026-11-28T10:00:30Z")), None);
        assert!(!r.end_if_over("a", ts("2026-11-28T10:00:29Z")));
        assert!(r.end_if_over("a", ts("2026-11-28T10:00:30Z")));
        assert!(r.is_empty());
    }

    #[test]
    fn resume_lifts_a_pause() {
        let r = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T11:00:00Z"), ts(NOW));
        assert!(r.resume("a"));
        assert!(!r.resume("a"));
        assert!(r.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_drop_what_is_over() {
        let r = PauseRegistry::new();
        r.pause(key("b"), ts("2026-11-28T12:00:00Z"), ts(NOW));
        r.pause(key("a"), ts("2026-11-28T10:00:05Z"), ts(NOW));
        let saved = r.snapshot(ts(NOW));
        assert_eq!(
            saved.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );

        // A process restarted a minute later: "a" is over, "b" still holds.
        let restarted = PauseRegistry::new();
        assert_eq!(restarted.restore(saved, ts("2026-11-28T10:01:00Z")), 1);
        assert_eq!(
            restarted.paused_until("a", ts("2026-11-28T10:01:00Z")),
            None
        );
        assert_eq!(
            restarted.paused_until("b", ts("2026-11-28T10:01:00Z")),
            Some(ts("2026-11-28T12:00:00Z"))
        );
        assert!(r.snapshot(ts("2026-11-28T13:00:00Z")).is_empty());
    }

    #[test]
    fn clones_share_the_table() {
        let r = PauseRegistry::new();
        let clone = r.clone();
        r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW));
        assert!(clone.paused_until("a", ts(NOW)).is_some());
    }
}
