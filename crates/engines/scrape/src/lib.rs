//! An engine for the `unattended` runner that watches web pages and reports what changed.
//!
//! A scrape task watches a list of pages (and the pages its sitemaps list) on its schedule,
//! extracts fields from each with CSS selectors (a price, a stock count, a headline), and
//! reports every change since the last look (a page new, changed or gone) to a JSON Lines
//! file, the store, or a webhook, each exactly once.
//!
//! It is a good citizen of the sites it reads:
//!
//! - **`robots.txt`** (RFC 9309, parsed by `robotxt`): the group of its product token, else
//!   `*`; at most 500 KiB read; kept 24 h in the store; `4xx` → anything may be crawled; `5xx`,
//!   `429` or no answer → nothing is, until it answers (a cached copy, even an old one, is used
//!   meanwhile, as the RFC allows).
//! - **one request in flight per host**, each started at least `min_delay` (1 s) or the site's
//!   `Crawl-delay` after the one before ended, hosts crawled side by side;
//! - **pushback**: a `429` or `503` with `Retry-After` pauses that host for every caller in the
//!   client's rate-limit layer; a short pause is waited out inside the call, a long one defers
//!   the host's pages, and the run asks to be run again when the pause ends, the other hosts
//!   done;
//! - **`User-Agent`** with a contact (required), on every request;
//! - **conditional GET**: `If-None-Match` / `If-Modified-Since` from the validators kept per
//!   page, so an unchanged page costs a `304` and no body;
//! - **bounded bodies**: a page bigger than `max_page_bytes` (after decompression, so a gzip
//!   bomb too) is cut there with [`FetchError::TooBig`].
//!
//! Pacing per host is done here, on the runner's [`Clock`](unattended_core::Clock): the
//! client's rate-limit layer can pace requests at one rate for every host, not at each host's
//! `Crawl-delay`.
//!
//! # Resuming
//!
//! A run works through a round (one pass over every page), whose list and done pages are the
//! checkpoint. Each page's outcome is written to the checkpoint before it is applied (its state
//! to the store, its change to the sinks), and every application is idempotent (change ids are
//! derived from the page and its two versions), so a run cut short anywhere, even by `SIGKILL`,
//! resumes at the first page not done, fetches no done page again and reports no change twice.
//!
//! # Example
//!
//! ```toml
//! [tasks.prices]
//! engine = "scrape"
//! every = "1h"
//! user_agent = "pricewatch/1.0 (+https://example.com/bot; ops@example.com)"
//! pages = ["https://shop.example/item/1"]
//! [tasks.prices.fields]
//! price = ".price"
//! [tasks.prices.report]
//! jsonl = "changes.jsonl"
//! ```
//!
//! ```
//! let kinds = unattended_engine_scrape::kinds();
//! assert_eq!(kinds.names().collect::<Vec<_>>(), ["scrape"]);
//! ```

mod api;
mod checkpoint;
mod engine;
mod extract;
mod polite;
mod report;
mod settings;

pub use self::api::{
    FetchError, PageAnswer, ROBOTS_LIMIT, RobotsAnswer, SitemapItem, Validators, fetch_page,
    fetch_robots, fetch_sitemap,
};
pub use self::checkpoint::{Checkpoint, Outgoing, PageState, Round};
pub use self::engine::{ScrapeEngine, WEB, WEBHOOK};
pub use self::extract::{Extractor, Fields, hash};
pub use self::polite::{CachedRobots, ROBOTS_TTL};
pub use self::report::{Change, ChangeKind, Sink};
pub use self::settings::{FieldSpec, ReportSettings, ScrapeSettings};

use unattended_runner::EngineKinds;

/// Adds the `scrape` engine to `kinds`.
pub fn register(kinds: EngineKinds) -> EngineKinds {
    kinds.with("scrape", |settings: ScrapeSettings, setup| ScrapeEngine::new(settings, setup))
}

/// The engines of the `unattended-scrape` binary: `scrape`.
pub fn kinds() -> EngineKinds {
    register(EngineKinds::new())
}
