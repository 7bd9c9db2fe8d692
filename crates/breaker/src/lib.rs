//! A tower circuit breaker for outbound clients: one breaker per service, sliding windows that
//! really slide, bounded half-open probes, and a lock-free closed path.
//!
//! When a service is down, calling it anyway wastes time, hides other work behind timeouts and
//! makes its recovery harder. [`CircuitBreakerLayer`] keeps a breaker per service key (scheme,
//! host and port by default), shared by every clone of the layer, so one dead API never blocks
//! calls to another:
//!
//! - **Closed**: calls go through; their outcomes enter a window. What counts as a failure is the
//!   shared classifier's *transient* class (5xx but 501, 408, resets, timeouts); a 404, 401 or
//!   429 (with or without `Retry-After`) says nothing about the service's health.
//! - **Open**: the window called for it ([`FailurePolicy`]: failure rate over the last N calls or
//!   the last T seconds, or N failures in a row, or a rate *or* a run, whichever trips first, as
//!   the preset does; optionally the rate of slow calls). Calls fail at
//!   once with [`BreakerOpen`], whose disposition is "skip work that needs this service", without
//!   touching the inner service. The open time grows on repeated trips, with jitter, up to a cap
//!   ([`OpenDuration`]); a server-given instant can be forced through the [`BreakerHandle`].
//! - **Half-open**: after the open time, exactly N probe calls go through (the others fail fast);
//!   M successes close the breaker, a failure opens it again for longer. A probe whose future is
//!   dropped gives its slot back.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use unattended_breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer, FailurePolicy};
//! use unattended_core::BreakerOpen;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended_core::BoxError> {
//! let down = service_fn(|_req: Request<Bytes>| async {
//!     Ok::<_, http::Error>(Response::builder().status(503).body(())?)
//! });
//! let layer = CircuitBreakerLayer::new(BreakerConfig::standard().policy(FailurePolicy::consecutive(3)))?;
//! let handle = layer.handle();
//! let mut svc = ServiceBuilder::new().layer(layer).service(down);
//!
//! let req = || Request::get("https://api.example.com/items").body(Bytes::new()).unwrap();
//! for _ in 0..3 {
//!     assert_eq!(svc.ready().await?.call(req()).await?.status(), 503);
//! }
//! let err = svc.ready().await?.call(req()).await.unwrap_err();
//! assert!(err.is::<BreakerOpen>());
//! assert!(matches!(handle.state("https://api.example.com:443"), Some(BreakerState::Open { .. })));
//! # Ok(())
//! # }
//! ```
//!
//! # Sharing and clones
//!
//! Every service a layer makes, and their clones, share the breakers. A retry layer outside reads
//! [`BreakerOpen`] (through the shared classifier) as "unavailable" and does not retry it.
//!
//! # When events fire
//!
//! See [`BreakerEvent`]: opened, half-opened, closed, rejected. Calls through a closed breaker
//! fire nothing and take no lock.

mod circuit;
mod config;
mod event;
mod future;
mod layer;
mod registry;
mod service;
mod window;

pub use unattended_core::BreakerOpen;

pub use self::config::{BreakerConfig, BreakerConfigError, OpenDuration};
pub use self::event::BreakerEvent;
pub use self::future::ResponseFuture;
pub use self::layer::CircuitBreakerLayer;
pub use self::registry::{
    BreakerHandle, BreakerSnapshot, BreakerState, CallPermit, ServiceBreaker,
};
pub use self::service::CircuitBreaker;
pub use self::window::{BreakerWindow, FailurePolicy, Outcome};
