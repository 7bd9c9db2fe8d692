//! The rate-limit layer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;
use unattended_core::{ByHost, Clock, Random};

use crate::event::{EventHook, RateLimitEvent};
use crate::limiter::Limiter;
use crate::pacing::Pace;
use crate::policy::Policy;
use crate::pushback::HttpPushback;
use crate::registry::PauseRegistry;
use crate::service::{RateLimit, Shared};

/// Applies [`RateLimit`] to a service: one pause and one pace per host, shared by every caller.
///
/// ```
/// use std::time::Duration;
/// use unattended_ratelimit::{Pace, RateLimitLayer};
///
/// let layer = RateLimitLayer::new()
///     .max_wait(Duration::from_secs(30))
///     .pace(Pace::per_second(50)?.with_burst(10)?); // the host's documented limit
/// let registry = layer.registry(); // to pause a host by hand, or save the pauses
/// # let _ = registry;
/// # Ok::<(), unattended_ratelimit::PaceError>(())
/// ```
pub struct RateLimitLayer<K = ByHost, P = HttpPushback> {
    shared: Shared<K, P>,
}

impl RateLimitLayer {
    /// How long a request may wait for a pause (or its slot) by default.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
    /// Over how long the waiters of a pause on a host that is not paced are released by default.
    pub const DEFAULT_RELEASE_SPREAD: Duration = Duration::from_secs(1);
    /// The shortest server wait that pauses a host the layer paces, by default.
    pub const DEFAULT_MIN_PAUSE: Duration = Duration::from_secs(2);

    /// A layer for HTTP: keyed by scheme, host and port, reading the standard pushback fields,
    /// learning the rate of each host that throttles; requests wait up to 60 s.
    pub fn new() -> Self {
        Self {
            shared: Shared {
                policy: Policy {
                    pushback: HttpPushback::new(),
                    clock: Clock::system(),
                    registry: PauseRegistry::new(),
                    hook: None,
                    max_wait: Self::DEFAULT_MAX_WAIT,
                    release_spread: Self::DEFAULT_RELEASE_SPREAD,
                    min_pause: Self::DEFAULT_MIN_PAUSE,
                    adaptive: true,
                    pace: None,
                    rng: Random::system(),
                },
                key: ByHost,
            },
        }
    }
}

impl Default for RateLimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, P> RateLimitLayer<K, P> {
    /// The longest a request waits for a pause to end (or for its slot in a paced line); a
    /// longer wait fails it at once with [`HostPaused`](crate::HostPaused). Zero: never wait.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.shared.policy.max_wait = max_wait;
        self
    }

    /// Requests held by a pause on a host that is not paced are released at random over this
    /// long after it ends, and so are those that arrive within it (a retry that waited for the
    /// server's time), so they do not all hit the server in the same instant. Zero: all at
    /// once. A paced host releases its line at its pace instead.
    #[must_use]
    pub fn release_spread(mut self, spread: Duration) -> Self {
        self.shared.policy.release_spread = spread;
        self
    }

    /// Learns the rate of each host that throttles (on by default): see the crate docs. Off,
    /// only a configured [`pace`](Self::pace) spaces requests, and every server wait pauses the
    /// host.
    #[must_use]
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.shared.policy.adaptive = adaptive;
        self
    }

    /// On a host the layer paces adaptively, a server wait up to this long (2 s by default)
    /// does not pause every caller: the throttle cuts the pace for all of them, and the refused
    /// request waits for the server's time on its own (a retry layer outside holds it back).
    /// Longer waits pause the host. [`Duration::ZERO`]: every wait pauses it.
    #[must_use]
    pub fn min_pause(mut self, min_pause: Duration) -> Self {
        self.shared.policy.min_pause = min_pause;
        self
    }

    /// Shares `registry` with this layer (for several layers, or pauses restored from disk).
    #[must_use]
    pub fn with_registry(mut self, registry: PauseRegistry) -> Self {
        self.shared.policy.registry = registry;
        self
    }

    /// The registry of pauses and paces this layer reads and writes.
    pub fn registry(&self) -> PauseRegistry {
        self.shared.policy.registry.clone()
    }

    /// Reads time and sleeps on `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.shared.policy.clock = clock;
        self
    }

    /// Spaces the requests to each key by `pace` from the first one, before the server has to
    /// say anything (DEV, for one, allows one write per second). A request waits for its slot
    /// like it waits for a pause, first come first served, and fails with
    /// [`HostPaused`](crate::HostPaused) if the slot is further away than
    /// [`max_wait`](Self::max_wait). With [`adaptive`](Self::adaptive) on, a throttle still cuts
    /// the rate, which then climbs back to at most `pace`. Paced requests pay for a keyed
    /// lookup (and a key allocation) each.
    #[must_use]
    pub fn pace(mut self, pace: Pace) -> Self {
        self.shared.policy.pace = Some(pace);
        self
    }

    /// Draws the release spread and the start of a line after a pause from a generator seeded
    /// with `seed`.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.shared.policy.rng = Random::seeded(seed);
        self
    }

    /// Calls `hook` for every [`RateLimitEvent`]. The hook runs inline: keep it quick.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&RateLimitEvent) + Send + Sync + 'static) -> Self {
        self.shared.policy.hook = Some(Arc::new(hook) as EventHook);
        self
    }

    /// Keys requests with `key` (any `Fn(&Req) -> Option<ServiceKey>` works).
    pub fn key<K2>(self, key: K2) -> RateLimitLayer<K2, P> {
        RateLimitLayer { shared: Shared { policy: self.shared.policy, key } }
    }

    /// Reads responses for pushback with `pushback` (any `Fn(&Res, &Clock) -> Option<ServerWait>`).
    pub fn pushback<P2>(self, pushback: P2) -> RateLimitLayer<K, P2> {
        let p = self.shared.policy;
        RateLimitLayer {
            shared: Shared {
                policy: Policy {
                    pushback,
                    clock: p.clock,
                    registry: p.registry,
                    hook: p.hook,
                    max_wait: p.max_wait,
                    release_spread: p.release_spread,
                    min_pause: p.min_pause,
                    adaptive: p.adaptive,
                    pace: p.pace,
                    rng: p.rng,
                },
                key: self.shared.key,
            },
        }
    }
}

impl<K> RateLimitLayer<K, HttpPushback> {
    /// The same rules, registry and settings for code that sends requests another way: see
    /// [`Limiter`].
    pub fn limiter(&self) -> Limiter {
        Limiter::new(self.shared.policy.clone())
    }
}

impl<K: Clone, P: Clone> Clone for RateLimitLayer<K, P> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<K: fmt::Debug, P: fmt::Debug> fmt::Debug for RateLimitLayer<K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("shared", &self.shared).finish()
    }
}

impl<S, K: Clone, P: Clone> Layer<S> for RateLimitLayer<K, P> {
    type Service = RateLimit<S, K, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::new(self.shared.clone()))
    }
}
