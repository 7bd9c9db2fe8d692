//! One service's breaker: the state machine closed → open → half-open → closed.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use unattended_core::ServiceKey;

use crate::config::BreakerConfig;
use crate::registry::Settings;
use crate::window::{BreakerWindow, Outcome};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const FORCED_CLOSED: u8 = 3;

/// A breaker's state as the atomics hold it (instants as monotonic time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawState {
    Closed,
    Open(Instant),
    HalfOpen,
    ForcedClosed,
}

/// What a call may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Permit {
    /// A normal call, breaker closed.
    Call,
    /// One of the limited probes of a half-open episode.
    Probe { episode: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    Allowed(Permit),
    /// Fail fast; the breaker lets a probe through at this instant.
    Rejected(Instant),
}

/// A change of state, for events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Opened(Instant),
    HalfOpened,
    Closed,
}

/// The breaker of one service. A sans-IO value: it is given `now` and the random draw.
///
/// The closed path is lock-free: the state is an atomic, the window records with atomics.
/// State changes take `transition`, a mutex only the (rare) transitions contend for.
pub(crate) struct Circuit {
    pub(crate) key: ServiceKey,
    /// The registry's settings, kept here so a call holds one reference, not two.
    pub(crate) settings: Arc<Settings>,
    state: AtomicU8,
    window: BreakerWindow,
    /// End of the open state, in nanoseconds since `origin`.
    open_until: AtomicU64,
    /// Half-open episodes, so a late probe of an old episode changes nothing.
    episode: AtomicU32,
    probes: AtomicU32,
    successes: AtomicU32,
    /// Trips in a row, for the growing open duration.
    trips: AtomicU32,
    transition: Mutex<()>,
    origin: Instant,
}

impl Circuit {
    pub(crate) fn new(key: ServiceKey, settings: Arc<Settings>, origin: Instant) -> Self {
        Self {
            key,
            state: AtomicU8::new(CLOSED),
            window: BreakerWindow::new(&settings.config.policy, origin),
            settings,
            open_until: AtomicU64::new(0),
            episode: AtomicU32::new(0),
            probes: AtomicU32::new(0),
            successes: AtomicU32::new(0),
            trips: AtomicU32::new(0),
            transition: Mutex::new(()),
            origin,
        }
    }

