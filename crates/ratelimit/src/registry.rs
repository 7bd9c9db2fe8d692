//! The shared table of paused and paced hosts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::ServiceKey;

use crate::adaptive::{self, Adaptive};
use crate::pacing::Pace;
use crate::schedule::Schedule;

/// Which services are paused, until when, and how fast each paced one may be called; shared by
/// every clone of a layer and across tasks.
///
/// A sans-IO value: every method is given `now` and none reads a clock. Checking a key takes
/// one atomic load while no host is paused or paced (the common case), and a keyed lookup
/// otherwise. Pauses only ever grow: a shorter request from the server never cuts a longer pause
/// short (use [`resume`](Self::resume) for that).
///
/// Engines can pause a host by hand for answers no header describes, for example YouTube's
/// `403 quotaExceeded`, which lasts until the next midnight in America/Los_Angeles.
///
/// # Sharing
///
/// A registry is a reference-counted handle: clones see the same hosts. Each layer makes its
/// own by default, so two clients never slow each other down; to share one, make it and give it
/// to each layer ([`RateLimitLayer::with_registry`](crate::RateLimitLayer::with_registry)), or
/// use the process-wide [`global`](Self::global) one.
#[derive(Clone)]
pub struct PauseRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    /// How many hosts the table holds: zero is the lock-free "nothing here" test of the happy
    /// path.
    hosts_held: AtomicUsize,
    hosts: RwLock<HashMap<ServiceKey, Arc<Host>>>,
}

/// One paused or paced host; shared by the table and the requests waiting for it.
#[derive(Debug)]
pub(crate) struct Host {
    state: Mutex<HostState>,
}

/// What the layer knows of one host.
#[derive(Debug, Default)]
pub(crate) struct HostState {
    /// When the host's pause ends (wall time), if one was set and not yet removed.
    pub(crate) pause: Option<Timestamp>,
    /// How fast the host may be called, if it is paced.
    pub(crate) pace: Option<Pacing>,
    /// Removed from the table: whoever still holds it must look the key up again.
    gone: bool,
}

/// The pace of one host: the line of waiting requests and the rate that spaces them.
#[derive(Debug)]
pub(crate) struct Pacing {
    pub(crate) schedule: Schedule,
    /// Learned from the host's answers, or fixed by configuration.
    pub(crate) adaptive: Option<Adaptive>,
    /// The configured pace, if any: the learned rate never goes above it.
    pub(crate) ceiling: Option<Pace>,
    /// When the rate was last cut or set by the server (wall time), for snapshots.
    pub(crate) learned_at: Timestamp,
    /// When the rate was last cut (monotonic), to forget a rate nobody needs.
    pub(crate) cut_at: Instant,
}

/// Drop a learned pace after this long without a throttle, once nobody waits for it: the happy
/// path is cheaper, and the next throttle learns again.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(600);

impl Pacing {
    /// A fixed pace (adaptive or not: `adaptive` starts at the configured rate).
    pub(crate) fn configured(pace: Pace, adaptive: bool, now: Instant, wall: Timestamp) -> Self {
        Self {
            schedule: Schedule::new(now, pace.interval(), pace.burst()),
            adaptive: adaptive.then(|| Adaptive::resumed(now, pace.rate(), pace.rate())),
            ceiling: Some(pace),
            learned_at: wall,
            cut_at: now,
        }
    }

    /// A pace learned from a first throttle at `now`: the next request goes one interval later.
    pub(crate) fn learned(rate: f64, ceiling: Option<Pace>, now: Instant, wall: Timestamp) -> Self {
        let top = ceiling.map_or(adaptive::MAX_RATE, |p| p.rate());
        let control = Adaptive::new(now, rate, top);
        let burst = ceiling.map_or(1, |p| p.burst());
        let interval = adaptive::interval(control.rate());
        Self {
            schedule: Schedule::starting_at(now + interval, interval, burst),
            adaptive: Some(control),
            ceiling,
            learned_at: wall,
            cut_at: now,
        }
    }

    /// The rate now, in requests per second.
    pub(crate) fn rate(&self) -> f64 {
        match &self.adaptive {
            Some(a) => a.rate(),
            None => 1.0 / self.schedule.interval().as_secs_f64(),
        }
    }

