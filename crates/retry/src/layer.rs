//! The retry layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;
use unattended_core::{Clock, HttpClassifier, Random};

use crate::budget::RetryBudget;
use crate::config::{RetryConfig, RetryConfigError};
use crate::event::{EventHook, RetryEvent};
use crate::policy::Shared;
use crate::replay::HttpReplay;
use crate::service::Retry;

/// Applies [`Retry`] to a service.
///
/// Built from a checked [`RetryConfig`]; the classifier (what counts as a failure), the replay
/// rules (which requests may be sent again), the clock and the event hook can then be swapped.
/// Every service the layer makes shares one retry budget and one jitter source.
pub struct RetryLayer<C = HttpClassifier, P = HttpReplay> {
    shared: Arc<Shared<C, P>>,
}

impl RetryLayer {
    /// A layer with the given settings, for HTTP services.
    ///
    /// # Errors
    ///
    /// [`RetryConfigError`] names the first setting that cannot work.
    pub fn new(config: RetryConfig) -> Result<Self, RetryConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    /// A layer with [`RetryConfig::standard`] settings.
    pub fn standard() -> Self {
        Self::from_valid(RetryConfig::standard())
    }

    fn from_valid(config: RetryConfig) -> Self {
        let clock = Clock::system();
        Self {
            shared: Arc::new(Shared {
                schedule: config.schedule(),
                budget: config.budget.map(|b| Arc::new(RetryBudget::new(b))),
                rng: Random::from_seed(config.seed),
                hook: None,
                classifier: HttpClassifier::new(),
                replay: HttpReplay,
                clock,
                config,
            }),
        }
    }
}

impl<C: Clone, P: Clone> RetryLayer<C, P> {
    fn rebuild<C2, P2>(
        &self,
        classifier: C2,
        replay: P2,
        clock: Clock,
        hook: Option<EventHook>,
    ) -> RetryLayer<C2, P2> {
        let s = &*self.shared;
        RetryLayer {
            shared: Arc::new(Shared {
                config: s.config.clone(),
                schedule: s.schedule,
                budget: s.budget.clone(),
                rng: s.rng.clone(),
                hook,
                classifier,
                replay,
                clock,
            }),
        }
    }

    /// Decides what counts as a failure with `classifier` (for services that are not HTTP, or
    /// HTTP with other rules).
    pub fn classifier<C2>(self, classifier: C2) -> RetryLayer<C2, P> {
        let s = &*self.shared;
        self.rebuild(classifier, s.replay.clone(), s.clock, s.hook.clone())
    }

    /// Decides which requests may be sent again, and how to copy them, with `replay`
    /// ([`CloneReplay`](crate::CloneReplay) for plain `Clone` requests).
    pub fn replay<P2>(self, replay: P2) -> RetryLayer<C, P2> {
        let s = &*self.shared;
        self.rebuild(s.classifier.clone(), replay, s.clock, s.hook.clone())
    }

    /// Reads time and sleeps on `clock`.
    #[must_use]
    pub fn clock(self, clock: Clock) -> Self {
        let s = &*self.shared;
        self.rebuild(s.classifier.clone(), s.replay.clone(), clock, s.hook.clone())
    }

    /// Calls `hook` for every [`RetryEvent`]. The hook runs inline: keep it quick.
    #[must_use]
    pub fn on_event(self, hook: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        let s = &*self.shared;
        self.rebuild(s.classifier.clone(), s.replay.clone(), s.clock, Some(Arc::new(hook)))
    }

    /// The layer's settings.
    pub fn config(&self) -> &RetryConfig {
        &self.shared.config
    }

    /// Retries the shared budget holds right now, or `None` without a budget.
    pub fn budget_remaining(&self) -> Option<u64> {
        self.shared.budget.as_ref().map(|b| b.remaining())
    }
}

impl<C, P> Clone for RetryLayer<C, P> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for RetryLayer<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer").field("shared", &self.shared).finish()
    }
}

impl<S, C, P> Layer<S> for RetryLayer<C, P> {
    type Service = Retry<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(inner, self.shared.clone())
    }
}
