//! The gate service.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;
use tower_service::Service;
use unattended_core::clock::duration_between;
use unattended_core::{BoxError, Clock};

use crate::calendar::WindowCalendar;
use crate::class::ClassOf;
use crate::error::OutsideWindow;
use crate::future::ResponseFuture;

/// What the gate does with a request whose window is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenClosed {
    /// Fail at once with [`OutsideWindow`], whose disposition is "retry when it opens".
    Reject,
    /// Wait for the window to open, if it opens within `max`; otherwise fail as `Reject` does.
    Wait {
        /// The longest wait.
        max: Duration,
    },
}

/// One class's window, with the end of the open span it is in (so that most calls compare two
/// instants instead of consulting the calendar).
pub(crate) struct Rule {
    pub(crate) class: Box<str>,
    pub(crate) calendar: WindowCalendar,
    pub(crate) when_closed: WhenClosed,
    /// Nanoseconds since `Shared::origin` until which the window is known to be open.
    open_until: AtomicU64,
}

impl Rule {
    pub(crate) fn new(class: Box<str>, calendar: WindowCalendar, when_closed: WhenClosed) -> Self {
        Self { class, calendar, when_closed, open_until: AtomicU64::new(0) }
    }
}

pub(crate) struct Shared<K> {
    pub(crate) rules: Vec<Rule>,
    pub(crate) classes: K,
    pub(crate) clock: Clock,
    pub(crate) origin: Instant,
}

pub(crate) enum Decision {
    Pass,
    Hold(Timestamp),
    Reject(OutsideWindow),
}

impl<K> Shared<K> {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn decide(&self, class: &str) -> Decision {
        let Some(rule) = self.rules.iter().find(|rule| &*rule.class == class) else {
            return Decision::Pass;
        };
        let open_until = rule.open_until.load(Ordering::Acquire);
        // A window that never closes again needs no clock.
        if open_until == u64::MAX {
            return Decision::Pass;
        }
        let now = self.clock.now();
        if self.nanos(now) < open_until {
            return Decision::Pass;
        }
        let wall = self.clock.wall_at(now);
        if rule.calendar.is_open(wall) {
            let until = rule
                .calendar
                .next_close(wall)
                .map_or(u64::MAX, |close| self.nanos(self.clock.instant_at(close)));
            rule.open_until.store(until, Ordering::Release);
            return Decision::Pass;
        }
        let opens_at = rule.calendar.next_open(wall);
        match (rule.when_closed, opens_at) {
            (WhenClosed::Wait { max }, Some(at)) if duration_between(wall, at) <= max => {
                tracing::debug!(class, opens_at = %at, "holding a request until its window opens");
                Decision::Hold(at)
            }
            _ => {
                tracing::info!(class, opens_at = ?opens_at, "request outside its time window");
                Decision::Reject(OutsideWindow { class: class.to_owned(), opens_at })
            }
        }
    }
}

/// Lets requests through only while their action class's window is open.
///
/// Made by [`GateLayer`](crate::GateLayer). Its error type is [`BoxError`]: the inner service's
/// errors pass through, plus [`OutsideWindow`].
///
/// # Readiness
///
/// The class is in the request, so `poll_ready` is the inner service's and the decision is taken
/// in `call`. A held request takes the readied inner service into its future (a clone stays
/// behind), waits, polls it ready again and sends.
pub struct Gate<S, K> {
    inner: S,
    shared: Arc<Shared<K>>,
}

impl<S, K> Gate<S, K> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K>>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the layer, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K> Clone for Gate<S, K> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for Gate<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, K, Req> Service<Req> for Gate<S, K>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: ClassOf<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.shared.decide(self.shared.classes.class_of(&req)) {
            Decision::Pass => ResponseFuture::called(self.inner.call(req)),
            Decision::Reject(error) => ResponseFuture::rejected(error),
            Decision::Hold(opens_at) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let clock = self.shared.clock;
                ResponseFuture::held(inner, req, clock.sleep_until(clock.instant_at(opens_at)))
            }
        }
    }
}
