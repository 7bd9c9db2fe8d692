//! The gate layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;
use unattended_core::Clock;

use crate::calendar::WindowCalendar;
use crate::class::ByMethod;
use crate::keeper::Gatekeeper;
use crate::service::{Gate, Rule, Shared, WhenClosed};

/// Applies [`Gate`] to a service: each action class gets a [`WindowCalendar`] and a behaviour
/// when closed; classes without a rule are always let through.
///
/// ```
/// use std::time::Duration;
/// use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
///
/// let hours = WindowCalendar::new("America/Los_Angeles", &["mon-fri 09:00-22:00"], &[])?;
/// let gate = GateLayer::new()
///     .class("write", hours.clone(), WhenClosed::Reject) // writes only in business hours
///     .class("publish", hours, WhenClosed::Wait { max: Duration::from_secs(3600) });
/// # Ok::<(), unattended_gate::CalendarError>(())
/// ```
#[derive(Clone)]
pub struct GateLayer<K = ByMethod> {
    rules: Vec<(Box<str>, WindowCalendar, WhenClosed)>,
    classes: K,
    clock: Clock,
}

impl GateLayer {
    /// A gate for HTTP with no rules yet: classes by [`ByMethod`] (`read`, `write`, or the
    /// request's [`ActionClass`](crate::ActionClass)).
    pub fn new() -> Self {
        Self { rules: Vec::new(), classes: ByMethod, clock: Clock::system() }
    }
}

impl Default for GateLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> GateLayer<K> {
    /// Lets requests of `class` through only while `calendar` is open, doing `when_closed`
    /// otherwise. A later rule for the same class replaces the earlier one.
    #[must_use]
    pub fn class(mut self, class: &str, calendar: WindowCalendar, when_closed: WhenClosed) -> Self {
        self.rules.retain(|(c, _, _)| &**c != class);
        self.rules.push((class.into(), calendar, when_closed));
        self
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Picks classes with `classes` (any `Fn(&Req) -> &'static str` works).
    pub fn classes<K2>(self, classes: K2) -> GateLayer<K2> {
        GateLayer { rules: self.rules, classes, clock: self.clock }
    }

    /// The same rules, for requests that do not go through a tower stack.
    pub fn gatekeeper(&self) -> Gatekeeper {
        Gatekeeper::new(Arc::new(self.shared(())))
    }

    /// What the services of one layer (or one [`Gatekeeper`]) share.
    fn shared<K2>(&self, classes: K2) -> Shared<K2> {
        let rules = self
            .rules
            .iter()
            .map(|(class, calendar, when)| Rule::new(class.clone(), calendar.clone(), *when))
            .collect();
        Shared { rules, classes, clock: self.clock, origin: self.clock.now() }
    }
}

impl<K> fmt::Debug for GateLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateLayer").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl<S, K: Clone> Layer<S> for GateLayer<K> {
    type Service = Gate<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate::new(inner, Arc::new(self.shared(self.classes.clone())))
    }
}
