//! The shared table of paused hosts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, PoisonError, RwLock, RwLockWriteGuard};

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
/// # Copies and the process-wide table
///
/// A registry is a small `Copy` handle to its partition of one process-wide table, so a request
/// in flight can keep it without touching a shared reference count (which costs more than the
/// whole check when threads contend for it). Copies see the same pauses.
/// [`new`](Self::new) makes a partition of its own (one per layer, by default);
/// [`global`](Self::global) is one partition every layer may share, for processes where all
/// callers of a host should wait together whatever client they use. Entries of a partition that
/// is no longer used are dropped once their pause is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PauseRegistry {
    id: u64,
}

/// The process-wide table: partition → key → end of the pause.
struct Table {
    /// How many entries the table holds, over every partition (expired ones until pruned).
    entries: AtomicUsize,
    /// Entries per stripe of partitions (`id % STRIPES`): the lock-free "nothing paused here"
    /// test, so a pause in one partition does not slow the others down (unless they share a
    /// stripe, which only costs them the locked lookup).
    stripes: [AtomicUsize; STRIPES],
    pauses: RwLock<HashMap<u64, HashMap<ServiceKey, Timestamp>>>,
}

const STRIPES: usize = 64;

static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    entries: AtomicUsize::new(0),
    stripes: std::array::from_fn(|_| AtomicUsize::new(0)),
    pauses: RwLock::new(HashMap::new()),
});

/// Above this many entries, setting a pause prunes every partition.
const PRUNE_ALL_ABOVE: usize = 4096;

/// Partition 0 is the global one.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One paused service, as saved and restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseSnapshot {
    /// The paused service.
    pub key: ServiceKey,
    /// When the pause ends (wall time, so it means the same after a restart).
    pub until: Timestamp,
}

type Pauses = HashMap<u64, HashMap<ServiceKey, Timestamp>>;

fn write() -> RwLockWriteGuard<'static, Pauses> {
    TABLE.pauses.write().unwrap_or_else(PoisonError::into_inner)
}

/// Recounts the entries after a change (under the write lock).
fn recount(pauses: &Pauses) {
    let mut stripes = [0usize; STRIPES];
    for (id, partition) in pauses {
        stripes[stripe(*id)] += partition.len();
    }
    for (count, atomic) in stripes.iter().zip(&TABLE.stripes) {
        atomic.store(*count, Ordering::Release);
    }
    TABLE.entries.store(stripes.iter().sum(), Ordering::Release);
}

fn stripe(id: u64) -> usize {
    (id % STRIPES as u64) as usize
}

/// The state of one key, as [`PauseRegistry::lookup`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseState {
    /// Not paused.
    Clear,
    /// Paused until this instant.
    Paused(Timestamp),
    /// Its pause is over but still in the table ([`PauseRegistry::end_if_over`] removes it).
    Over,
}

impl PauseRegistry {
    /// A registry of its own, empty.
    pub fn new() -> Self {
        Self { id: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The registry shared by the whole process.
    pub const fn global() -> Self {
        Self { id: 0 }
    }

    /// Pauses `key` until `until`, unless it is already paused until then or later.
    ///
    /// Returns `true` if the pause was set or extended.
    pub fn pause(&self, key: ServiceKey, until: Timestamp, now: Timestamp) -> bool {
        if until <= now {
            return false;
        }
        let mut pauses = write();
        // Setting a pause is rare: a good moment to drop this partition's pauses that are over.
        // Other partitions may run on other (simulated) clocks, so they are pruned with this
        // `now` only when the table grows large, which abandoned partitions alone could cause.
        if TABLE.entries.load(Ordering::Relaxed) > PRUNE_ALL_ABOVE {
            for partition in pauses.values_mut() {
                partition.retain(|_, end| *end > now);
            }
        } else if let Some(partition) = pauses.get_mut(&self.id) {
            partition.retain(|_, end| *end > now);
        }
        pauses.retain(|_, partition| !partition.is_empty());
        let partition = pauses.entry(self.id).or_default();
        let changed = match partition.get_mut(&key) {
            Some(current) if *current >= until => false,
            Some(current) => {
                *current = until;
                true
            }
            None => {
                partition.insert(key, until);
                true
            }
        };
        recount(&pauses);
        changed
    }

    /// When the pause on `key` ends, if it is paused at `now`.
    pub fn paused_until(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        match self.lookup(key, now) {
            PauseState::Paused(until) => Some(until),
            PauseState::Clear | PauseState::Over => None,
        }
    }

    /// The state of `key` at `now`.
    pub fn lookup(&self, key: &str, now: Timestamp) -> PauseState {
        if self.is_quiet() {
            return PauseState::Clear;
        }
        let pauses = TABLE.pauses.read().unwrap_or_else(PoisonError::into_inner);
        match pauses.get(&self.id).and_then(|partition| partition.get(key)) {
            None => PauseState::Clear,
            Some(until) if *until > now => PauseState::Paused(*until),
            Some(_) => PauseState::Over,
        }
    }

    /// True when this registry certainly holds no pause: one atomic load, the fast path of
    /// every check.
    pub fn is_quiet(&self) -> bool {
        TABLE.stripes[stripe(self.id)].load(Ordering::Acquire) == 0
    }

    /// Removes the pause on `key` if it is over at `now`; returns `true` if one was removed.
    pub fn end_if_over(&self, key: &str, now: Timestamp) -> bool {
        if self.is_quiet() {
            return false;
        }
        let mut pauses = write();
        let Some(partition) = pauses.get_mut(&self.id) else {
            return false;
        };
        let over = partition.get(key).is_some_and(|until| *until <= now);
        if over {
            partition.remove(key);
            recount(&pauses);
        }
        over
    }

    /// Lifts the pause on `key` at once; returns `true` if there was one.
    pub fn resume(&self, key: &str) -> bool {
        let mut pauses = write();
        let removed = pauses.get_mut(&self.id).is_some_and(|p| p.remove(key).is_some());
        recount(&pauses);
        removed
    }

    /// The pauses in force at `now`, sorted by key, for saving.
    pub fn snapshot(&self, now: Timestamp) -> Vec<PauseSnapshot> {
        let pauses = TABLE.pauses.read().unwrap_or_else(PoisonError::into_inner);
        let mut snapshot: Vec<_> = pauses
            .get(&self.id)
            .into_iter()
            .flatten()
            .filter(|(_, until)| **until > now)
            .map(|(key, until)| PauseSnapshot { key: key.clone(), until: *until })
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
        snapshot.into_iter().filter(|p| self.pause(p.key.clone(), p.until, now)).count()
    }
}

impl Default for PauseRegistry {
    /// A registry of its own, as [`PauseRegistry::new`].
    fn default() -> Self {
        Self::new()
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
        assert_eq!(r.snapshot(ts(NOW)), []);
        assert!(r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW)));
        assert!(!r.pause(key("a"), ts("2026-11-28T10:00:10Z"), ts(NOW)));
        assert!(r.pause(key("a"), ts("2026-11-28T10:01:00Z"), ts(NOW)));
        assert_eq!(r.paused_until("a", ts(NOW)), Some(ts("2026-11-28T10:01:00Z")));
        assert_eq!(r.paused_until("b", ts(NOW)), None);
        // A pause in the past sets nothing.
        assert!(!r.pause(key("c"), ts(NOW), ts(NOW)));
        assert_eq!(r.paused_until("c", ts(NOW)), None);
    }

