//! The retry decision, as a `tower::retry::Policy`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Sleep;
use unattended_core::{BoxError, Classifier, Clock, FailureClass, ServiceKey};

use crate::attempt::{Attempt, AttemptMeta};
use crate::budget::RetryBudget;
use crate::config::RetryConfig;
use crate::decision::RetryState;
use crate::error::GaveUp;
use crate::event::{EventHook, RetryEvent};
use crate::replay::Replay;
use crate::schedule::BackoffSchedule;

/// What every clone of a layer shares: settings, budget, jitter source, hook.
pub(crate) struct Shared<C, P> {
    pub(crate) config: RetryConfig,
    pub(crate) schedule: BackoffSchedule,
    pub(crate) budget: Option<Arc<RetryBudget>>,
    pub(crate) rng: Arc<JitterRng>,
    pub(crate) hook: Option<EventHook>,
    pub(crate) classifier: C,
    pub(crate) replay: P,
    pub(crate) clock: Clock,
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for Shared<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("budget", &self.budget)
            .field("hook", &self.hook.as_ref().map(|_| "Fn(&RetryEvent)"))
            .field("classifier", &self.classifier)
            .field("replay", &self.replay)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Where jitter comes from: the thread's generator, or one seeded generator shared by every
/// clone (so a seeded run draws one reproducible sequence, and concurrent requests still draw
/// different values).
#[derive(Debug)]
pub(crate) enum JitterRng {
    Thread,
    Seeded(Mutex<fastrand::Rng>),
}

impl JitterRng {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        match seed {
            Some(seed) => Self::Seeded(Mutex::new(fastrand::Rng::with_seed(seed))),
            None => Self::Thread,
        }
    }

    fn unit(&self) -> f64 {
        match self {
            Self::Thread => fastrand::f64(),
            Self::Seeded(rng) => rng.lock().unwrap_or_else(PoisonError::into_inner).f64(),
        }
    }
}

/// The retry decision behind [`Retry`](crate::Retry), as a `tower::retry::Policy`.
///
/// It holds only a pointer to the layer's shared state; the per-request state (attempts made,
/// start time, last delay) travels with the [`Attempt`].
#[derive(Debug)]
pub struct RetryPolicy<C, P> {
    pub(crate) shared: Arc<Shared<C, P>>,
}

impl<C, P> Clone for RetryPolicy<C, P> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<C, P> RetryPolicy<C, P> {
    /// The token layer inside refused to guess and renewed the credential: send the copy once
    /// more, at once. A 401 proves the server did nothing, so idempotency does not matter, and no
    /// budget is spent (the server is not failing). Only once per request: a second renewal is
    /// passed through as it is.
    fn send_with_renewed_credential<Req>(
        &self,
        req: &mut Attempt<Req>,
        key: Option<ServiceKey>,
        class: FailureClass,
    ) -> Sleep {
        let shared = &*self.shared;
        let attempt = req.meta.attempts;
        tracing::debug!(
            key = key.as_ref().map(ServiceKey::as_str),
            attempt,
            "sending again with a renewed credential"
        );
        self.emit(&RetryEvent::Retrying {
            key,
            attempt,
            delay: Duration::ZERO,
            reason: class,
            at: shared.clock.wall(),
        });
        req.meta.renewed = true;
        req.meta.attempts += 1;
        shared.clock.sleep(Duration::ZERO)
    }

    fn emit(&self, event: &RetryEvent) {
        if let Some(hook) = &self.shared.hook {
            hook(event);
        }
    }
}

impl<C, P, Req, Res> tower::retry::Policy<Attempt<Req>, Res, BoxError> for RetryPolicy<C, P>
where
    C: Classifier<Res>,
    P: Replay<Req>,
{
    type Future = Sleep;

    fn retry(
        &mut self,
        req: &mut Attempt<Req>,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Sleep> {
        let shared = &*self.shared;
        let class = match result {
            Ok(response) => shared.classifier.classify_response(response, &shared.clock).err()?,
            Err(error) => shared.classifier.classify_error(&**error, &shared.clock),
        };
        if class == FailureClass::CredentialRenewed {
            if req.meta.renewed || req.req.is_none() {
                return None;
            }
            let key = req.req.as_ref().and_then(|r| shared.replay.key(r));
            return Some(self.send_with_renewed_credential(req, key, class));
        }
        if !class.is_retryable() {
            return None;
        }
        let wall = shared.clock.wall();
        let key =
            || req.meta.key.clone().or_else(|| req.req.as_ref().and_then(|r| shared.replay.key(r)));
        let state = RetryState {
            attempts: req.meta.attempts,
            previous: req.meta.previous,
            started: req.meta.started,
            idempotent: req.meta.idempotent,
            replayable: req.req.is_some(),
        };
        let budget = shared.budget.as_deref();
        match shared.config.decide(&state, &class, budget, &shared.clock, shared.rng.unit()) {
            Ok(delay) => {
                let key = key();
                let attempt = req.meta.attempts;
                tracing::warn!(
                    key = key.as_ref().map(ServiceKey::as_str),
                    attempt,
                    delay = ?delay,
                    reason = %class,
                    "retrying after a failed attempt"
                );
                self.emit(&RetryEvent::Retrying { key, attempt, delay, reason: class, at: wall });
                req.meta.attempts += 1;
                req.meta.previous = delay;
                Some(shared.clock.sleep(delay))
            }
            Err((reason, retry_at)) => {
                let key = key();
                let attempts = req.meta.attempts;
                tracing::info!(
                    key = key.as_ref().map(ServiceKey::as_str),
                    attempts,
                    %reason,
                    last = %class,
                    %retry_at,
                    "gave up retrying"
                );
                self.emit(&RetryEvent::GaveUp {
                    key: key.clone(),
                    attempts,
                    reason,
                    last: class,
                    retry_at,
                    at: wall,
                });
                let gave_up = GaveUp { attempts, reason, last: class, retry_at, key, source: None };
                let previous = std::mem::replace(result, Err(Box::new(gave_up)));
                if let (Err(source), Err(current)) = (previous, result)
                    && let Some(gave_up) = current.downcast_mut::<GaveUp>()
                {
                    gave_up.source = Some(source);
                }
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Attempt<Req>) -> Option<Attempt<Req>> {
        let shared = &*self.shared;
        let original = req.req.as_ref()?;
        let copy = shared.replay.replay(original);
        let key = match copy {
            Some(_) => req.meta.key.clone(),
            // Keep what errors need to name the service.
            None => req.meta.key.clone().or_else(|| shared.replay.key(original)),
        };
        Some(Attempt { req: copy, meta: AttemptMeta { key, ..req.meta.clone() } })
    }
}
