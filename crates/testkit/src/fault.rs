//! Faults the mocks inject, and when: at the Nth request to a route, during a span of time, or
//! with a seeded probability. The same plan and seed give the same faults, request for request.
//!
//! Two faults are states of the Google OAuth mock rather than answers, and live there: an
//! expired access token ([`GoogleOAuth::invalidate_access_tokens`], or the clock passing its
//! expiry) and a revoked refresh token ([`GoogleOAuth::revoke_all`]).
//!
//! [`GoogleOAuth::invalidate_access_tokens`]: crate::oauth::GoogleOAuth::invalidate_access_tokens
//! [`GoogleOAuth::revoke_all`]: crate::oauth::GoogleOAuth::revoke_all

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use tokio::time::Instant;
use unattended_core::{BoxError, Clock};

use crate::body::MockBody;
use crate::log::{Recorded, RequestLog};

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
    /// `503 Service Unavailable` with a `Retry-After` (planned maintenance, an overloaded site).
    UnavailableFor(RetryAfter),
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
    /// The write is applied, then no answer ever comes (the connection stays open): the caller
    /// is stuck between the server's commit and its own record of it.
    CommitThenHang,
    /// The write is applied, then the answer is this error status with an HTML page (the
    /// application failing after its commit, a proxy giving up on it): the status does not
    /// say whether the write was applied.
    CommitThenStatus(u16),
    /// `200` with a body that is not JSON.
    MalformedJson,
    /// `200` with a body of this many bytes.
    Oversized(usize),
    /// YouTube: a chunk is answered `308` with a `Range` short of what was sent (the last
    /// 256 KiB were not persisted).
    ShortRange,
    /// YouTube: a chunk is answered `308` without `Range`: nothing was persisted.
    NoRange,
    /// YouTube: `403 quotaExceeded` (and the day's quota is spent until midnight Pacific).
    QuotaExceeded,
    /// YouTube: the upload session is gone (`404`); the upload must start again.
    SessionExpired,
    /// Hashnode: HTTP `200` with `errors[0].extensions.code` set to this code and no data;
    /// nothing is applied.
    GraphQlError(&'static str),
    /// YouTube: the connection breaks in the middle of a chunk, after the server kept its first
    /// half (rounded down to 256 KiB): the client must ask where the upload stands.
    ResetMidChunk,
    /// YouTube: `400 uploadLimitExceeded` (the channel uploaded too much today).
    UploadLimitExceeded,
}

impl Fault {
    /// One fault of each kind, in the order they are declared: what a test that claims to
    /// cover the catalogue checks itself against.
    pub fn catalogue() -> Vec<Self> {
        vec![
            Self::RateLimited(Some(RetryAfter::Seconds(30))),
            Self::QuotaHeaders { reset: 60 },
            Self::Unavailable,
            Self::UnavailableFor(RetryAfter::Seconds(120)),
            Self::Transport,
            Self::Hang,
            Self::SlowBody { every: Duration::from_secs(10) },
            Self::CommitThenDrop,
            Self::CommitThenHang,
            Self::CommitThenStatus(500),
            Self::MalformedJson,
            Self::Oversized(16 << 20),
            Self::ShortRange,
            Self::NoRange,
            Self::QuotaExceeded,
            Self::SessionExpired,
            Self::GraphQlError("INTERNAL_SERVER_ERROR"),
            Self::ResetMidChunk,
            Self::UploadLimitExceeded,
        ]
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "rate_limited",
            Self::QuotaHeaders { .. } => "quota_headers",
            Self::Unavailable => "unavailable",
            Self::UnavailableFor(_) => "unavailable_for",
            Self::Transport => "transport",
            Self::Hang => "hang",
            Self::SlowBody { .. } => "slow_body",
            Self::CommitThenDrop => "commit_then_drop",
            Self::CommitThenHang => "commit_then_hang",
            Self::CommitThenStatus(_) => "commit_then_status",
            Self::MalformedJson => "malformed_json",
            Self::Oversized(_) => "oversized",
            Self::ShortRange => "short_range",
            Self::NoRange => "no_range",
            Self::QuotaExceeded => "quota_exceeded",
            Self::SessionExpired => "session_expired",
            Self::GraphQlError(_) => "graphql_error",
            Self::ResetMidChunk => "reset_mid_chunk",
            Self::UploadLimitExceeded => "upload_limit_exceeded",
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

/// Which requests a rule applies to: a method (or any), a path prefix, and optionally a text the
/// body must hold (GraphQL sends every operation to one path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    method: Option<http::Method>,
    prefix: String,
    body: Option<String>,
}

impl Route {
    /// Requests whose path starts with `prefix`, any method.
    pub fn any(prefix: &str) -> Self {
        Self { method: None, prefix: prefix.to_owned(), body: None }
    }

    /// `method` requests whose path starts with `prefix`.
    pub fn of(method: http::Method, prefix: &str) -> Self {
        Self { method: Some(method), prefix: prefix.to_owned(), body: None }
    }

    /// Only the requests among these whose body holds `text` (`"publishPost"`: one GraphQL
    /// operation among those sent to the same path).
    #[must_use]
    pub fn holding(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self
    }