    #[test]
    fn a_pause_is_over_at_its_end() {
        let r = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW));
        assert!(r.paused_until("a", ts("2026-11-28T10:00:29.999Z")).is_some());
        assert_eq!(r.lookup("a", ts("2026-11-28T10:00:30Z")), PauseState::Over);
        assert_eq!(r.lookup("b", ts("2026-11-28T10:00:30Z")), PauseState::Clear);
        assert_eq!(r.paused_until("a", ts("2026-11-28T10:00:30Z")), None);
        assert!(!r.end_if_over("a", ts("2026-11-28T10:00:29Z")));
        assert!(r.end_if_over("a", ts("2026-11-28T10:00:30Z")));
        assert_eq!(r.snapshot(ts("2026-11-28T09:00:00Z")), []);
    }

    #[test]
    fn resume_lifts_a_pause() {
        let r = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T11:00:00Z"), ts(NOW));
        assert!(r.resume("a"));
        assert!(!r.resume("a"));
        assert_eq!(r.paused_until("a", ts(NOW)), None);
    }

    #[test]
    fn snapshots_round_trip_and_drop_what_is_over() {
        let r = PauseRegistry::new();
        r.pause(key("b"), ts("2026-11-28T12:00:00Z"), ts(NOW));
        r.pause(key("a"), ts("2026-11-28T10:00:05Z"), ts(NOW));
        let saved = r.snapshot(ts(NOW));
        assert_eq!(saved.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);

        // A process restarted a minute later: "a" is over, "b" still holds.
        let restarted = PauseRegistry::new();
        assert_eq!(restarted.restore(saved, ts("2026-11-28T10:01:00Z")), 1);
        assert_eq!(restarted.paused_until("a", ts("2026-11-28T10:01:00Z")), None);
        assert_eq!(
            restarted.paused_until("b", ts("2026-11-28T10:01:00Z")),
            Some(ts("2026-11-28T12:00:00Z"))
        );
        assert!(r.snapshot(ts("2026-11-28T13:00:00Z")).is_empty());
    }

    #[test]
    fn copies_share_a_partition_and_partitions_are_apart() {
        let r = PauseRegistry::new();
        let copy = r;
        let other = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW));
        assert!(copy.paused_until("a", ts(NOW)).is_some());
        assert_eq!(other.paused_until("a", ts(NOW)), None);
        assert!(!r.is_quiet());
        assert!(PauseRegistry::new().is_quiet() || PauseRegistry::new().is_quiet());
    }

    #[test]
    fn pauses_that_are_over_are_pruned_when_another_is_set() {
        let r = PauseRegistry::new();
        r.pause(key("x"), ts("2026-11-28T10:00:01Z"), ts(NOW));
        r.pause(key("y"), ts("2026-11-28T11:00:00Z"), ts("2026-11-28T10:00:02Z"));
        let table = TABLE.pauses.read().unwrap();
        assert_eq!(table[&r.id].keys().map(ServiceKey::as_str).collect::<Vec<_>>(), ["y"]);
    }
}
