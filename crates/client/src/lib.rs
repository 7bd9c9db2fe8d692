//! A resilient HTTP client for jobs that run unattended.
//!
//! [`Client`] assembles the workspace's layers in the design's order on hyper-util's pooled
//! client with rustls (no OpenSSL), HTTP/1.1 and HTTP/2:
//!
//! ```text
//! Trace → Gate → Retry(+budget, deadline) → RateLimit → CircuitBreaker → Token → attempt Timeout
//!       → FollowRedirect → Decompression → User-Agent → transport
//! ```
//!
//! It is built from a [`ServiceConfig`] (TOML, every field with a documented default; timeouts
//! on by default) with [`Client::builder`]; the transport is pluggable, so the same stack runs
//! over an in-process fake under a paused clock. Request bodies are buffered so any request can
//! be sent again; every response body is bounded by a size limit (counted after decompression,
//! against bombs). A host that throttles is paced from its first `429` at a rate learned from
//! its answers, shared by every call to it (`[ratelimit]`: a known `pace` and `burst`, or
//! `adaptive = false`). Failures are one opaque [`Error`] with `is_*()` predicates, a
//! disposition (what the runner should do), the service key and the attempts made.

mod builder;
mod client;
mod config;
mod error;
mod layers;
mod redact;
#[cfg(feature = "reqwest")]
mod reqwest;
mod stack;
mod transport;

pub use self::builder::ClientBuilder;
pub use self::client::Client;
pub use self::config::{
    AuthSettings, BreakerSettings, ConfigError, GateSettings, Limits, RateLimitSettings,
    RetrySettings, ServiceConfig, Timeouts,
};
pub use self::config::{duration, opt_duration};
pub use self::error::Error;
pub use self::redact::SecretPath;
#[cfg(feature = "reqwest")]
pub use self::reqwest::ResilienceMiddleware;
pub use self::stack::{AnySource, Body, RequestBody, SharedCache};
pub use self::transport::{HttpsTransport, https_transport};
