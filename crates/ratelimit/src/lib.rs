//! A tower layer that paces each host at the rate it takes and pauses it, for every caller,
//! when its server pushes back.
//!
//! When a server answers `429 Too Many Requests` (or `503` with `Retry-After`), most client
//! stacks let every *other* concurrent caller keep hitting it until each gets its own `429`,
//! and a client that waits out the server's time and then lets everyone go at once spends the
//! server's burst in a millisecond and is refused again. [`RateLimitLayer`] learns instead:
//!
//! - **The first throttle pauses the host for everyone** until the server's time, and starts
//!   **pacing** it: from then on, requests to that host take their turn in one line, first come
//!   first served, evenly spaced, whoever the caller.
//! - **The pace adapts** (as the AWS SDKs' adaptive retry mode does): each throttle cuts it to
//!   0.7 of what it was, and it climbs back along a cubic curve while calls succeed, flattening
//!   out near the rate of the last throttle before probing beyond it. The curve is counted in
//!   successful calls (200 per probe), so a slow API is probed as rarely, per call, as a fast
//!   one. When the server's quota fields say how fast it lets us go (`RateLimit-Policy`, or the
//!   quota left until its reset), that is the pace. A pace nobody has needed for ten minutes is
//!   forgotten, and the host is back on the happy path.
//! - **Short waits on a paced host stop only the refused request**: a `Retry-After` of up to
//!   [`min_pause`](RateLimitLayer::min_pause) (2 s) cuts the pace for every caller, and the
//!   refused request waits for the server's time on its own (a retry layer outside holds it back,
//!   then it takes its place in the line). Longer waits, and any wait on a host not yet paced,
//!   pause the host for everyone; its line starts again at the end of the pause, in order.
//! - **Retries take their place**: a request that waited for the server's time re-enters the
//!   line like any other, never before that time. On a host that is not paced (with
//!   [`adaptive`](RateLimitLayer::adaptive) off), the requests held by a pause, and those that
//!   arrive within its [`release_spread`](RateLimitLayer::release_spread), go at random over the
//!   spread after it.
//! - **What counts as a throttle**: a `429` (with or without `Retry-After`); a `503` with
//!   `Retry-After`; an exhausted quota on any response (IETF `RateLimit` with `r=0`,
//!   `RateLimit-Remaining: 0` + `RateLimit-Reset`, `X-RateLimit-Remaining: 0` +
//!   `X-RateLimit-Reset`), which also pauses the host *before* the first `429`. A [`Pushback`]
//!   of your own can map other answers, and engines can pause a host by hand through the
//!   [`PauseRegistry`].
//! - **A known limit**: [`pace`](RateLimitLayer::pace) spaces every request from the first one
//!   ([`Pace::per_second(50)`](Pace::per_second) is one every 20 ms; add a burst with
//!   [`Pace::with_burst`]); adaptation then only ever goes below it.
//! - **How long a request waits**: up to [`max_wait`](RateLimitLayer::max_wait) (60 s by
//!   default) for a pause or for its turn in line. Longer fails the request at once with
//!   [`HostPaused`], whose disposition is "retry at that time": a scheduler comes back then
//!   instead of holding a task. The shared classifier reads `HostPaused` as rate limiting, so a
//!   retry layer outside stops at once too.
//! - **Absurd values** (a `Retry-After` of ten years) are capped (25 h by default, with a `WARN`);
//!   garbage is ignored. Nothing panics.
//! - **Keys**: scheme, host and port by default ([`ByHost`](unattended_core::ByHost)); any
//!   `Fn(&Req) -> Option<ServiceKey>` will do.
//! - **Restarts**: [`PauseRegistry::snapshot`] / [`restore`](PauseRegistry::restore) carry the
//!   pauses (wall time), and [`paces`](PauseRegistry::paces) /
//!   [`restore_paces`](PauseRegistry::restore_paces) the learned rates, across a restart, so a
//!   new process neither hammers a host that asked to be left alone nor learns its rate again.
//! - **Other senders**: [`Limiter`] is the same rules for code that is not a tower stack (the
//!   client's `reqwest` adapter uses it).
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
//! // Every caller of api.example.com now waits until 10:00:30, then takes its turn.
//! let until = registry.paused_until("https://api.example.com:443", clock.wall());
//! assert_eq!(until, Some("2026-11-28T10:00:30Z".parse()?));
//! assert!(registry.pace_of("https://api.example.com:443").is_some());
//! # Ok(())
//! # }
//! ```
//!
//! # Sharing and clones
//!
//! Every service a layer makes, and their clones, share one [`PauseRegistry`] of pauses and
//! paces; each layer makes its own, so two clients never slow each other down. Give several
//! layers the same registry with [`RateLimitLayer::with_registry`] (or use
//! [`PauseRegistry::global`]).
//!
//! # When events fire
//!
//! See [`RateLimitEvent`]: a pause set or extended, a request held, a request rejected, a pause
//! over, a host paced. Requests to hosts that are neither paused nor paced fire nothing and
//! cost one atomic load.

mod adaptive;
mod event;
mod future;
mod layer;
mod limiter;
mod pacing;
mod policy;
mod pushback;
mod registry;
mod schedule;
mod service;

pub use unattended_core::HostPaused;

pub use self::event::RateLimitEvent;
pub use self::future::ResponseFuture;
pub use self::layer::RateLimitLayer;
pub use self::limiter::{Limiter, Permit};
pub use self::pacing::{Pace, PaceError};
pub use self::pushback::{Feedback, HttpPushback, Pushback};
pub use self::registry::{PaceSnapshot, PauseRegistry, PauseSnapshot, PauseState};
pub use self::service::RateLimit;
