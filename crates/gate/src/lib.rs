//! A tower layer that lets actions through only in their time windows: publish from 09:00 to
//! 22:00 in the audience's time zone, send no email at night, scrape heavily only off-peak, never
//! during a service's announced maintenance.
//!
//! - [`WindowCalendar`]: weekly windows (`"mon-fri 09:00-22:00"`, `"fri-sun 22:00-06:00"`) in an
//!   IANA time zone, minus closed dates and spans; `is_open`, `next_open`, `next_close`. Correct
//!   across daylight-saving changes (see the calendar's docs for gaps and folds). Readable from
//!   TOML through [`CalendarSpec`] (feature `serde`).
//! - Action classes: a request's class comes from its [`ActionClass`] extension or, by default,
//!   from its method (`read` for `GET`/`HEAD`/`OPTIONS`, `write` otherwise). Each class may have a
//!   calendar; classes without one always pass.
//! - When closed: [`WhenClosed::Reject`] fails at once with [`OutsideWindow`], whose disposition
//!   is "retry when it opens" (a runner reschedules the task then), or [`WhenClosed::Wait`] holds
//!   the request until it opens, up to a limit.
//! - The open path compares two instants: the gate remembers when the current open span ends.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use unattended_core::{Clock, Disposition, HasDisposition};
//! use unattended_gate::{GateLayer, OutsideWindow, WhenClosed, WindowCalendar};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), unattended_core::BoxError> {
//! // Saturday night in Los Angeles.
//! let clock = Clock::parse_start("2026-11-28T23:00:00-08:00[America/Los_Angeles]")?;
//! let hours = WindowCalendar::new("America/Los_Angeles", &["mon-fri 09:00-22:00"], &[])?;
//! let api = service_fn(|_req: Request<Bytes>| async { Ok::<_, std::io::Error>(Response::new(())) });
//! let gate = GateLayer::new().class("write", hours, WhenClosed::Reject).clock(clock);
//! let svc = ServiceBuilder::new().layer(gate).service(api);
//!
//! // Reads pass; writes wait for Monday.
//! svc.clone().oneshot(Request::get("https://blog.example/posts").body(Bytes::new())?).await?;
//! let err = svc.oneshot(Request::post("https://blog.example/posts").body(Bytes::new())?).await.unwrap_err();
//! let outside = err.downcast_ref::<OutsideWindow>().unwrap();
//! assert_eq!(outside.disposition(), Disposition::RetryAt("2026-11-30T17:00:00Z".parse()?));
//! # Ok(())
//! # }
//! ```

mod calendar;
mod class;
mod error;
mod future;
mod keeper;
mod layer;
mod service;

pub use self::calendar::{CalendarError, CalendarSpec, WindowCalendar};
pub use self::class::{ActionClass, ByMethod, ClassOf};
pub use self::error::OutsideWindow;
pub use self::future::ResponseFuture;
pub use self::keeper::Gatekeeper;
pub use self::layer::GateLayer;
pub use self::service::{Gate, WhenClosed};
