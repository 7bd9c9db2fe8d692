//! `unattended` keeps automation running when nobody is watching.
//!
//! This crate gathers the workspace's crates under one name:
//!
//! - [`core`]: the [`Clock`], failure classification, server pushback headers and the
//!   [`Disposition`] every error maps to;
//! - [`retry`]: [`RetryLayer`], jittered exponential retry with a shared budget, an overall
//!   deadline, per-attempt timeouts and respect for `Retry-After`;
//! - [`ratelimit`]: [`RateLimitLayer`], one pause per host shared by every caller, set by `429`,
//!   `Retry-After` and rate-limit headers;
//! - [`breaker`]: [`CircuitBreakerLayer`], one circuit breaker per host with sliding windows and
//!   bounded half-open probes;
//! - [`gate`]: [`GateLayer`], time windows per action class (publish only 09:00–22:00 in a time
//!   zone), correct across daylight-saving changes;
//! - [`token`]: [`TokenLayer`] and [`TokenCache`], access tokens refreshed before expiry, one
//!   refresh at a time, renewed and replayed once on a `401`, OAuth2 grants, revocation turned
//!   into "re-authorize".
//!
//! - [`client`]: [`Client`], all of the above assembled on hyper-util, rustls and tower-http,
//!   built from a TOML [`ServiceConfig`](client::ServiceConfig);
//! - [`store`]: [`Store`], embedded state in one SQLite file: checkpoints, runs, task states,
//!   open breakers and pauses that outlive the process, refresh tokens;
//! - [`alerts`]: [`Outbox`](alerts::Outbox), alerts for a human (one per incident, one on
//!   recovery) written to the store first and delivered from there to a log and webhooks;
//! - [`runner`]: [`Runner`], schedules, per-run error boundaries, the task state machine,
//!   heartbeats and alerts, for engines implementing [`Engine`]; [`engines`] lists the ones the
//!   `unattended` command knows.
//!
//! Each layer crate can also be used alone, in any tower stack. Together they go in this order,
//! outermost first: `Gate → Retry → RateLimit → CircuitBreaker → Token → attempt Timeout →
//! transport`. Every
//! attempt waits for the host's pause and is counted by the breaker; a pause longer than the caller
//! may wait ends the retries at once with a time to come back, and an open breaker is not retried
//! at all (the runner skips the work that needs that service).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use unattended::RetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended::BoxError> {
//! let service = service_fn(|_req: Request<Bytes>| async {
//!     Ok::<_, std::io::Error>(Response::new("hello"))
//! });
//! let client = ServiceBuilder::new().layer(RetryLayer::standard()).service(service);
//! let res = client.oneshot(Request::get("https://example.com/").body(Bytes::new())?).await?;
//! assert_eq!(*res.body(), "hello");
//! # Ok(())
//! # }
//! ```

pub use unattended_alerts as alerts;
pub use unattended_breaker as breaker;
pub use unattended_breaker::{BreakerOpen, CircuitBreakerLayer};
pub use unattended_client as client;
pub use unattended_client::Client;
pub use unattended_core as core;
pub use unattended_core::{
    BoxError, Classifier, Clock, Disposition, FailureClass, HasDisposition, HttpClassifier,
    ServiceKey,
};
pub use unattended_gate as gate;
pub use unattended_gate::{GateLayer, OutsideWindow, WindowCalendar};
pub use unattended_ratelimit as ratelimit;
pub use unattended_ratelimit::{HostPaused, RateLimitLayer};
pub use unattended_retry as retry;
pub use unattended_retry::{GaveUp, RetryConfig, RetryLayer};
pub use unattended_runner as runner;
pub use unattended_runner::{Engine, EngineKinds, Runner, RunnerConfig, TaskContext};
pub use unattended_store as store;
pub use unattended_store::{StateStore, Store};
pub use unattended_token as token;
pub use unattended_token::{TokenCache, TokenError, TokenLayer};

/// The engines the `unattended` command knows, by the names a task's `engine = "..."` gives.
pub fn engines() -> EngineKinds {
    let kinds = unattended_engine_command::register(EngineKinds::new());
    let kinds = unattended_engine_scrape::register(kinds);
    let kinds = unattended_engine_email::register(kinds);
    let kinds = unattended_engine_youtube::register(kinds);
    unattended_engine_blog::register(kinds)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_knows_every_engine() {
        let kinds = super::engines();
        let mut names: Vec<&str> = kinds.names().collect();
        names.sort_unstable();
        assert_eq!(names, ["blog", "command", "email", "scrape", "youtube"]);
    }
}