    fn matches(&self, method: &http::Method, path: &str, body: &[u8]) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && path.starts_with(&self.prefix)
            && self.body.as_ref().is_none_or(|text| contains(body, text.as_bytes()))
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
    pub fn pick(
        &mut self,
        method: &http::Method,
        path: &str,
        body: &[u8],
        now: Instant,
    ) -> Option<Fault> {
        let mut picked = None;
        for (i, (route, trigger, fault)) in self.rules.iter().enumerate() {
            if !route.matches(method, path, body) {
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The answer a fault gives, or `None` for a fault that gives none.
pub(crate) fn generic_response(fault: &Fault, clock: &Clock) -> Option<Response<MockBody>> {
    let mut res = Response::new(MockBody::empty());
    match fault {
        Fault::RateLimited(after) => {
            *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            if let Some(value) = after.and_then(|a| retry_after(a, clock)) {
                res.headers_mut().insert(http::header::RETRY_AFTER, value);
            }
        }
        Fault::UnavailableFor(after) => {
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            *res.body_mut() = MockBody::full("<html><body>503 Service Unavailable</body></html>");
            if let Some(value) = retry_after(*after, clock) {
                res.headers_mut().insert(http::header::RETRY_AFTER, value);
            }
        }
        Fault::QuotaHeaders { reset } => {
            *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let headers = res.headers_mut();
            headers.insert("ratelimit-policy", "\"default\";q=100;w=60".parse().ok()?);
            headers.insert("ratelimit", format!("\"default\";r=0;t={reset}").parse().ok()?);
        }
        Fault::Unavailable => {
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            *res.body_mut() = MockBody::full("<html><body>503 Service Unavailable</body></html>");
        }
        Fault::MalformedJson => *res.body_mut() = MockBody::full(r#"{"id": 12, "title": "#),
        Fault::Oversized(n) => *res.body_mut() = MockBody::full(vec![b'x'; *n]),
        Fault::SlowBody { every } => {
            *res.body_mut() =
                MockBody::trickle(&Bytes::from_static(b"{\"slow\":true}"), 4, *every, *clock);
        }
        Fault::Transport
        | Fault::Hang
        | Fault::CommitThenDrop
        | Fault::CommitThenHang
        | Fault::CommitThenStatus(_)
        | Fault::ShortRange
        | Fault::NoRange
        | Fault::QuotaExceeded
        | Fault::SessionExpired
        | Fault::GraphQlError(_)
        | Fault::ResetMidChunk
        | Fault::UploadLimitExceeded => return None,
    }
    Some(res)
}

/// A `Retry-After` value, in seconds or as an HTTP-date from the clock's now.
fn retry_after(after: RetryAfter, clock: &Clock) -> Option<http::HeaderValue> {
    let text = match after {
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::Date(s) => {
            let at = unattended_core::clock::add_saturating(clock.wall(), Duration::from_secs(s));
            at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
        }
    };
    text.parse().ok()
}

/// Answers one request to a mock: the generic faults here, the mock's own answer (given the
/// fault, for faults of its protocol) otherwise; records it in `log`.
pub(crate) async fn respond(
    fault: Option<Fault>,
    clock: &Clock,
    log: &RequestLog,
    mut record: Recorded,
    answer: impl FnOnce(Option<&Fault>) -> Option<Response<MockBody>>,
) -> Result<Response<MockBody>, BoxError> {
    let dropped = || -> BoxError { io::Error::from(io::ErrorKind::ConnectionReset).into() };
    let res = match &fault {
        Some(Fault::CommitThenDrop) => {
            // The write is applied; its answer is lost.
            record.status = answer(None).map(|res| res.status());
            log.push(record);
            return Err(dropped());
        }
        Some(Fault::CommitThenHang) => {
            // The write is applied; its answer never comes.
            record.status = answer(None).map(|res| res.status());
            log.push(record);
            return std::future::pending().await;
        }
        Some(Fault::CommitThenStatus(status)) => {
            // The write is applied; the answer says only that something failed.
            let _applied = answer(None);
            let mut res = Response::new(MockBody::full(format!(
                "<html><body>{status} Server Error</body></html>"
            )));
            *res.status_mut() = StatusCode::from_u16(*status)?;
            res
        }
        Some(Fault::Transport) => {
            log.push(record);
            return Err(dropped());
        }
        Some(fault @ Fault::ResetMidChunk) => {
            // Part of the write is applied; then the connection breaks.
            record.status = answer(Some(fault)).map(|res| res.status());
            log.push(record);
            return Err(dropped());
        }
        Some(Fault::Hang) => {
            log.push(record);
            return std::future::pending().await;
        }
        Some(fault) => match generic_response(fault, clock).or_else(|| answer(Some(fault))) {
            Some(res) => res,
            None => {
                return Err(
                    format!("the {} fault does not apply to this mock", fault.name()).into()
                );
            }
        },
        None => match answer(None) {
            Some(res) => res,
            None => return Err("the mock gave no answer".into()),
        },
    };
    record.status = Some(res.status());
    log.push(record);
    Ok(res)
}

/// The future of a mock's answer.
pub(crate) type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<MockBody>, BoxError>> + Send>,
>;

/// What every mock has: its clock, its request log, its fault plan. Clones share them.
#[derive(Clone, Debug)]
pub(crate) struct MockCore {
    pub(crate) clock: Clock,
    pub(crate) log: RequestLog,
    plan: std::sync::Arc<std::sync::Mutex<FaultPlan>>,
}

impl MockCore {
    pub(crate) fn new(clock: Clock, seed: u64) -> Self {
        let plan = std::sync::Arc::new(std::sync::Mutex::new(FaultPlan::new(seed)));
        Self { clock, log: RequestLog::default(), plan }
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, FaultPlan> {
        self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a fault rule.
    pub(crate) fn add(&self, route: Route, trigger: Trigger, fault: Fault) {
        self.plan().add(route, trigger, fault);
    }

    /// Removes every fault rule.
    pub(crate) fn clear(&self) {
        self.plan().clear();
    }
}

/// What a mock gives [`answer_request`]: its core and its protocol.
pub(crate) trait Mock: Clone + Send + Sync + 'static {
    /// The clock, log and fault plan.
    fn core(&self) -> &MockCore;
    /// The protocol's answer, given the fault (for faults of the protocol), or `None` for a
    /// fault that does not apply.
    fn reply(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        fault: Option<&Fault>,
    ) -> Option<Response<MockBody>>;
}

/// Runs one request through `mock`: reads its body, picks the fault (if any) at the clock's now,
/// records it, and answers with the generic fault or the mock's reply.
pub(crate) fn answer_request<M: Mock, B>(mock: M, req: http::Request<B>) -> Answer
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    Box::pin(async move {
        let (parts, body) = req.into_parts();
        let body =
            http_body_util::BodyExt::collect(body).await.map(|b| b.to_bytes()).unwrap_or_default();
        let core = mock.core();
        let at = core.clock.now();
        let fault = core.plan().pick(&parts.method, parts.uri.path(), &body, at);
        let record = Recorded::new(at, &parts, body.len(), fault.as_ref());
        respond(fault, &core.clock, &core.log, record, |f| mock.reply(&parts, &body, f)).await
    })
}

/// `Service<http::Request<B>>` for mocks: every call goes through [`answer_request`].
macro_rules! mock_service {
    ($($mock:ty),* $(,)?) => {$(
        impl<B> tower_service::Service<http::Request<B>> for $mock
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
        {
            type Response = http::Response<$crate::body::MockBody>;
            type Error = unattended_core::BoxError;
            type Future = $crate::fault::Answer;

            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), unattended_core::BoxError>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                $crate::fault::answer_request(self.clone(), req)
            }
        }
    )*};
}

mock_service!(
    crate::oauth::Authorize,
    crate::dev::DevTo,
    crate::hashnode::Hashnode,
    crate::youtube::YouTube,
    crate::website::Website,
    crate::gmail::Gmail
);

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    #[test]
    fn the_catalogue_holds_one_fault_of_each_kind() {
        let mut seen = [false; 19];
        for fault in Fault::catalogue() {
            // A new kind does not compile here until it has a place; then the check below
            // fails until the catalogue holds it.
            let i = match fault {
                Fault::RateLimited(_) => 0,
                Fault::QuotaHeaders { .. } => 1,
                Fault::Unavailable => 2,
                Fault::UnavailableFor(_) => 3,
                Fault::Transport => 4,
                Fault::Hang => 5,
                Fault::SlowBody { .. } => 6,
                Fault::CommitThenDrop => 7,
                Fault::CommitThenHang => 8,
                Fault::CommitThenStatus(_) => 9,
                Fault::MalformedJson => 10,
                Fault::Oversized(_) => 11,
                Fault::ShortRange => 12,
                Fault::NoRange => 13,
                Fault::QuotaExceeded => 14,
                Fault::SessionExpired => 15,
                Fault::GraphQlError(_) => 16,
                Fault::ResetMidChunk => 17,
                Fault::UploadLimitExceeded => 18,
            };
            assert!(!seen[i], "{} twice", fault.name());
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn a_route_holding_a_text_counts_only_the_requests_whose_body_holds_it() {
        let now = Clock::starting_at("2026-12-01T00:00:00Z".parse().unwrap()).now();
        let mut plan = FaultPlan::new(1);
        let publish = Route::of(Method::POST, "/").holding("publishPost");
        plan.add(publish, Trigger::Nth(2, 2), Fault::Transport);
        let query = b"{\"query\":\"query Me { me { id } }\"}";
        let mutation = b"{\"query\":\"mutation P($input: PublishPostInput!) { publishPost }\"}";
        assert_eq!(plan.pick(&Method::POST, "/", query, now), None);
        assert_eq!(plan.pick(&Method::POST, "/", mutation, now), None, "the first publish");
        assert_eq!(plan.pick(&Method::POST, "/", query, now), None);
        assert_eq!(plan.pick(&Method::POST, "/", mutation, now), Some(Fault::Transport));
        assert_eq!(plan.pick(&Method::GET, "/", mutation, now), None, "another method");
    }
}
