//! The layer's rules for code that is not a tower stack (the `reqwest` adapter, a loop of one's
//! own): wait for a host, then report its answer.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use unattended_core::{HostPaused, KeySource, ServiceKey};

use crate::policy::{Admission, Paced, Policy};
use crate::pushback::HttpPushback;
use crate::registry::PauseRegistry;

/// The rate-limit layer's decisions, for requests sent another way.
///
/// Made by [`RateLimitLayer::limiter`](crate::RateLimitLayer::limiter) with the layer's
/// settings and registry, so both paths share each host's pause and pace:
/// [`acquire`](Self::acquire) waits for the host as a request through the layer would (or fails
/// with [`HostPaused`]), and [`record`](Self::record) teaches the host's answer.
///
/// ```
/// # use std::time::Duration;
/// use http::{HeaderMap, StatusCode};
/// use unattended_core::ServiceKey;
/// use unattended_ratelimit::RateLimitLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), unattended_core::HostPaused> {
/// let limiter = RateLimitLayer::new().limiter();
/// let key = ServiceKey::new("https://api.example.com:443");
/// let permit = limiter.acquire(&key).await?;
/// // ... send the request, then:
/// limiter.record(permit, StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new());
/// assert!(limiter.registry().pace_of(key.as_str()).is_some(), "paced after its first 429");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Limiter {
    policy: Arc<Policy<HttpPushback>>,
}

/// A request [`Limiter::acquire`] let through; give it back to [`Limiter::record`] with the
/// answer.
#[derive(Debug)]
pub struct Permit {
    key: KeySource,
    paced: Option<Paced>,
}

impl Limiter {
    pub(crate) fn new(policy: Policy<HttpPushback>) -> Self {
        Self { policy: Arc::new(policy) }
    }

    /// The registry of pauses and paces.
    pub fn registry(&self) -> &PauseRegistry {
        &self.policy.registry
    }

    /// Uses `registry` instead (to share a client's pauses and paces).
    #[must_use]
    pub fn with_registry(self, registry: PauseRegistry) -> Self {
        let mut policy = (*self.policy).clone();
        policy.registry = registry;
        Self::new(policy)
    }

    /// Waits until a request to `key` may go, on the layer's clock.
    ///
    /// # Errors
    ///
    /// [`HostPaused`] when the host's pause, or the request's slot in its paced line, is
    /// further away than the layer's `max_wait`.
    pub async fn acquire(&self, key: &ServiceKey) -> Result<Permit, HostPaused> {
        let key = KeySource::Named(key.clone());
        let policy = &self.policy;
        let mut admission = if policy.pace.is_none() && policy.registry.is_quiet() {
            Admission::Send(None)
        } else {
            policy.admit(&key)
        };
        loop {
            match admission {
                Admission::Send(paced) => return Ok(Permit { key, paced }),
                Admission::Reject(paused) => return Err(paused),
                Admission::Hold(waiting) => {
                    // Boxed: holding is rare, and every caller's future would carry it inline.
                    Box::pin(policy.clock.sleep_until(waiting.release)).await;
                    admission = policy.readmit(&key, waiting.place);
                }
            }
        }
    }

    /// Learns from the answer to the request `permit` let through.
    pub fn record(&self, permit: Permit, status: StatusCode, headers: &HeaderMap) {
        let Permit { key, paced } = permit;
        let policy = &self.policy;
        // The layer's reading of an answer, from its parts.
        let feedback = policy.pushback.read(status, headers, &policy.clock);
        let quota = || policy.pushback.rate_at(headers, || policy.clock.wall());
        policy.learn(&key, paced.as_ref(), feedback, &quota);
    }
}
