//! Every service's breaker, shared by all clones of a layer; and the handle to run them by hand.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::{BreakerOpen, Clock, FailureClass, KeySource, Random, ServiceKey};

use crate::circuit::{Circuit, RawState, Transition};
use crate::config::BreakerConfig;
use crate::event::{BreakerEvent, EventHook};
use crate::future::Tracker;

/// The state of one service's breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through; outcomes are watched.
    Closed,
    /// Calls fail fast until `until`.
    Open {
        /// When probing starts.
        until: Timestamp,
    },
    /// A few probe calls test the service; the others fail fast.
    HalfOpen,
    /// Forced closed by hand: calls go through and failures are not counted.
    ForcedClosed,
}

/// An open breaker, as saved and restored: `key` and when probing starts (`until`, wall
/// time). The same type as the rate-limit layer's pause snapshot.
pub type BreakerSnapshot = unattended_core::HeldUntil;

/// Permission for one call, from [`BreakerHandle::try_call`].
pub struct CallPermit {
    tracker: Tracker<()>,
}

impl CallPermit {
    /// Records how the call ended: `None` for a success, else its [`FailureClass`] (only
    /// transient failures count against the service, and a `429` never does).
    pub fn finish(mut self, class: Option<&FailureClass>) {
        self.tracker.record(class);
    }
}

impl fmt::Debug for CallPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit").finish_non_exhaustive()
    }
}

/// One service's breaker, from [`BreakerHandle::breaker`].
///
/// # Clone
///
/// Clones are the same breaker.
#[derive(Clone)]
pub struct ServiceBreaker {
    circuit: Arc<Circuit>,
}

impl ServiceBreaker {
    /// The service.
    pub fn key(&self) -> &ServiceKey {
        &self.circuit.key
    }

    /// As [`BreakerHandle::try_call`], for this breaker's service.
    ///
    /// # Errors
    ///
    /// [`BreakerOpen`] while the breaker is open (or its probes are all out).
    pub fn try_call(&self) -> Result<CallPermit, BreakerOpen> {
        let (permit, started) = crate::service::admit(&self.circuit)?;
        Ok(CallPermit { tracker: Tracker::new(self.circuit.clone(), permit, started, ()) })
    }
}

impl fmt::Debug for ServiceBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBreaker").field("key", self.key()).finish_non_exhaustive()
    }
}

/// The breakers of every service a layer has seen, keyed by [`ServiceKey`].
///
/// Get it from [`CircuitBreakerLayer::handle`](crate::CircuitBreakerLayer::handle) to read a
/// service's state, force it open or closed, or reset it (for an admin endpoint), and to save and
/// restore open breakers across restarts.
///
/// # Clone
///
/// Clones share the breakers.
#[derive(Clone)]
pub struct BreakerHandle {
    pub(crate) inner: Arc<Registry>,
}

pub(crate) struct Registry {
    circuits: ArcSwap<HashMap<ServiceKey, Arc<Circuit>>>,
    insert: Mutex<()>,
    pub(crate) settings: Arc<Settings>,
    origin: Instant,
}

/// What every breaker of a registry reads: settings, clock, event hook, jitter source.
pub(crate) struct Settings {
    pub(crate) config: BreakerConfig,
    pub(crate) clock: Clock,
    pub(crate) hook: Option<EventHook>,
    rng: Random,
    /// The window reads the time even for successes (time window), or calls are timed.
    pub(crate) needs_clock: bool,
}

impl Registry {
    pub(crate) fn new(config: BreakerConfig, clock: Clock, hook: Option<EventHook>) -> Self {
        let rng = Random::from_seed(config.seed);
        let needs_clock = config.slow_call.is_some()
            || matches!(config.policy, crate::window::FailurePolicy::TimeWindow { .. });
        Self {
            circuits: ArcSwap::default(),
            insert: Mutex::new(()),
            settings: Arc::new(Settings { config, clock, hook, rng, needs_clock }),
            origin: clock.now(),
        }
    }

    /// The breaker of `key`, made on first use. Lock-free once it exists.
    pub(crate) fn circuit(&self, key: &KeySource) -> Arc<Circuit> {
        if let Some(circuit) = key.with_str(|k| self.circuits.load().get(k).cloned()) {
            return circuit;
        }
        self.insert(key.to_key())
    }

    fn insert(&self, key: ServiceKey) -> Arc<Circuit> {
        let _guard = self.insert.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.circuits.load_full();
        if let Some(circuit) = current.get(&key) {
            return circuit.clone();
        }
        let circuit = Arc::new(Circuit::new(key.clone(), self.settings.clone(), self.origin));
        let mut next = HashMap::clone(&current);
        next.insert(key, circuit.clone());
        self.circuits.store(Arc::new(next));
        circuit
    }
}