    /// Spaces the line by the current rate.
    pub(crate) fn respace(&mut self, now: Instant) {
        if let Some(a) = &self.adaptive {
            let burst = self.schedule.burst();
            self.schedule.set_interval(now, adaptive::interval(a.rate()), burst);
        }
    }

    /// A learned pace nobody has needed for [`FORGET_AFTER`].
    pub(crate) fn forgettable(&self, now: Instant) -> bool {
        self.ceiling.is_none()
            && now.saturating_duration_since(self.cut_at) >= FORGET_AFTER
            && self.schedule.next_due(now) <= now
    }
}

impl Host {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HostState {
    fn is_empty(&self) -> bool {
        self.pause.is_none() && self.pace.is_none()
    }

    /// Removed from the table since it was looked up: it holds nothing any more.
    pub(crate) fn gone(&self) -> bool {
        self.gone
    }
}

/// One paused service, as saved and restored: `key` and when its pause ends (`until`, wall
/// time). The same type as the breaker's snapshot.
pub type PauseSnapshot = unattended_core::HeldUntil;

/// The learned pace of one service, as saved and restored.
#[derive(Clone, Debug, PartialEq)]
pub struct PaceSnapshot {
    /// The paced service.
    pub key: ServiceKey,
    /// Requests per second it was paced at.
    pub rate: f64,
    /// When the rate was learned (last cut, or set from the server's quota fields).
    pub learned_at: Timestamp,
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

static GLOBAL: LazyLock<PauseRegistry> = LazyLock::new(PauseRegistry::new);

impl PauseRegistry {
    /// A registry of its own, empty.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                hosts_held: AtomicUsize::new(0),
                hosts: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// One registry for the whole process, for programs where every caller of a host should
    /// wait together whatever client it uses. Nothing uses it unless given it.
    pub fn global() -> Self {
        GLOBAL.clone()
    }

    /// True if `self` and `other` are the same registry.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Pauses `key` until `until`, unless it is already paused until then or later.
    ///
    /// Returns `true` if the pause was set or extended.
    pub fn pause(&self, key: impl Into<ServiceKey>, until: Timestamp, now: Timestamp) -> bool {
        let key = key.into();
        if until <= now {
            return false;
        }
        self.prune(now);
        self.update(&key, |state| match state.pause {
            Some(current) if current >= until => false,
            _ => {
                state.pause = Some(until);
                true
            }
        })
        .0
    }

    /// When the pause on `key` ends, if it is paused at `now`.
    pub fn paused_until(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        match self.lookup(key, now) {
            PauseState::Paused(until) => Some(until),
            PauseState::Clear | PauseState::Over => None,
        }
    }

    /// The pause state of `key` at `now`.
    pub fn lookup(&self, key: &str, now: Timestamp) -> PauseState {
        self.with_host(key, |_, state| match state.pause {
            None => PauseState::Clear,
            Some(until) if until > now => PauseState::Paused(until),
            Some(_) => PauseState::Over,
        })
        .unwrap_or(PauseState::Clear)
    }

    /// True when this registry certainly holds no paused or paced host: one atomic load, the
    /// fast path of every check.
    pub fn is_quiet(&self) -> bool {
        self.inner.hosts_held.load(Ordering::Acquire) == 0
    }

    /// Removes the pause on `key` if it is over at `now`; returns `true` if one was removed.
    pub fn end_if_over(&self, key: &str, now: Timestamp) -> bool {
        self.with_host(key, |host, state| {
            let over = state.pause.is_some_and(|until| until <= now);
            if over {
                state.pause = None;
            }
            self.tidy(key, host, state);
            over
        })
        .unwrap_or(false)
    }

    /// Lifts the pause on `key` at once; returns `true` if there was one.
    pub fn resume(&self, key: &str) -> bool {
        self.with_host(key, |host, state| {
            let removed = state.pause.take().is_some();
            self.tidy(key, host, state);
            removed
        })
        .unwrap_or(false)
    }

