//! A tower layer that pauses a whole host, for every caller, when its server pushes back.
//!
//! When a server answers `429 Too Many Requests` (or `503` with `Retry-After`), most client
//! stacks let every *other* concurrent caller keep hitting it until each gets its own `429`.
//! [`RateLimitLayer`] makes the first pushback pause the host for everyone: requests to it wait
//! in their futures until the pause ends, then are released at random over a short spread, so
//! the server sees neither the storm during the pause nor a thundering herd after it.
//!
//! - **What pauses a host**: on `429`/`503`, `Retry-After` (seconds or HTTP-date) and then the
//!   quota fields; on any response, IETF `RateLimit` with `r=0` (draft-11),
//!   `RateLimit-Remaining: 0` + `RateLimit-Reset`, or `X-RateLimit-Remaining: 0` +
//!   `X-RateLimit-Reset` — so an exhausted quota pauses the host before the first `429`. A
//!   [`Pushback`] of your own can map other answers, and engines can pause a host by hand through
//!   the [`PauseRegistry`].
//! - **How long a request waits**: up to [`max_wait`](RateLimitLayer::max_wait) (60 s by default).
//!   A longer pause fails the request at once with [`HostPaused`], whose disposition is
//!   "retry at the end of the pause": a scheduler comes back then instead of holding a task.
//!   The shared classifier reads `HostPaused` as rate limiting, so a retry layer outside stops at
//!   once too.
//! - **Absurd values** (a `Retry-After` of ten years) are capped (25 h by default, with a `WARN`);
//!   garbage is ignored. Nothing panics.
//! - **Pacing** (optional): [`RateLimitLayer::pace`] spaces requests to each host at a known
//!   rate (one write per second, say) with the generic cell rate algorithm of `governor`.
//! - **Keys**: scheme, host and port by default ([`ByHost`](unattended_core::ByHost)); any
//!   `Fn(&Req) -> Option<ServiceKey>` will do.
//! - **Restarts**: [`PauseRegistry::snapshot`] / [`restore`](PauseRegistry::restore) carry the
//!   pauses (wall time) across a restart, so a new process does not hammer a host that asked to
//!   be left alone.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use unattended_core::Clock;
//! use unattended_ratelimit::RateLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended_core::BoxError> {
//! let clock = Clock::starting_at("2026-11-28T10:00:00Z".parse()?);
//! let limited = service_fn(|_req: Request<Bytes>| async {
//!     let res = Response::builder().status(429).header("retry-after", "30").body(())?;
//!     Ok::<_, http::Error>(res)
//! });
//! let layer = RateLimitLayer::new().clock(clock);
//! let registry = layer.registry();
//! let svc = ServiceBuilder::new().layer(layer).service(limited);
//!
//! let res = svc.oneshot(Request::get("https://api.example.com/a").body(Bytes::new())?).await?;
//! assert_eq!(res.status(), 429);
//! // Every caller of api.example.com now waits until 10:00:30.
//! let until = registry.paused_until("https://api.example.com:443", clock.wall());
//! assert_eq!(until, Some("2026-11-28T10:00:30Z".parse()?));
//! # Ok(())
//! # }
//! ```
//!
//! # Sharing and clones
//!
//! Every service a layer makes, and their clones, share one [`PauseRegistry`]. Give several
//! layers the same registry with [`RateLimitLayer::with_registry`].
//!
//! # When events fire
//!
//! See [`RateLimitEvent`]: a pause set or extended, a request held, a request rejected, a pause
//! over. Requests to hosts that are not paused fire nothing and cost one atomic load.

mod event;
mod future;
mod layer;
mod pacing;
mod pushback;
mod registry;
mod service;

pub use unattended_core::HostPaused;

pub use self::event::RateLimitEvent;
pub use self::future::ResponseFuture;
pub use self::layer::RateLimitLayer;
pub use self::pacing::{Pace, PaceError};
pub use self::pushback::{HttpPushback, Pushback};
pub use self::registry::{PauseRegistry, PauseSnapshot};
pub use self::service::RateLimit;