impl Settings {
    pub(crate) fn unit(&self) -> f64 {
        self.rng.unit()
    }

    /// Reports a transition of `circuit`.
    pub(crate) fn announce(&self, circuit: &Circuit, transition: Transition) {
        let at = self.clock.wall();
        let key = circuit.key.clone();
        let event = match transition {
            Transition::Opened(until) => {
                let until = self.clock.wall_at(until);
                tracing::warn!(key = key.as_str(), %until, "circuit opened: calls fail fast");
                BreakerEvent::Opened { key, until, at }
            }
            Transition::HalfOpened => {
                tracing::info!(key = key.as_str(), "circuit half-open: probing");
                BreakerEvent::HalfOpened { key, at }
            }
            Transition::Closed => {
                tracing::info!(key = key.as_str(), "circuit closed: service healthy again");
                BreakerEvent::Closed { key, at }
            }
        };
        self.emit(&event);
    }

    pub(crate) fn emit(&self, event: &BreakerEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }
}

impl BreakerHandle {
    /// The state of `key`'s breaker, or `None` if no call to it was seen.
    pub fn state(&self, key: &str) -> Option<BreakerState> {
        let circuit = self.inner.circuits.load().get(key).cloned()?;
        Some(match circuit.raw_state() {
            RawState::Closed => BreakerState::Closed,
            RawState::Open(until) => {
                BreakerState::Open { until: self.inner.settings.clock.wall_at(until) }
            }
            RawState::HalfOpen => BreakerState::HalfOpen,
            RawState::ForcedClosed => BreakerState::ForcedClosed,
        })
    }

    /// Opens `key`'s breaker until `until` (for example the end of a maintenance window the
    /// service announced).
    pub fn force_open(&self, key: impl Into<ServiceKey>, until: Timestamp) {
        let circuit = self.inner.insert(key.into());
        let transition = circuit.force_open(self.inner.settings.clock.instant_at(until));
        self.inner.settings.announce(&circuit, transition);
    }

    /// Keeps `key`'s breaker closed, whatever its failures, until [`reset`](Self::reset).
    pub fn force_closed(&self, key: impl Into<ServiceKey>) {
        self.inner.insert(key.into()).force_closed();
    }

    /// Closes `key`'s breaker and forgets its history.
    pub fn reset(&self, key: &str) {
        if let Some(circuit) = self.inner.circuits.load().get(key) {
            circuit.reset();
        }
    }

    /// Asks the breaker of `key` whether one call may go through now, for code outside a tower
    /// stack (a `reqwest-middleware` adapter, a hand-written loop). Record the call's outcome
    /// with [`CallPermit::finish`]; dropping the permit unfinished gives a probe's slot back.
    ///
    /// # Errors
    ///
    /// [`BreakerOpen`] while the breaker is open (or its probes are all out).
    pub fn try_call(&self, key: impl Into<ServiceKey>) -> Result<CallPermit, BreakerOpen> {
        self.breaker(key).try_call()
    }

    /// The breaker of `key` (made on first use), to ask again without looking it up: a breaker
    /// is never replaced in its registry, so the one returned stays the live one.
    pub fn breaker(&self, key: impl Into<ServiceKey>) -> ServiceBreaker {
        ServiceBreaker { circuit: self.inner.circuit(&KeySource::Named(key.into())) }
    }

    /// The open breakers, sorted by key, for saving.
    pub fn snapshot(&self) -> Vec<BreakerSnapshot> {
        let clock = self.inner.settings.clock;
        let now = clock.now();
        let mut open: Vec<_> = self
            .inner
            .circuits
            .load()
            .values()
            .filter_map(|c| match c.raw_state() {
                RawState::Open(until) if until > now => {
                    Some(BreakerSnapshot { key: c.key.clone(), until: clock.wall_at(until) })
                }
                _ => None,
            })
            .collect();
        open.sort_by(|a, b| a.key.cmp(&b.key));
        open
    }

    /// Opens again the breakers of a snapshot whose time is not over; returns how many.
    pub fn restore(&self, snapshot: impl IntoIterator<Item = BreakerSnapshot>) -> usize {
        let now = self.inner.settings.clock.wall();
        snapshot
            .into_iter()
            .filter(|s| s.until > now)
            .map(|s| self.force_open(s.key, s.until))
            .count()
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("services", &self.inner.circuits.load().len())
            .field("config", &self.inner.settings.config)
            .finish_non_exhaustive()
    }
}
