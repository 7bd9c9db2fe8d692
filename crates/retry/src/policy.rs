//! What every clone of a layer shares, and the rule applied after each attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use unattended_core::{BoxError, Classifier, Clock, FailureClass, Random, ServiceKey};

use crate::attempt::AttemptMeta;
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
    pub(crate) rng: Random,
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

impl<C, P> Shared<C, P> {
    /// A copy of `req` to send next time. If none can be made, `key` is filled in from `req`, so
    /// errors still name the service.
    pub(crate) fn keep_copy<Req>(&self, req: &Req, key: &mut Option<ServiceKey>) -> Option<Req>
    where
        P: Replay<Req>,
    {
        let copy = self.replay.replay(req);
        if copy.is_none() && key.is_none() {
            *key = self.replay.key(req);
        }
        copy
    }

    /// The rule applied after each attempt: `Some(delay)` to send the request again after
    /// `delay` (`meta` counts the new attempt), or `None` to finish with `result`, which is then
    /// replaced by a [`GaveUp`] if the failure might have passed with more tries. `copy` is the
    /// request kept for the next attempt.
    pub(crate) fn after_attempt<Req, Res>(
        &self,
        meta: &mut AttemptMeta,
        copy: Option<&Req>,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Duration>
    where
        C: Classifier<Res>,
        P: Replay<Req>,
    {
        let class = match result {
            Ok(response) => match self.classifier.classify_response(response, &self.clock) {
                Ok(()) => {
                    // Successes pay for the retries of the requests that fail.
                    if let Some(budget) = &self.budget {
                        budget.record_success();
                    }
                    return None;
                }
                Err(class) => class,
            },
            Err(error) => self.classifier.classify_error(&**error, &self.clock),
        };
        let key = || meta.key.clone().or_else(|| copy.and_then(|r| self.replay.key(r)));
        if class == FailureClass::CredentialRenewed {
            if meta.renewed || copy.is_none() {
                return None;
            }
            self.send_with_renewed_credential(meta, key(), class);
            return Some(Duration::ZERO);
        }
        if !class.is_retryable() {
            return None;
        }
        let wall = self.clock.wall();
        let state = RetryState {
            attempts: meta.attempts,
            previous: meta.previous,
            started: meta.started,
            idempotent: meta.idempotent,
            replayable: copy.is_some(),
        };
        let budget = self.budget.as_deref();
        match self.config.decide(&state, &class, budget, &self.clock, &self.rng) {
            Ok(delay) => {
                let key = key();
                let attempt = meta.attempts;
                tracing::warn!(
                    key = key.as_ref().map(ServiceKey::as_str),
                    attempt,
                    delay = ?delay,
                    reason = %class,
                    "retrying after a failed attempt"
                );
                self.emit(&RetryEvent::Retrying { key, attempt, delay, reason: class, at: wall });
                meta.attempts += 1;
                meta.previous = delay;
                Some(delay)
            }
            Err((reason, retry_at)) => {
                let key = key();
                let attempts = meta.attempts;
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

    /// The token layer inside refused to guess and renewed the credential: the copy goes once
    /// more, at once. A 401 proves the server did nothing, so idempotency does not matter, and no
    /// budget is spent (the server is not failing). Only once per request: a second renewal is
    /// passed through as it is.
    fn send_with_renewed_credential(
        &self,
        meta: &mut AttemptMeta,
        key: Option<ServiceKey>,
        class: FailureClass,
    ) {
        let attempt = meta.attempts;
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
            at: self.clock.wall(),
        });
        meta.renewed = true;
        meta.attempts += 1;
    }

    fn emit(&self, event: &RetryEvent) {
        if let Some(hook) = &self.hook {
            hook(event);
        }
    }
}