    /// True when the state is closed (or forced closed): the case that needs no clock.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), CLOSED | FORCED_CLOSED)
    }

    pub(crate) fn raw_state(&self) -> RawState {
        match self.state.load(Ordering::Acquire) {
            OPEN => RawState::Open(self.until()),
            HALF_OPEN => RawState::HalfOpen,
            FORCED_CLOSED => RawState::ForcedClosed,
            _ => RawState::Closed,
        }
    }

    /// May a call go through at `now`?
    pub(crate) fn admit(
        &self,
        now: Instant,
        config: &BreakerConfig,
    ) -> (Admit, Option<Transition>) {
        let mut transition = None;
        loop {
            match self.state.load(Ordering::Acquire) {
                CLOSED | FORCED_CLOSED => return (Admit::Allowed(Permit::Call), transition),
                OPEN => {
                    let until = self.until();
                    if now < until {
                        return (Admit::Rejected(until), transition);
                    }
                    let _guard = self.lock();
                    if self.state.load(Ordering::Acquire) == OPEN && now >= self.until() {
                        self.episode.fetch_add(1, Ordering::AcqRel);
                        self.probes.store(0, Ordering::Release);
                        self.successes.store(0, Ordering::Release);
                        self.state.store(HALF_OPEN, Ordering::Release);
                        transition = Some(Transition::HalfOpened);
                    }
                }
                _ => {
                    let episode = self.episode.load(Ordering::Acquire);
                    let taken =
                        self.probes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                            (p < config.probes).then_some(p + 1)
                        });
                    return match taken {
                        Ok(_) => (Admit::Allowed(Permit::Probe { episode }), transition),
                        // A probe is out: its answer will come soon.
                        Err(_) => (Admit::Rejected(now), transition),
                    };
                }
            }
        }
    }

    /// Records a success of a normal call while closed, for windows that need no time (count
    /// and consecutive). Time windows go through [`complete`](Self::complete).
    pub(crate) fn record_success(&self) {
        // `now` is ignored by these windows.
        self.window.record(Outcome::default(), self.origin);
    }

    /// Records how a permitted call ended.
    pub(crate) fn complete(
        &self,
        permit: Permit,
        outcome: Outcome,
        now: Instant,
        config: &BreakerConfig,
        unit: f64,
    ) -> Option<Transition> {
        match permit {
            Permit::Call => {
                if self.state.load(Ordering::Acquire) != CLOSED || !self.window.record(outcome, now)
                {
                    return None;
                }
                let _guard = self.lock();
                (self.state.load(Ordering::Acquire) == CLOSED).then(|| self.trip(now, config, unit))
            }
            Permit::Probe { episode } => {
                if self.episode.load(Ordering::Acquire) != episode {
                    return None;
                }
                self.release_probe();
                let failed = outcome.failed || outcome.slow;
                if !failed
                    && self.successes.fetch_add(1, Ordering::AcqRel) + 1 < config.successes_to_close
                {
                    return None;
                }
                let _guard = self.lock();
                if self.state.load(Ordering::Acquire) != HALF_OPEN
                    || self.episode.load(Ordering::Acquire) != episode
                {
                    return None;
                }
                if failed {
                    return Some(self.trip(now, config, unit));
                }
                self.trips.store(0, Ordering::Release);
                self.window.reset();
                self.state.store(CLOSED, Ordering::Release);
                Some(Transition::Closed)
            }
        }
    }

    /// Gives back the slot of a probe that ended without an answer (its future was dropped).
    pub(crate) fn abandon(&self, permit: Permit) {
        if let Permit::Probe { episode } = permit
            && self.episode.load(Ordering::Acquire) == episode
        {
            self.release_probe();
        }
    }

    /// Opens until `until`, whatever the state (a server-given instant, or an admin).
    pub(crate) fn force_open(&self, until: Instant) -> Transition {
        let _guard = self.lock();
        self.open_until.store(self.nanos(until), Ordering::Release);
        self.state.store(OPEN, Ordering::Release);
        Transition::Opened(until)
    }

    /// Keeps the breaker closed whatever happens, until [`reset`](Self::reset).
    pub(crate) fn force_closed(&self) {
        let _guard = self.lock();
        self.window.reset();
        self.state.store(FORCED_CLOSED, Ordering::Release);
    }

    /// Back to closed, with an empty window and no trips.
    pub(crate) fn reset(&self) {
        let _guard = self.lock();
        self.window.reset();
        self.trips.store(0, Ordering::Release);
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Opens for the next duration of the schedule. The caller holds the transition lock.
    fn trip(&self, now: Instant, config: &BreakerConfig, unit: f64) -> Transition {
        let trip = self.trips.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let until = now.checked_add(config.open.for_trip(trip, unit)).unwrap_or(now);
        self.open_until.store(self.nanos(until), Ordering::Release);
        self.window.reset();
        self.state.store(OPEN, Ordering::Release);
        Transition::Opened(until)
    }

    fn release_probe(&self) {
        let _ = self.probes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1));
    }

    fn until(&self) -> Instant {
        let nanos = self.open_until.load(Ordering::Acquire);
        self.origin.checked_add(Duration::from_nanos(nanos)).unwrap_or(self.origin)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.transition.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Circuit")
            .field("key", &self.key)
            .field("state", &self.raw_state())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OpenDuration;
    use crate::window::FailurePolicy;

    const OK: Outcome = Outcome { failed: false, slow: false };
    const FAIL: Outcome = Outcome { failed: true, slow: false };

    fn config() -> BreakerConfig {
        BreakerConfig::standard()
            .policy(FailurePolicy::consecutive(2))
            .open_duration(OpenDuration::growing(
                Duration::from_secs(10),
                2.0,
                Duration::from_secs(60),
            ))
            .half_open(2, 2)
    }

    fn circuit(t: Instant) -> Circuit {
        let settings =
            crate::registry::Registry::new(config(), unattended_core::Clock::system(), None)
                .settings;
        Circuit::new(ServiceKey::new("a"), settings, t)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn closed_opens_rejects_then_half_opens() {
        let t = unattended_core::Clock::system().now();
        let (c, cfg) = (circuit(t), config());
        assert_eq!(c.admit(t, &cfg), (Admit::Allowed(Permit::Call), None));
        assert_eq!(c.complete(Permit::Call, FAIL, t, &cfg, 0.0), None);
        // Equal jitter with a draw of 0: half the 10 s base.
        assert_eq!(
            c.complete(Permit::Call, FAIL, t, &cfg, 0.0),
            Some(Transition::Opened(t + secs(5)))
        );
        assert_eq!(c.admit(t + secs(4), &cfg), (Admit::Rejected(t + secs(5)), None));
        let (admit, transition) = c.admit(t + secs(5), &cfg);
        assert_eq!(admit, Admit::Allowed(Permit::Probe { episode: 1 }));
        assert_eq!(transition, Some(Transition::HalfOpened));
    }

    #[test]
    fn exactly_n_probes_and_m_successes_close() {
        let t = unattended_core::Clock::system().now();
        let (c, cfg) = (circuit(t), config());
        c.force_open(t);
        let permits: Vec<_> = (0..100).map(|_| c.admit(t, &cfg).0).collect();
        let probes: Vec<_> = permits.iter().filter(|a| matches!(a, Admit::Allowed(_))).collect();
        assert_eq!(probes.len(), 2);
        let probe = Permit::Probe { episode: 1 };
        assert_eq!(c.complete(probe, OK, t, &cfg, 0.0), None);
        assert_eq!(c.complete(probe, OK, t, &cfg, 0.0), Some(Transition::Closed));
        assert_eq!(c.raw_state(), RawState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_for_longer() {
        let t = unattended_core::Clock::system().now();
        let (c, cfg) = (circuit(t), config());
        c.complete(Permit::Call, FAIL, t, &cfg, 0.0);
        c.complete(Permit::Call, FAIL, t, &cfg, 0.0); // trip 1: 5 s
        let later = t + secs(5);
        let (admit, _) = c.admit(later, &cfg);
        let Admit::Allowed(probe) = admit else { panic!("{admit:?}") };
        // Trip 2: 20 s × (1/2 + draw/2) with draw 0 = 10 s.
        assert_eq!(
            c.complete(probe, FAIL, later, &cfg, 0.0),
            Some(Transition::Opened(later + secs(10)))
        );
        // A stale probe of the old episode changes nothing.
        assert_eq!(c.complete(probe, OK, later, &cfg, 0.0), None);
    }

    #[test]
    fn an_abandoned_probe_frees_its_slot() {
        let t = unattended_core::Clock::system().now();
        let (c, cfg) = (circuit(t), config().half_open(1, 1));
        c.force_open(t);
        let (Admit::Allowed(probe), _) = c.admit(t, &cfg) else { panic!() };
        assert_eq!(c.admit(t, &cfg).0, Admit::Rejected(t));
        c.abandon(probe);
        assert!(matches!(c.admit(t, &cfg).0, Admit::Allowed(Permit::Probe { .. })));
    }

    #[test]
    fn forced_closed_ignores_failures_until_reset() {
        let t = unattended_core::Clock::system().now();
        let (c, cfg) = (circuit(t), config());
        c.force_closed();
        for _ in 0..10 {
            assert_eq!(c.complete(Permit::Call, FAIL, t, &cfg, 0.0), None);
        }
        assert_eq!(c.raw_state(), RawState::ForcedClosed);
        c.reset();
        c.complete(Permit::Call, FAIL, t, &cfg, 0.0);
        assert!(matches!(
            c.complete(Permit::Call, FAIL, t, &cfg, 0.0),
            Some(Transition::Opened(_))
        ));
    }
}
