//! An API behind nginx's `limit_req`: a leaky bucket (the generic cell rate algorithm) with a
//! rate, a burst, `nodelay`, a refusal status and optionally `Retry-After` or the IETF
//! `RateLimit` fields.
//!
//! Facts followed (nginx's `ngx_http_limit_req_module`): each request adds one to the bucket's
//! excess, which drains at `rate` per second; a request that would take the excess above `burst`
//! is refused (`limit_req_status`, often 429) and changes nothing; with `nodelay` an admitted
//! request is answered at once, so after a quiet spell `burst + 1` requests pass in a row. nginx
//! sends no `Retry-After` unless the site adds one (`add_header Retry-After 1 always`).
//!
//! With [`LimitReq::ratelimit_fields`], every answer carries what an API that documents its limit
//! would send (draft-ietf-httpapi-ratelimit-headers-11): `RateLimit-Policy: "limit";q=<rate>;w=1`
//! and `RateLimit: "limit";r=<requests left in the burst>;t=<seconds until the bucket is empty>`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use tokio::time::Instant;
use unattended_core::{BoxError, Clock};

use crate::body::MockBody;
use crate::fault::{Answer, MockCore};
use crate::log::{Recorded, RequestLog};

/// The limit, as an nginx configuration would set it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitReq {
    /// Requests per second the bucket drains (`rate=50r/s`).
    pub rate: f64,
    /// Requests allowed in excess (`burst=10`, with `nodelay`).
    pub burst: u32,
    /// The refusal's status (`limit_req_status 429`).
    pub status: StatusCode,
    /// `Retry-After: <seconds>` on every refusal, if set.
    pub retry_after: Option<u64>,
    /// The IETF `RateLimit-Policy` and `RateLimit` fields on every answer.
    pub ratelimit_fields: bool,
}

impl LimitReq {
    /// `limit_req zone=... rate=<rate>r/s burst=<burst> nodelay; limit_req_status 429;`, no
    /// `Retry-After`.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst,
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: None,
            ratelimit_fields: false,
        }
    }

    /// Adds `Retry-After: <seconds>` to every refusal.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds the IETF `RateLimit-Policy` and `RateLimit` fields to every answer.
    #[must_use]
    pub fn ratelimit_fields(mut self) -> Self {
        self.ratelimit_fields = true;
        self
    }
}

#[derive(Debug)]
struct Bucket {
    limit: LimitReq,
    /// Requests in excess, draining at `limit.rate` per second since `last`.
    excess: f64,
    last: Option<Instant>,
    accepted: u64,
    refused: u64,
}

impl Bucket {
    /// nginx's rule: admitted if the excess after this request stays within the burst.
    fn admit(&mut self, now: Instant) -> bool {
        let drained = self.last.map_or(f64::INFINITY, |last| {
            self.limit.rate * now.saturating_duration_since(last).as_secs_f64()
        });
        let excess = (self.excess - drained + 1.0).max(0.0);
        // A hair of slack for float rounding at exact multiples of the interval.
        if excess > f64::from(self.limit.burst) + 1e-9 {
            self.refused += 1;
            return false;
        }
        self.excess = excess;
        self.last = Some(now);
        self.accepted += 1;
        true
    }

    /// `RateLimit` members: requests left before a refusal, seconds until the bucket is empty.
    fn fields(&self, now: Instant) -> (u64, u64) {
        let drained = self.last.map_or(f64::INFINITY, |last| {
            self.limit.rate * now.saturating_duration_since(last).as_secs_f64()
        });
        let excess = (self.excess - drained).max(0.0);
        let left = (f64::from(self.limit.burst) + 1.0 - (excess + 1.0)).floor().max(0.0);
        let empty_in = (excess / self.limit.rate).ceil();
        (left as u64, empty_in as u64)
    }
}

/// The rate-limited API: `GET` anything answers `200 {"ok":true}` unless the bucket refuses.
/// Clones share the bucket and the log.
#[derive(Clone, Debug)]
pub struct LeakyBucket {
    core: MockCore,
    bucket: Arc<Mutex<Bucket>>,
    latency: Duration,
}

impl LeakyBucket {
    /// A bucket with `limit`, answering at once.
    pub fn new(clock: Clock, limit: LimitReq) -> Self {
        let bucket = Bucket { limit, excess: 0.0, last: None, accepted: 0, refused: 0 };
        Self {
            core: MockCore::new(clock, 0),
            bucket: Arc::new(Mutex::new(bucket)),
            latency: Duration::ZERO,
        }
    }

