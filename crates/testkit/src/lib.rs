//! Test helpers shared by the workspace's tests and benchmarks.
//!
//! - [`drive`]: call a service by hand, without a runtime's scheduler, for benchmarks and
//!   allocation counts of the happy path;
//! - [`capture`]: collect what `tracing` logs during a closure or a test;
//! - [`oauth`]: Google's OAuth authorization endpoint (the consent redirect with a code, or
//!   `access_denied`), its token endpoint (refresh-token, client-credentials and
//!   authorization-code grants, PKCE checked, codes single-use) and an API that checks its
//!   tokens, on the [`Clock`](unattended_core::Clock), with injectable faults;
//! - [`dev`]: DEV (Forem API v1) with its throttles, duplicate guards and error bodies;
//! - [`hashnode`]: Hashnode's GraphQL API (`publishPost`, `updatePost`, `me { posts }`), its
//!   errors inside `200` answers and its per-token limits;
//! - [`gmail`]: profile, messages (`metadata` format, label changes by `modify`), history pages
//!   from a `startHistoryId` filtered by type and label (`404` when too old), new mail on
//!   demand, the per-user rate limit;
//! - [`youtube`]: YouTube's resumable upload (sessions, 256 KiB chunks, `308` + `Range`,
//!   status queries) and its daily quota reset at midnight Pacific;
//! - [`website`]: `robots.txt` (present, missing, unreachable), pages answering conditional
//!   requests with `304`, pages that change or go, big pages and gzip bombs, a sitemap; [`Web`]
//!   puts several sites behind one transport;
//! - [`leaky`]: an API behind nginx's `limit_req` (a leaky bucket: rate, burst, `nodelay`,
//!   `429` with or without `Retry-After`, optionally the IETF `RateLimit` fields);
//! - [`nginx`]: a real nginx on 127.0.0.1 with `limit_req` locations of one's choosing;
//! - [`postgres`]: a real PostgreSQL server on 127.0.0.1, in a throwaway cluster;
//! - [`fault`]: the faults mocks inject ([`fault::Fault`]) and when ([`fault::Trigger`]: the Nth
//!   request to a route, a span of time, a seeded chance); [`log`]: what a mock received;
//! - [`serve`]: any mock on 127.0.0.1, sharing its state with the in-process service;
//! - [`socket`]: a raw HTTP/1.1 server on 127.0.0.1 answering from a script (statuses, hangs,
//!   resets), for real-time socket tests.
//!
//! Each mock is a plain tower `Service<http::Request<B>>`, so it can be a client's transport
//! under a paused clock.
//!
//! [`Web`]: website::Web

pub mod body;
pub mod capture;
pub mod dev;
pub mod drive;
pub mod fault;
pub mod gmail;
pub mod hashnode;
pub mod leaky;
pub mod log;
pub mod nginx;
pub mod oauth;
pub mod postgres;
pub mod serve;
pub mod socket;
pub mod website;
pub mod youtube;
