//! The circuit-breaker layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;
use unattended_core::{ByHost, Clock, HttpClassifier};

use crate::config::{BreakerConfig, BreakerConfigError};
use crate::event::{BreakerEvent, EventHook};
use crate::registry::{BreakerHandle, Registry};
use crate::service::{CircuitBreaker, Shared};

/// Applies [`CircuitBreaker`] to a service: one breaker per service key, shared by every clone.
///
/// Set the clock and the event hook before the first call: changing them starts a new set of
/// breakers.
pub struct CircuitBreakerLayer<K = ByHost, C = HttpClassifier> {
    shared: Arc<Shared<K, C>>,
    hook: Option<EventHook>,
}

impl CircuitBreakerLayer {
    /// A layer for HTTP with the given settings, keyed by scheme, host and port.
    ///
    /// # Errors
    ///
    /// [`BreakerConfigError`] names the first setting that cannot work.
    pub fn new(config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    /// A layer with [`BreakerConfig::standard`] settings.
    pub fn standard() -> Self {
        Self::from_valid(BreakerConfig::standard())
    }

    fn from_valid(config: BreakerConfig) -> Self {
        let registry = Arc::new(Registry::new(config, Clock::system(), None));
        Self { shared: Arc::new(Shared::new(registry, ByHost, HttpClassifier::new())), hook: None }
    }
}

impl<K: Clone, C: Clone> CircuitBreakerLayer<K, C> {
    fn rebuild<K2, C2>(
        &self,
        key: K2,
        classifier: C2,
        clock: Clock,
        hook: Option<EventHook>,
    ) -> CircuitBreakerLayer<K2, C2> {
        let config = self.shared.registry.settings.config.clone();
        let registry = Arc::new(Registry::new(config, clock, hook.clone()));
        CircuitBreakerLayer { shared: Arc::new(Shared::new(registry, key, classifier)), hook }
    }

    fn clock_now(&self) -> Clock {
        self.shared.registry.settings.clock
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn clock(self, clock: Clock) -> Self {
        self.rebuild(
            self.shared.key.clone(),
            self.shared.classifier.clone(),
            clock,
            self.hook.clone(),
        )
    }

    /// Calls `hook` for every [`BreakerEvent`]. The hook runs inline: keep it quick.
    #[must_use]
    pub fn on_event(self, hook: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        let hook: EventHook = Arc::new(hook);
        self.rebuild(
            self.shared.key.clone(),
            self.shared.classifier.clone(),
            self.clock_now(),
            Some(hook),
        )
    }

    /// Keys requests with `key` (any `Fn(&Req) -> Option<ServiceKey>` works).
    pub fn key<K2>(self, key: K2) -> CircuitBreakerLayer<K2, C> {
        self.rebuild(key, self.shared.classifier.clone(), self.clock_now(), self.hook.clone())
    }

    /// Decides what a failure is with `classifier` (for services that are not HTTP).
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<K, C2> {
        self.rebuild(self.shared.key.clone(), classifier, self.clock_now(), self.hook.clone())
    }

    /// The handle to read, force and save this layer's breakers.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle { inner: self.shared.registry.clone() }
    }
}

impl<K, C> Clone for CircuitBreakerLayer<K, C> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), hook: self.hook.clone() }
    }
}

impl<K, C> fmt::Debug for CircuitBreakerLayer<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handle = BreakerHandle { inner: self.shared.registry.clone() };
        f.debug_struct("CircuitBreakerLayer").field("handle", &handle).finish()
    }
}

impl<S, K, C> Layer<S> for CircuitBreakerLayer<K, C> {
    type Service = CircuitBreaker<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.shared.clone())
    }
}
