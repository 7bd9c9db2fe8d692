//! A tower retry layer for unattended clients: jittered exponential backoff, a retry budget
//! shared by every caller, an overall deadline, a timeout per attempt, and respect for the
//! server's `Retry-After`.
//!
//! [`RetryLayer`] follows tower's own `retry::Retry` (a copy of the request and a clone of the
//! wrapped service ride in the response future) and decides with [`unattended_core`]'s
//! classifier, so it retries exactly what the other layers consider transient:
//!
//! - **What is retried**: transient failures (408, 425, 429, 500, 502, 503, 504, resets,
//!   timeouts, connect errors) and rate limiting. A 404 or a 401 comes back as it was.
//! - **When**: after `min(cap, base · multiplierⁿ)` with full jitter by default, and never
//!   before the server's `Retry-After` / rate-limit reset; callers told the same instant are
//!   sent at random over a second after it (`pushback_spread`), so they do not all come back at
//!   once.
//! - **Until**: the attempts run out, the overall deadline would pass, the shared budget is spent
//!   (successes pay for retries, so a flaky host keeps them and a dead one gets 10 in all;
//!   with [`paced_throttles`](RetryConfig::paced_throttles), the retries of a host's throttles
//!   are paced by a rate-limit layer inside and cost nothing), or
//!   the server asks for a longer wait than allowed. Then the layer returns [`GaveUp`], whose
//!   [`disposition`](unattended_core::HasDisposition::disposition) says when to try again, at
//!   once rather than after a pointless sleep.
//! - **What is safe**: `POST` and `PATCH` are retried only with an `Idempotency-Key` header, the
//!   [`Retryable`] extension, or after a connect error (nothing was sent); a request with the
//!   [`NotIdempotent`] extension (a resumable upload's chunk) is retried only when the server
//!   did not act on it (a connect error, a `429`, a refused credential). A request whose body is
//!   a stream is sent once; if it fails in a retryable way the error says it was not retried and
//!   why.
//! - **No hang**: each attempt has a timeout (30 s in the standard preset).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use unattended_retry::RetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended_core::BoxError> {
//! let calls = std::sync::atomic::AtomicU32::new(0);
//! let flaky = service_fn(|_req: Request<Bytes>| {
//!     let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     let status = if n < 2 { 503 } else { 200 };
//!     async move { Ok::<_, std::io::Error>(Response::builder().status(status).body(()).unwrap()) }
//! });
//!
//! let client = ServiceBuilder::new().layer(RetryLayer::standard()).service(flaky);
//! let req = Request::get("https://api.example.com/items").body(Bytes::new())?;
//! let res = client.oneshot(req).await?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
//! # Ok(())
//! # }
//! ```
//!
//! Around a service that is not HTTP, give the layer a [`Classifier`](unattended_core::Classifier)
//! for its responses and [`CloneReplay`] for its requests:
//!
//! ```
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use unattended_core::{Classifier, Clock, FailureClass, TransientCause};
//! use unattended_retry::{CloneReplay, RetryLayer};
//!
//! /// A key-value store answers `None` while it is warming up.
//! #[derive(Clone)]
//! struct WarmingUp;
//!
//! impl Classifier<Option<String>> for WarmingUp {
//!     fn classify_response(&self, res: &Option<String>, _: &Clock) -> Result<(), FailureClass> {
//!         match res {
//!             Some(_) => Ok(()),
//!             None => Err(FailureClass::Transient(TransientCause::Other)),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended_core::BoxError> {
//! let attempts = std::sync::atomic::AtomicU32::new(0);
//! let store = service_fn(|key: &'static str| {
//!     let warm = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0;
//!     async move { Ok::<_, std::io::Error>(warm.then(|| format!("value of {key}"))) }
//! });
//! let layer = RetryLayer::standard().classifier(WarmingUp).replay(CloneReplay::keyed("kv"));
//! let value = ServiceBuilder::new().layer(layer).service(store).oneshot("a").await?;
//! assert_eq!(value.as_deref(), Some("value of a"));
//! # Ok(())
//! # }
//! ```
//!
//! # Sharing and clones
//!
//! Every service a layer makes, and every clone of those, shares one [`RetryBudget`], one jitter
//! source and one event hook. Make one layer per remote service (or per group of services that
//! should share a budget).
//!
//! # When events fire
//!
//! See [`RetryEvent`]: one `Retrying` per retry (also a `tracing` `WARN` with attempt, delay,
//! reason and key) and one `GaveUp` when the layer stops. Successes are silent.
//!
//! # Determinism
//!
//! All time goes through the layer's [`Clock`](unattended_core::Clock) (tokio's clock, so a
//! paused test runtime controls it), and [`RetryConfig::seed`] makes the jitter reproducible.

mod attempt;
mod budget;
mod config;
mod decision;
mod error;
mod event;
mod future;
mod layer;
mod policy;
mod replay;
mod schedule;
mod service;

pub use self::budget::{BudgetConfig, RetryBudget};
pub use self::config::{RetryConfig, RetryConfigError};
pub use self::decision::RetryState;
pub use self::error::{GaveUp, GiveUpReason};
pub use self::event::RetryEvent;
pub use self::future::ResponseFuture;
pub use self::layer::RetryLayer;
pub use self::replay::{CloneReplay, HttpReplay, NotIdempotent, Replay, ReplayBody, Retryable};
pub use self::schedule::{BackoffSchedule, Jitter};
pub use self::service::Retry;
