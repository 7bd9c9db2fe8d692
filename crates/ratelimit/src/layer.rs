//! The rate-limit layer.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_layer::Layer;
use unattended_core::{ByHost, Clock};

use crate::event::{EventHook, RateLimitEvent};
use crate::pacing::{Pace, Pacer};
use crate::pushback::HttpPushback;
use crate::registry::PauseRegistry;
use crate::service::{Learn, RateLimit, Shared};

/// Applies [`RateLimit`] to a service: one pause per host, shared by every caller.
///
/// ```
/// use std::time::Duration;
/// use unattended_ratelimit::RateLimitLayer;
///
/// let layer = RateLimitLayer::new()
///     .max_wait(Duration::from_secs(30))
///     .release_spread(Duration::from_millis(500));
/// let registry = layer.registry(); // to pause a host by hand, or save the pauses
/// # let _ = registry;
/// ```
pub struct RateLimitLayer<K = ByHost, P = HttpPushback> {
    shared: Shared<K, P>,
}

impl RateLimitLayer {
    /// How long a request may wait for a pause by default.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
    /// Over how long the waiters of a pause are released by default.
    pub const DEFAULT_RELEASE_SPREAD: Duration = Duration::from_secs(1);

    /// A layer for HTTP: keyed by scheme, host and port, reading the standard pushback fields;
    /// requests wait up to 60 s for a pause and are released over 1 s after it.
    pub fn new() -> Self {
        Self {
            shared: Shared {
                learn: Learn {
                    pushback: HttpPushback::new(),
                    clock: Clock::system(),
                    registry: PauseRegistry::new(),
                    hook: None,
                },
                key: ByHost,
                max_wait: Self::DEFAULT_MAX_WAIT,
                release_spread: Self::DEFAULT_RELEASE_SPREAD,
                rng: None,
                pacer: None,
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
    /// The longest a request waits for a pause to end; a longer pause fails it at once with
    /// [`HostPaused`](crate::HostPaused). Zero: never wait.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.shared.max_wait = max_wait;
        self
    }

    /// Requests held by a pause are released at random over this long after it ends, so they do
    /// not all hit the server in the same instant. Zero: all at once.
    #[must_use]
    pub fn release_spread(mut self, spread: Duration) -> Self {
        self.shared.release_spread = spread;
        self
    }

    /// Shares `registry` with this layer (for several layers, or pauses restored from disk).
    #[must_use]
    pub fn with_registry(mut self, registry: PauseRegistry) -> Self {
        self.shared.learn.registry = registry;
        self
    }

    /// The registry of pauses this layer reads and writes.
    pub fn registry(&self) -> PauseRegistry {
        self.shared.learn.registry
    }

    /// Reads time and sleeps on `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        // Pacing reads only the monotonic instant, which every clock shares: no need to rebuild it.
        self.shared.learn.clock = clock;
        self
    }

    /// Spaces the requests to each key by `pace`, before the server has to say anything (DEV,
    /// for one, allows one write per second). A request waits for its slot like it waits for a
    /// pause, and fails with [`HostPaused`](crate::HostPaused) if the slot is further away than
    /// [`max_wait`](Self::max_wait). Paced requests pay for a keyed lookup (and a key
    /// allocation) each.
    ///
    /// Every service made by this layer (and clones of the layer made after this call) shares
    /// one pacing state.
    #[must_use]
    pub fn pace(mut self, pace: Pace) -> Self {
        self.shared.pacer = Some(Arc::new(Pacer::new(pace, self.shared.learn.clock)));
        self
    }

    /// Draws the release spread from a generator seeded with `seed`.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.shared.rng = Some(Arc::new(Mutex::new(fastrand::Rng::with_seed(seed))));
        self
    }

    /// Calls `hook` for every [`RateLimitEvent`]. The hook runs inline: keep it quick.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&RateLimitEvent) + Send + Sync + 'static) -> Self {
        self.shared.learn.hook = Some(Arc::new(hook) as EventHook);
        self
    }

    /// Keys requests with `key` (any `Fn(&Req) -> Option<ServiceKey>` works).
    pub fn key<K2>(self, key: K2) -> RateLimitLayer<K2, P> {
        let s = self.shared;
        RateLimitLayer {
            shared: Shared {
                learn: s.learn,
                key,
                max_wait: s.max_wait,
                release_spread: s.release_spread,
                rng: s.rng,
                pacer: s.pacer,
            },
        }
    }

    /// Reads responses for pushback with `pushback` (any `Fn(&Res, &Clock) -> Option<ServerWait>`).
    pub fn pushback<P2>(self, pushback: P2) -> RateLimitLayer<K, P2> {
        let s = self.shared;
        let Learn { clock, registry, hook, .. } = s.learn;
        RateLimitLayer {
            shared: Shared {
                learn: Learn { pushback, clock, registry, hook },
                key: s.key,
                max_wait: s.max_wait,
                release_spread: s.release_spread,
                rng: s.rng,
                pacer: s.pacer,
            },
        }
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
