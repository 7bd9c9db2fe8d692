//! Faults the mocks inject, and when: at the Nth request to a route, during a span of time, or
//! with a seeded probability. The same plan and seed give the same faults, request for request.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How a `Retry-After` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, this many seconds from the request.
    Date(u64),
}

/// One fault, answered instead of the normal response (every one of them is listed here).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `429 Too Many Requests`, with a `Retry-After` if given.
    RateLimited(Option<RetryAfter>),
    /// `429` with IETF `RateLimit-Policy`/`RateLimit` headers: quota used up, reset in `reset`
    /// seconds.
    QuotaHeaders {
        /// Seconds until the quota resets.
        reset: u64,
    },
    /// `503 Service Unavailable` (an HTML page, as a load balancer gives).
    Unavailable,
    /// The connection breaks before an answer: an I/O error in-process, a dropped connection
    /// over a socket.
    Transport,
    /// No answer, ever (the connection stays open).
    Hang,
    /// The body arrives in pieces, one every `every`.
    SlowBody {
        /// The gap between pieces.
        every: Duration,
    },
    /// The write is applied, then the answer is lost (a transport failure after the commit).
    CommitThenDrop,
    /// `200` with a body that is not JSON.
    MalformedJson,
    /// `200` with a body of this many bytes.
    Oversized(usize),
}

impl Fault {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "rate_limited",
            Self::QuotaHeaders { .. } => "quota_headers",
            Self::Unavailable => "unavailable",
            Self::Transport => "transport",
            Self::Hang => "hang",
            Self::SlowBody { .. } => "slow_body",
            Self::CommitThenDrop => "commit_then_drop",
            Self::MalformedJson => "malformed_json",
            Self::Oversized(_) => "oversized",
        }
    }
}

/// When a fault fires.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// At these requests to the route, counted from 1 (`Nth(1..=3)` is the first three).
    Nth(u64, u64),
    /// For every request from `from` (inclusive) to `until` (exclusive), on the mock's clock.
    Between(Instant, Instant),
    /// With this probability, from the plan's seeded generator.
    Chance(f64),
    /// Always.
    Always,
}

/// Which requests a rule applies to: a method (or any) and a path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    method: Option<http::Method>,
    prefix: String,
}

impl Route {
    /// Requests whose path starts with `prefix`, any method.
    pub fn any(prefix: &str) -> Self {
        Self { method: None, prefix: prefix.to_owned() }
    }

    /// `method` requests whose path starts with `prefix`.
    pub fn of(method: http::Method, prefix: &str) -> Self {
        Self { method: Some(method), prefix: prefix.to_owned() }
    }

    fn matches(&self, method: &http::Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && path.starts_with(&self.prefix)
    }
}

/// The faults of one mock: rules tried in order, a request counter per rule, a seeded
/// generator.
#[derive(Debug)]
pub struct FaultPlan {
    rules: Vec<(Route, Trigger, Fault)>,
    seen: HashMap<usize, u64>,
    rng: fastrand::Rng,
}

impl FaultPlan {
    /// An empty plan whose chances draw from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rules: Vec::new(), seen: HashMap::new(), rng: fastrand::Rng::with_seed(seed) }
    }

    /// Adds a rule.
    pub fn add(&mut self, route: Route, trigger: Trigger, fault: Fault) {
        self.rules.push((route, trigger, fault));
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.seen.clear();
    }

    /// The fault for this request, if a rule fires (the first that does). Every rule whose
    /// route matches counts the request, whether or not an earlier rule fired.
    pub fn pick(&mut self, method: &http::Method, path: &str, now: Instant) -> Option<Fault> {
        let mut picked = None;
        for (i, (route, trigger, fault)) in self.rules.iter().enumerate() {
            if !route.matches(method, path) {
                continue;
            }
            let n = *self.seen.entry(i).and_modify(|n| *n += 1).or_insert(1);
            let fires = match *trigger {
                Trigger::Nth(first, last) => (first..=last).contains(&n),
                Trigger::Between(from, until) => from <= now && now < until,
                Trigger::Chance(p) => self.rng.f64() < p,
                Trigger::Always => true,
            };
            if fires && picked.is_none() {
                picked = Some(fault.clone());
            }
        }
        picked
    }
}
