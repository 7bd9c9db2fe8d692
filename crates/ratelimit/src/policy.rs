//! The rules of the layer: when a request may go, and what its answer teaches.
//!
//! Both are shared by the tower service and by [`Limiter`](crate::Limiter), the same rules for
//! code that sends requests another way (the `reqwest` adapter).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use unattended_core::clock::{add_saturating, duration_between};
use unattended_core::{Clock, HostPaused, KeySource, Random};

use crate::adaptive;
use crate::event::{EventHook, RateLimitEvent};
use crate::pacing::Pace;
use crate::pushback::Feedback;
use crate::registry::{Host, HostState, Pacing, PauseRegistry};
use crate::schedule::Ticket;

/// How often a request waiting in a paced line looks again, so a rate that grew while it waited
/// moves it up.
const RECHECK: Duration = Duration::from_millis(100);

/// The settings and state every service of one layer shares.
pub(crate) struct Policy<P> {
    pub(crate) pushback: P,
    pub(crate) clock: Clock,
    pub(crate) registry: PauseRegistry,
    pub(crate) hook: Option<EventHook>,
    pub(crate) max_wait: Duration,
    pub(crate) release_spread: Duration,
    pub(crate) min_pause: Duration,
    pub(crate) adaptive: bool,
    pub(crate) pace: Option<Pace>,
    pub(crate) rng: Random,
}