    /// The pauses in force at `now`, sorted by key, for saving.
    pub fn snapshot(&self, now: Timestamp) -> Vec<PauseSnapshot> {
        let mut snapshot: Vec<_> = self
            .hosts()
            .into_iter()
            .filter_map(|(key, host)| {
                let until = host.lock().pause.filter(|until| *until > now)?;
                Some(PauseSnapshot { key, until })
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
        snapshot.into_iter().filter(|p| self.pause(p.key.clone(), p.until, now)).count()
    }

    /// The paces learned from the hosts' answers, sorted by key, for saving. Configured paces
    /// are not included: the configuration sets them again.
    pub fn paces(&self) -> Vec<PaceSnapshot> {
        let mut paces: Vec<_> = self
            .hosts()
            .into_iter()
            .filter_map(|(key, host)| {
                let state = host.lock();
                let pace = state.pace.as_ref()?;
                pace.adaptive.as_ref()?;
                Some(PaceSnapshot { key, rate: pace.rate(), learned_at: pace.learned_at })
            })
            .collect();
        paces.sort_by(|a, b| a.key.cmp(&b.key));
        paces
    }

    /// Takes back saved paces learned within the last ten minutes of `wall` (older ones are
    /// stale: the host may have changed its limit); returns how many were taken. A host that
    /// is already paced keeps its pace.
    pub fn restore_paces(
        &self,
        paces: impl IntoIterator<Item = PaceSnapshot>,
        now: Instant,
        wall: Timestamp,
    ) -> usize {
        let mut restored = 0;
        for saved in paces {
            let age = unattended_core::clock::duration_between(saved.learned_at, wall);
            if saved.learned_at > wall || age >= FORGET_AFTER || !saved.rate.is_finite() {
                continue;
            }
            let taken = self.update(&saved.key, |state| {
                if state.pace.is_some() {
                    return false;
                }
                let control = Adaptive::resumed(now, saved.rate, adaptive::MAX_RATE);
                let interval = adaptive::interval(control.rate());
                state.pace = Some(Pacing {
                    schedule: Schedule::new(now, interval, 1),
                    adaptive: Some(control),
                    ceiling: None,
                    learned_at: saved.learned_at,
                    // Forgotten when it would have been without the restart.
                    cut_at: now.checked_sub(age).unwrap_or(now),
                });
                true
            });
            restored += usize::from(taken.0);
        }
        restored
    }

    /// The rate `key` is paced at, in requests per second, if it is paced.
    pub fn pace_of(&self, key: &str) -> Option<f64> {
        self.with_host(key, |_, state| state.pace.as_ref().map(Pacing::rate))?
    }

    // ===== crate-internal =====

    /// The state of `key`, if the table holds it.
    pub(crate) fn host(&self, key: &str) -> Option<Arc<Host>> {
        if self.is_quiet() {
            return None;
        }
        self.read().get(key).cloned()
    }

    /// Runs `f` on the state of `key`, locked, if the table holds it.
    pub(crate) fn with_host<R>(
        &self,
        key: &str,
        f: impl FnOnce(&Arc<Host>, &mut HostState) -> R,
    ) -> Option<R> {
        loop {
            let host = self.host(key)?;
            let mut state = host.lock();
            if !state.gone {
                return Some(f(&host, &mut state));
            }
        }
    }

    /// Runs `f` on the state of `key` (made if the table did not hold it), then drops the key
    /// from the table if `f` left it empty. Returns what `f` returned, and the host.
    pub(crate) fn update<R>(
        &self,
        key: &ServiceKey,
        mut f: impl FnMut(&mut HostState) -> R,
    ) -> (R, Arc<Host>) {
        loop {
            let host = self.host_or_insert(key.clone());
            let mut state = host.lock();
            if state.gone {
                continue;
            }
            let answer = f(&mut state);
            self.tidy(key.as_str(), &host, &mut state);
            drop(state);
            return (answer, host);
        }
    }

    /// The state of `key`, made empty if the table did not hold it.
    pub(crate) fn host_or_insert(&self, key: ServiceKey) -> Arc<Host> {
        if let Some(host) = self.host(key.as_str()) {
            return host;
        }
        let mut hosts = self.inner.hosts.write().unwrap_or_else(PoisonError::into_inner);
        let host = hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Host { state: Mutex::new(HostState::default()) }))
            .clone();
        self.inner.hosts_held.store(hosts.len(), Ordering::Release);
        host
    }

