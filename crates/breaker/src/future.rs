//! The breaker's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use unattended_core::{BoxError, BreakerOpen, Classifier, FailureClass, TransientCause};

use crate::circuit::{Circuit, Permit};
use crate::window::Outcome;

pin_project! {
    /// The future of [`CircuitBreaker`](crate::CircuitBreaker).
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F>,
        tracker: Option<Tracker<C>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Rejected { error: Option<BreakerOpen> },
    }
}

/// The permit of one call: records its outcome, or gives a probe's slot back if the call is
/// dropped unanswered.
pub(crate) struct Tracker<C> {
    circuit: Arc<Circuit>,
    permit: Permit,
    started: Option<Instant>,
    classifier: C,
    done: bool,
}

impl<C> Tracker<C> {
    pub(crate) fn new(
        circuit: Arc<Circuit>,
        permit: Permit,
        started: Option<Instant>,
        classifier: C,
    ) -> Self {
        Self { circuit, permit, started, classifier, done: false }
    }

    fn finish<T>(&mut self, result: &Result<T, BoxError>)
    where
        C: Classifier<T>,
    {
        let clock = &self.circuit.settings.clock;
        let class = match result {
            Ok(response) => self.classifier.classify_response(response, clock).err(),
            Err(error) => Some(self.classifier.classify_error(&**error, clock)),
        };
        self.record(class.as_ref());
    }

    /// Records the outcome of the call, classified.
    pub(crate) fn record(&mut self, class: Option<&FailureClass>) {
        self.done = true;
        let settings = &*self.circuit.settings;
        let clock = &settings.clock;
        let failed = class.is_some_and(counts_against_health);
        let probing = matches!(self.permit, Permit::Probe { .. });
        let now = (failed || probing || settings.needs_clock).then(|| clock.now());
        let slow = match (self.started, now, settings.config.slow_call) {
            (Some(started), Some(now), Some(threshold)) => now - started >= threshold,
            _ => false,
        };
        if !failed && !slow && !probing && !settings.needs_clock && self.circuit.is_closed() {
            // Count and consecutive windows record a success without the time.
            self.circuit.record_success();
            return;
        }
        let now = now.unwrap_or_else(|| clock.now());
        let outcome = Outcome { failed, slow };
        if let Some(transition) =
            self.circuit.complete(self.permit, outcome, now, &settings.config, settings.unit())
        {
            settings.announce(&self.circuit, transition);
        }
    }
}

/// Only what says the service is unwell counts: not a 404 or a 401, and not a 429 with or without
/// `Retry-After` (a throttled host is alive; the classifier calls a bare 429 transient so that it
/// is retried).
fn counts_against_health(class: &FailureClass) -> bool {
    match class {
        FailureClass::Transient(TransientCause::Status(status)) => {
            *status != StatusCode::TOO_MANY_REQUESTS
        }
        FailureClass::Transient(_) => true,
        _ => false,
    }
}

impl<C> Drop for Tracker<C> {
    fn drop(&mut self) {
        if !self.done {
            self.circuit.abandon(self.permit);
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, tracker: Option<Tracker<C>>) -> Self {
        Self { state: State::Called { future }, tracker }
    }

    pub(crate) fn rejected(error: BreakerOpen) -> Self {
        Self { state: State::Rejected { error: Some(error) }, tracker: None }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classifier<T>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Called { future } => {
                let result = ready!(future.poll(cx)).map_err(Into::into);
                if let Some(tracker) = this.tracker.as_mut() {
                    tracker.finish(&result);
                }
                Poll::Ready(result)
            }
            StateProj::Rejected { error } => Poll::Ready(Err(error.take().map_or_else(
                || BoxError::from("breaker future polled after completion"),
                BoxError::from,
            ))),
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
