//! The bodies of the fuzz targets under `fuzz/`, one function per target, each taking the raw
//! input libFuzzer made.
//!
//! Each function feeds its input to a parser's public entry point and panics if the parser
//! panics or breaks one of its promises (a value rendered again parses to the same value, a
//! server's wait is never before now nor past the cap, an error's place is inside the text, no
//! secret in an error). `fuzz/fuzz_targets/*.rs` call them under libFuzzer (`scripts/fuzz.sh`);
//! this crate's tests replay every file of `fuzz/corpus/<target>/` through the same function on
//! stable, so a corpus is a regression suite that cannot drift from its target.

mod headers;
mod parsers;
mod token;

pub use self::headers::{ratelimit, retry_after, x_ratelimit};
pub use self::parsers::{config, cron, front_matter, robots, window, youtube_range};
pub use self::token::oauth_answer;

/// Every target by its name under `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("retry_after", retry_after),
    ("ratelimit", ratelimit),
    ("x_ratelimit", x_ratelimit),
    ("youtube_range", youtube_range),
    ("config", config),
    ("cron", cron),
    ("window", window),
    ("front_matter", front_matter),
    ("robots", robots),
    ("oauth_answer", oauth_answer),
];

/// The instant every target takes as "now": fixed, so a corpus file always does the same.
fn now() -> jiff::Timestamp {
    jiff::Timestamp::constant(1_796_083_200, 0) // 2026-12-01T00:00:00Z
}