    /// Answers each request `latency` after it arrived (the bucket decides on arrival).
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    fn bucket(&self) -> MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the rate from now on (an operator reloading nginx with another `rate=`).
    pub fn set_rate(&self, rate: f64) {
        let now = self.core.clock.now();
        let mut bucket = self.bucket();
        // Drain at the old rate up to now, then at the new one.
        if let Some(last) = bucket.last {
            let drained = bucket.limit.rate * now.saturating_duration_since(last).as_secs_f64();
            bucket.excess = (bucket.excess - drained).max(0.0);
            bucket.last = Some(now);
        }
        bucket.limit.rate = rate;
    }

    /// The limit in force.
    pub fn limit(&self) -> LimitReq {
        self.bucket().limit
    }

    /// Requests admitted and refused so far.
    pub fn counts(&self) -> (u64, u64) {
        let bucket = self.bucket();
        (bucket.accepted, bucket.refused)
    }

    /// The requests received.
    pub fn log(&self) -> &RequestLog {
        &self.core.log
    }

    fn answer(&self, now: Instant) -> Response<MockBody> {
        let mut bucket = self.bucket();
        let admitted = bucket.admit(now);
        let mut res = if admitted {
            let mut res = Response::new(MockBody::full(&b"{\"ok\":true}"[..]));
            res.headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        } else {
            let mut res = Response::new(MockBody::full(&b"<html>429 Too Many Requests</html>"[..]));
            *res.status_mut() = bucket.limit.status;
            if let Some(seconds) = bucket.limit.retry_after {
                res.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            res
        };
        if bucket.limit.ratelimit_fields {
            let (left, empty_in) = bucket.fields(now);
            let quota = bucket.limit.rate.round().max(1.0) as u64;
            let policy = format!("\"limit\";q={quota};w=1");
            let state = format!("\"limit\";r={left};t={empty_in}");
            if let (Ok(policy), Ok(state)) = (policy.parse(), state.parse()) {
                res.headers_mut().insert("ratelimit-policy", policy);
                res.headers_mut().insert("ratelimit", state);
            }
        }
        res
    }
}

impl<B> tower_service::Service<http::Request<B>> for LeakyBucket
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<MockBody>;
    type Error = BoxError;
    type Future = Answer;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (parts, _body) = req.into_parts();
        let clock = self.core.clock;
        let at = clock.now();
        // The bucket decides on arrival, as nginx does before the upstream answers.
        let res = self.answer(at);
        let mut record = Recorded::new(at, &parts, 0, None);
        record.status = Some(res.status());
        self.core.log.push(record);
        let sleep = (!self.latency.is_zero()).then(|| clock.sleep(self.latency));
        Box::pin(async move {
            if let Some(sleep) = sleep {
                sleep.await;
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate_like_nginx() {
        let clock = Clock::system();
        let api = LeakyBucket::new(clock, LimitReq::new(50.0, 10).retry_after(1));
        let start = clock.now();
        // After a quiet spell: the first request plus a burst of ten.
        let statuses: Vec<_> = (0..12).map(|_| api.answer(start).status().as_u16()).collect();
        assert_eq!(statuses[..11], [200; 11]);
        assert_eq!(statuses[11], 429);
        assert_eq!(api.answer(start).headers()[http::header::RETRY_AFTER], "1");
        // One drains every 20 ms.
        assert_eq!(api.answer(start + Duration::from_millis(19)).status(), 429);
        assert_eq!(api.answer(start + Duration::from_millis(20)).status(), 200);
        assert_eq!(api.answer(start + Duration::from_millis(20)).status(), 429);
        assert_eq!(api.counts(), (12, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_ratelimit_fields_say_what_is_left() {
        let clock = Clock::system();
        let api = LeakyBucket::new(clock, LimitReq::new(50.0, 10).ratelimit_fields());
        let start = clock.now();
        let first = api.answer(start);
        assert_eq!(first.headers()["ratelimit-policy"], "\"limit\";q=50;w=1");
        assert_eq!(first.headers()["ratelimit"], "\"limit\";r=10;t=0");
        for _ in 0..10 {
            api.answer(start);
        }
        let refused = api.answer(start);
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["ratelimit"], "\"limit\";r=0;t=1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_rate_applies_from_now() {
        let clock = Clock::system();
        let api = LeakyBucket::new(clock, LimitReq::new(50.0, 0));
        let start = clock.now();
        assert_eq!(api.answer(start).status(), 200);
        api.set_rate(10.0);
        assert_eq!(api.answer(start + Duration::from_millis(50)).status(), 429);
        assert_eq!(api.answer(start + Duration::from_millis(100)).status(), 200);
        assert_eq!(api.limit().rate, 10.0);
    }
}
