//! Test helpers shared by the workspace's tests and benchmarks.
//!
//! - [`drive`]: call a service by hand, without a runtime's scheduler, for benchmarks and
//!   allocation counts of the happy path;
//! - [`capture`]: collect what `tracing` logs during a closure or a test;
//! - [`oauth`]: a Google OAuth token endpoint and an API that checks its tokens, on the
//!   [`Clock`](unattended_core::Clock), with injectable faults;
//! - [`socket`]: a raw HTTP/1.1 server on 127.0.0.1 answering from a script (statuses, hangs,
//!   resets), for real-time socket tests.
//!
//! Each mock is a plain tower `Service<http::Request<B>>`, so it can be a client's transport
//! under a paused clock.

pub mod capture;
pub mod drive;
pub mod oauth;
pub mod socket;
