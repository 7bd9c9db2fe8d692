//! Test helpers shared by the workspace's tests and benchmarks.
//!
//! - [`drive`]: call a service by hand, without a runtime's scheduler, for benchmarks and
//!   allocation counts of the happy path;
//! - [`capture`]: collect what `tracing` logs during a closure or a test.
//!
//! Mock services with fault injection (YouTube, OAuth, DEV, Gmail, a website) are to come here.

pub mod capture;
pub mod drive;