impl<P: Clone> Clone for Policy<P> {
    fn clone(&self) -> Self {
        Self {
            pushback: self.pushback.clone(),
            clock: self.clock,
            registry: self.registry.clone(),
            hook: self.hook.clone(),
            max_wait: self.max_wait,
            release_spread: self.release_spread,
            min_pause: self.min_pause,
            adaptive: self.adaptive,
            pace: self.pace,
            rng: self.rng.clone(),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for Policy<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("registry", &self.registry)
            .field("clock", &self.clock)
            .field("pushback", &self.pushback)
            .field("max_wait", &self.max_wait)
            .field("release_spread", &self.release_spread)
            .field("min_pause", &self.min_pause)
            .field("adaptive", &self.adaptive)
            .field("pace", &self.pace)
            .field("hook", &self.hook.as_ref().map(|_| "Fn(&RateLimitEvent)"))
            .finish_non_exhaustive()
    }
}

/// A request the pace let through: what its answer is reported with.
#[derive(Debug)]
pub(crate) struct Paced {
    pub(crate) host: Arc<Host>,
    /// When it was let through.
    pub(crate) sent: Instant,
    /// Whether it had to wait for its slot.
    pub(crate) waited: bool,
}

/// What to do with a request.
pub(crate) enum Admission {
    /// Send it now (reporting its answer to the pace, if it was paced).
    Send(Option<Paced>),
    /// Wait until `release`, then ask again with the same place in line.
    Hold(Waiting),
    /// Fail at once.
    Reject(HostPaused),
}

/// A request waiting for its host.
pub(crate) struct Waiting {
    pub(crate) release: Instant,
    pub(crate) place: Place,
}

/// A waiting request's place: its host, its ticket in a paced line, and the latest it may go.
pub(crate) struct Place {
    pub(crate) host: Arc<Host>,
    pub(crate) ticket: Option<Ticket>,
    pub(crate) deadline: Timestamp,
    /// It already waited for a pause's random release: it is not held for it again.
    pub(crate) spread: bool,
}

impl Place {
    /// Gives the ticket back (its request gave up).
    pub(crate) fn give_back(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let mut state = self.host.lock();
            if let Some(pace) = &mut state.pace {
                pace.schedule.give_back(ticket);
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Now, in both clocks.
#[derive(Clone, Copy)]
struct Now {
    wall: Timestamp,
    at: Instant,
}

impl<P> Policy<P> {
    fn now(&self) -> Now {
        Now { wall: self.clock.wall(), at: self.clock.now() }
    }

    pub(crate) fn emit(&self, event: &RateLimitEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }

    /// A draw in `[0, 1)` from the layer's generator (seeded, or the thread's).
    fn unit(&self) -> f64 {
        self.rng.unit()
    }

    /// Decides about a request for `key` when it arrives.
    pub(crate) fn admit(&self, key: &KeySource) -> Admission {
        let now = self.now();
        let host = match self.pace {
            Some(pace) => {
                let key = key.to_key();
                let adaptive = self.adaptive;
                let ((), host) = self.registry.update(&key, |state| {
                    if state.pace.is_none() {
                        state.pace = Some(Pacing::configured(pace, adaptive, now.at, now.wall));
                    }
                });
                Some(host)
            }
            None => key.with_str(|k| self.registry.host(k)),
        };
        let Some(host) = host else {
            return Admission::Send(None);
        };
        let deadline = add_saturating(now.wall, self.max_wait);
        let place = Place { host, ticket: None, deadline, spread: false };
        self.decide(key, place, now, false)
    }

    /// Decides again about a request that waited (at `place`).
    pub(crate) fn readmit(&self, key: &KeySource, place: Place) -> Admission {
        self.decide(key, place, self.now(), true)
    }

    fn decide(&self, key: &KeySource, mut place: Place, now: Now, again: bool) -> Admission {
        let host = place.host.clone();
        let mut state = host.lock();
        if state.gone() {
            // Dropped from the table since: nothing paused or paced it any more.
            return Admission::Send(None);
        }
        // The pause first: nothing goes before its end.
        if let Some(until) = state.pause {
            if until > now.wall {
                if until > place.deadline {
                    drop(state);
                    place.give_back();
                    return self.reject(key, until, now);
                }
                let end = self.clock.instant_at(until);
                let release = match &mut state.pace {
                    Some(pace) => {
                        // The line starts again at the end, a random part of an interval
                        // late, so that processes sharing a host do not start in step.
                        if pace.schedule.starts_before(now.at, end) {
                            let phase = pace.schedule.interval().mul_f64(self.unit());
                            pace.schedule.not_before(now.at, end + phase);
                        }
                        let ticket = match place.ticket {
                            Some(ticket) => ticket,
                            None => {
                                let (ticket, due) = pace.schedule.take(now.at);
                                place.ticket = Some(ticket);
                                if self.clock.wall_at(due) > place.deadline {
                                    let until = self.clock.wall_at(due);
                                    drop(state);
                                    place.give_back();
                                    return self.reject(key, until, now);
                                }
                                ticket
                            }
                        };
                        pace.schedule.due(ticket).max(end)
                    }
                    None => self.clock.instant_at(self.spread_release(until)),
                };
                place.spread = true;
                if !again {
                    tracing::debug!(key = %key.to_key(), %until, "holding a request until the pause ends");
                    self.emit(&RateLimitEvent::Held { key: key.to_key(), until, at: now.wall });
                }
                return Admission::Hold(Waiting { release, place });
            }
            // Over. Without a pace, late arrivals (a retry that waited for the server's time)
            // get the same spread as the requests that were held.
            let window_end = add_saturating(until, self.release_spread);
            if state.pace.is_none() && now.wall < window_end {
                if !place.spread {
                    place.spread = true;
                    let release = self.spread_release(until);
                    if release > now.wall {
                        return Admission::Hold(Waiting {
                            release: self.clock.instant_at(release),
                            place,
                        });
                    }
                }
            } else {
                state.pause = None;
                let key = key.to_key();
                tracing::info!(key = key.as_str(), "pause over");
                self.emit(&RateLimitEvent::PauseEnded { key, at: now.wall });
            }
        }
        let Some(pace) = &mut state.pace else {
            key.with_str(|k| self.registry.tidy(k, &host, &mut state));
            return Admission::Send(None);
        };
        if place.ticket.is_none() && pace.forgettable(now.at) {
            state.pace = None;
            key.with_str(|k| self.registry.tidy(k, &host, &mut state));
            return Admission::Send(None);
        }
        let due = match place.ticket {
            Some(ticket) => pace.schedule.due(ticket),
            None => pace.schedule.next_due(now.at),
        };
        if self.clock.wall_at(due) > place.deadline {
            let until = self.clock.wall_at(due);
            drop(state);
            place.give_back();
            return self.reject(key, until, now);
        }
        let due = match place.ticket {
            Some(_) => due,
            None => {
                let (ticket, due) = pace.schedule.take(now.at);
                place.ticket = Some(ticket);
                due
            }
        };
        if due <= now.at {
            let waited = again;
            if let Some(a) = &mut pace.adaptive {
                a.admitted(waited);
            }
            // The slot is used: nothing to give back.
            place.ticket = None;
            drop(state);
            return Admission::Send(Some(Paced { host: place.host.clone(), sent: now.at, waited }));
        }
        if let Some(a) = &mut pace.adaptive {
            a.admitted(true);
        }
        Admission::Hold(Waiting { release: due.min(now.at + RECHECK), place })
    }

    /// A random point of the release spread after `until`.
    fn spread_release(&self, until: Timestamp) -> Timestamp {
        add_saturating(until, self.release_spread.mul_f64(self.unit()))
    }

    fn reject(&self, key: &KeySource, until: Timestamp, now: Now) -> Admission {
        let key = key.to_key();
        tracing::info!(key = key.as_str(), %until, "host paused for longer than this request may wait");
        self.emit(&RateLimitEvent::Rejected { key: key.clone(), until, at: now.wall });
        Admission::Reject(HostPaused::new(key, until))
    }

    /// Learns from the answer to a request for `key` (`paced` if the pace let it through).
    /// `quota_rate` reads the rate the server's quota fields allow, asked only for paced hosts.
    pub(crate) fn learn(
        &self,
        key: &KeySource,
        paced: Option<&Paced>,
        feedback: Feedback,
        quota_rate: &dyn Fn() -> Option<f64>,
    ) {
        match feedback {
            Feedback::Neutral => {}
            Feedback::Accepted => {
                let Some(paced) = paced else { return };
                let now = self.now();
                let mut state = paced.host.lock();
                if state.gone() {
                    return;
                }
                let Some(pace) = &mut state.pace else { return };
                let Some(control) = &mut pace.adaptive else { return };
                let mut changed = control.accepted(now.at, Some(paced.waited));
                if let Some(limit) = quota_rate() {
                    changed |= control.server_rate(limit, ceiling(pace.ceiling));
                }
                if changed {
                    pace.respace(now.at);
                }
            }
            Feedback::Throttled(wait) => self.throttled(key, paced, wait, quota_rate),
        }
    }

    fn throttled(
        &self,
        key: &KeySource,
        paced: Option<&Paced>,
        wait: Option<unattended_core::ServerWait>,
        quota_rate: &dyn Fn() -> Option<f64>,
    ) {
        if !self.adaptive && wait.is_none() {
            return;
        }
        let now = self.now();
        let key = key.to_key();
        if wait.is_some() {
            self.registry.prune(now.wall);
        }
        let mut events = Vec::new();
        self.registry.update(&key, |state: &mut HostState| {
            let was_paced = state.pace.as_ref().is_some_and(|p| p.adaptive.is_some());
            if self.adaptive {
                let hint = quota_rate();
                let pace = state.pace.get_or_insert_with(|| {
                    let rate = hint.unwrap_or(adaptive::START_RATE);
                    Pacing::learned(rate, self.pace, now.at, now.wall)
                });
                let mut changed = !was_paced;
                if let Some(control) = &mut pace.adaptive {
                    if was_paced && control.throttled(now.at, paced.map(|p| p.sent)) {
                        pace.cut_at = now.at;
                        changed = true;
                    }
                    if let Some(limit) = hint {
                        changed |= control.server_rate(limit, ceiling(pace.ceiling));
                    }
                }
                if changed {
                    pace.respace(now.at);
                    pace.learned_at = now.wall;
                    let rate = pace.rate();
                    tracing::info!(
                        key = key.as_str(),
                        rate,
                        "host throttled; pacing every request to it"
                    );
                    events.push(RateLimitEvent::Paced { key: key.clone(), rate, at: now.wall });
                }
            }
            let Some(wait) = wait else { return };
            // A short wait on a host the layer paces: the pace was just cut for every caller,
            // and the refused request waits for the server's time on its own (the retry layer
            // does). Stopping every caller too would cost a whole wait per throttle.
            let paced_now = state.pace.as_ref().is_some_and(|p| p.adaptive.is_some());
            let short = duration_between(now.wall, wait.until) <= self.min_pause;
            if was_paced && paced_now && short {
                return;
            }
            if state.pause.is_some_and(|current| current >= wait.until) {
                return;
            }
            state.pause = Some(wait.until);
            if let Some(pace) = &mut state.pace {
                pace.schedule.not_before(now.at, self.clock.instant_at(wait.until));
            }
            tracing::warn!(
                key = key.as_str(),
                until = %wait.until,
                source = %wait.source,
                capped = wait.capped,
                "server pushed back; pausing every request to this host"
            );
            events.push(RateLimitEvent::PauseSet {
                key: key.clone(),
                until: wait.until,
                source: wait.source,
                at: now.wall,
            });
        });
        for event in &events {
            self.emit(event);
        }
    }
}

fn ceiling(pace: Option<Pace>) -> f64 {
    pace.map_or(adaptive::MAX_RATE, |p| p.rate())
}
