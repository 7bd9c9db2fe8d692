//! A config's settings made into the layers' settings, as both the client and the reqwest
//! adapter use them.

use unattended_breaker::{BreakerConfig, FailurePolicy, OpenDuration};
use unattended_core::Clock;
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_ratelimit::{Pace, PauseRegistry, RateLimitLayer};
use unattended_retry::{BudgetConfig, RetryConfig};

use crate::config::{ConfigError, ServiceConfig, Timeouts};

/// Refuses a zero timeout: it would fail every connection, attempt or call at once.
pub(crate) fn check_timeouts(t: &Timeouts) -> Result<(), ConfigError> {
    for (field, value) in [
        ("timeouts.connect", t.connect),
        ("timeouts.attempt", t.attempt),
        ("timeouts.overall", t.overall),
    ] {
        if value.is_zero() {
            return Err(ConfigError::invalid(field, "must be more than zero"));
        }
    }
    Ok(())
}

/// The retry settings of `c`, as both the client and the reqwest adapter use them.
pub(crate) fn retry_config(
    c: &ServiceConfig,
    seed: Option<u64>,
    choices: &RateLimitChoices,
) -> Result<RetryConfig, ConfigError> {
    // Hosts that throttle are paced (learned or configured): their retries wait for the pace,
    // so they need not draw on the budget.
    let paced = choices.adaptive.unwrap_or(c.ratelimit.adaptive)
        || choices.pace.is_some()
        || c.ratelimit.configured_pace()?.is_some();
    Ok(RetryConfig::standard()
        .max_attempts(c.retry.max_attempts)
        .backoff(c.retry.base_delay, 2.0, c.retry.max_delay)
        .max_server_wait(c.retry.max_server_wait)
        // Callers sent back at the server's instant get the spread held callers get.
        .pushback_spread(c.ratelimit.checked_release_spread()?)
        .deadline(Some(c.timeouts.overall))
        // The attempt timeout sits next to the transport, so waiting out a pause is not
        // counted against it.
        .attempt_timeout(None)
        .budget(c.retry.budget.then(BudgetConfig::new))
        .paced_throttles(paced)
        .seed(seed))
}

/// The gate layer of `c`, as both the client and the reqwest adapter use it.
pub(crate) fn gate_layer(c: &ServiceConfig, clock: Clock) -> Result<GateLayer, ConfigError> {
    let mut gate = GateLayer::new().clock(clock);
    for (class, calendar, when) in calendars(c)? {
        gate = gate.class(&class, calendar, when);
    }
    Ok(gate)
}

/// The gate calendars of `c`, by action class.
fn calendars(c: &ServiceConfig) -> Result<Vec<(String, WindowCalendar, WhenClosed)>, ConfigError> {
    let mut out = Vec::new();
    for (class, settings) in &c.gate {
        let open: Vec<&str> = settings.open.iter().map(String::as_str).collect();
        let closed: Vec<&str> = settings.closed.iter().map(String::as_str).collect();
        let calendar = WindowCalendar::new(&settings.tz, &open, &closed)
            .map_err(|e| ConfigError::invalid(format!("gate.{class}"), e.to_string()))?;
        let when = match settings.wait {
            Some(max) => WhenClosed::Wait { max },
            None => WhenClosed::Reject,
        };
        out.push((class.clone(), calendar, when));
    }
    Ok(out)
}

/// What the builder may set over the config's `[ratelimit]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateLimitChoices {
    pub(crate) pace: Option<Pace>,
    pub(crate) adaptive: Option<bool>,
    pub(crate) registry: Option<PauseRegistry>,
}

/// The rate-limit layer for `c`, as both the client and the reqwest adapter use it.
pub(crate) fn ratelimit_layer(
    c: &ServiceConfig,
    clock: Clock,
    seed: Option<u64>,
    choices: &RateLimitChoices,
) -> Result<RateLimitLayer, ConfigError> {
    let r = &c.ratelimit;
    let mut layer = RateLimitLayer::new()
        .max_wait(r.max_wait)
        .release_spread(r.checked_release_spread()?)
        .adaptive(choices.adaptive.unwrap_or(r.adaptive))
        .clock(clock);
    if let Some(pace) = choices.pace.or(r.configured_pace()?) {
        layer = layer.pace(pace);
    }
    if let Some(seed) = seed {
        layer = layer.seed(seed);
    }
    if let Some(registry) = &choices.registry {
        layer = layer.with_registry(registry.clone());
    }
    Ok(layer)
}

/// The breaker settings of `c`, if the breaker is on.
pub(crate) fn breaker_config(c: &ServiceConfig, seed: Option<u64>) -> Option<BreakerConfig> {
    let b = &c.breaker;
    b.enabled.then(|| {
        let rate = FailurePolicy::time_window(b.window, b.failure_rate).min_calls(b.min_calls);
        let policy = match b.consecutive_failures {
            0 => rate,
            n => rate.or_consecutive(n),
        };
        BreakerConfig::standard()
            .policy(policy)
            .open_duration(OpenDuration::growing(b.open_for, 2.0, b.max_open_for))
            .seed(seed)
    })
}