    /// Drops `key` from the table if its state (locked by the caller) holds nothing.
    pub(crate) fn tidy(&self, key: &str, host: &Arc<Host>, state: &mut HostState) {
        if !state.is_empty() || state.gone {
            return;
        }
        let mut hosts = self.inner.hosts.write().unwrap_or_else(PoisonError::into_inner);
        // Only the entry the caller looked at: a new one may have replaced it.
        if hosts.get(key).is_some_and(|held| Arc::ptr_eq(held, host)) {
            hosts.remove(key);
            state.gone = true;
        }
        self.inner.hosts_held.store(hosts.len(), Ordering::Release);
    }

    /// Drops the hosts whose pause ended over a minute before `now` and that are not paced
    /// (setting a pause is rare: a good moment), so that a table nobody asks about again does
    /// not keep every request off the fast path.
    pub(crate) fn prune(&self, now: Timestamp) {
        let stale = unattended_core::clock::sub_saturating(now, Duration::from_secs(60));
        for (key, host) in self.hosts() {
            let mut state = host.lock();
            if state.pace.is_none() && state.pause.is_some_and(|until| until <= stale) {
                state.pause = None;
                self.tidy(key.as_str(), &host, &mut state);
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ServiceKey, Arc<Host>>> {
        self.inner.hosts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn hosts(&self) -> Vec<(ServiceKey, Arc<Host>)> {
        self.read().iter().map(|(k, h)| (k.clone(), h.clone())).collect()
    }
}

impl Default for PauseRegistry {
    /// A registry of its own, as [`PauseRegistry::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PauseRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PauseRegistry")
            .field("hosts", &self.inner.hosts_held.load(Ordering::Relaxed))
            .finish_non_exhaustive()
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
        assert!(r.is_quiet(), "the host left the table with its pause");
        assert_eq!(r.snapshot(ts("2026-11-28T09:00:00Z")), []);
    }

    #[test]
    fn resume_lifts_a_pause() {
        let r = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T11:00:00Z"), ts(NOW));
        assert!(r.resume("a"));
        assert!(!r.resume("a"));
        assert_eq!(r.paused_until("a", ts(NOW)), None);
        assert!(r.is_quiet());
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
    fn clones_share_a_table_and_registries_are_apart() {
        let r = PauseRegistry::new();
        let copy = r.clone();
        let other = PauseRegistry::new();
        r.pause(key("a"), ts("2026-11-28T10:00:30Z"), ts(NOW));
        assert!(copy.paused_until("a", ts(NOW)).is_some());
        assert!(copy.same_as(&r) && !other.same_as(&r));
        assert_eq!(other.paused_until("a", ts(NOW)), None);
        assert!(!r.is_quiet());
        assert!(other.is_quiet(), "a pause elsewhere costs this registry nothing");
        assert!(PauseRegistry::global().same_as(&PauseRegistry::global()));
    }

    #[test]
    fn learned_paces_round_trip_while_fresh() {
        let clock = unattended_core::Clock::starting_at(ts(NOW));
        let (now, wall) = (clock.now(), clock.wall());
        let r = PauseRegistry::new();
        let host = r.host_or_insert(key("a"));
        host.lock().pace = Some(Pacing::learned(12.5, None, now, wall));
        let fixed = r.host_or_insert(key("b"));
        let pace = Pace::per_second(5).unwrap();
        fixed.lock().pace = Some(Pacing::configured(pace, false, now, wall));
        let saved = r.paces();
        assert_eq!(saved, [PaceSnapshot { key: key("a"), rate: 12.5, learned_at: wall }]);

        let restarted = PauseRegistry::new();
        let later = unattended_core::clock::add_saturating(wall, Duration::from_secs(60));
        assert_eq!(restarted.restore_paces(saved.clone(), now, later), 1);
        assert_eq!(restarted.pace_of("a"), Some(12.5));
        let stale = unattended_core::clock::add_saturating(wall, FORGET_AFTER);
        assert_eq!(PauseRegistry::new().restore_paces(saved, now, stale), 0);
    }
}
