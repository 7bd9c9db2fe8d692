//! The shared vocabulary of the `unattended` layers: one [`Clock`], one failure classification,
//! one reading of server pushback headers, and the [`Disposition`] every error maps to.
//!
//! This crate does no I/O and knows nothing of hyper. Each layer crate (retry, rate limit,
//! breaker, token, gate) depends on it, so that they agree on:
//!
//! - **time**: [`Clock`] derives wall time from tokio's clock, so a test with a paused runtime
//!   controls token expiry, `Retry-After` dates and time windows as well as sleeps;
//! - **what happened**: a [`Classifier`] turns a response or an error into `Ok(())` or a
//!   [`FailureClass`] (transient, rate limited until *t*, credential refused, permanent);
//! - **what the server asked for**: [`headers::server_wait`] reads `Retry-After` (both forms),
//!   IETF `RateLimit`/`RateLimit-Policy` (draft-11) and the legacy `X-RateLimit-*` fields;
//! - **what to do next**: [`Disposition`] (retry at *t*, skip a service, re-authorize, stop),
//!   which errors expose through [`HasDisposition`];
//! - **which service**: [`ServiceKey`], by default the scheme, host and port of a URI;
//! - **chance**: [`Random`], the one source of every random draw (jitter, skew, spread), seeded
//!   for reproducible runs.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::Response;
//! use unattended_core::{Classifier, Clock, FailureClass, HttpClassifier, TransientCause};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap());
//! let classifier = HttpClassifier::new();
//!
//! let busy = Response::builder().status(503).body(()).unwrap();
//! assert_eq!(
//!     classifier.classify_response(&busy, &clock),
//!     Err(FailureClass::Transient(TransientCause::Status(http::StatusCode::SERVICE_UNAVAILABLE))),
//! );
//!
//! clock.sleep(Duration::from_secs(5)).await; // instant under a paused runtime
//! let limited = Response::builder()
//!     .status(429)
//!     .header("retry-after", "Sat, 28 Nov 2026 10:01:00 GMT")
//!     .body(())
//!     .unwrap();
//! let class = classifier.classify_response(&limited, &clock).unwrap_err();
//! assert_eq!(clock.until(class.not_before().unwrap()), Duration::from_secs(55));
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod classify;
pub mod clock;
mod credential;
mod disposition;
pub mod headers;
mod key;
mod paused;
mod random;
mod replay;

pub use self::classify::{
    Classifier, ClockedClassifier, FailureClass, HttpClassifier, TransientCause,
    classify_error_chain,
};
pub use self::clock::Clock;
pub use self::credential::{CredentialRenewed, TokenError};
pub use self::disposition::{Disposition, HasDisposition};
pub use self::headers::{HeaderLimits, ServerWait, WaitSource};
pub use self::key::{ByHost, KeyOf, KeySource, ServiceKey, write_uri_key};
pub use self::paused::{BreakerOpen, HeldUntil, HostPaused};
pub use self::random::Random;
pub use self::replay::{ReplayBody, copy_request};

/// A type-erased error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
