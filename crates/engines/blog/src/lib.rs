//! An engine for the `unattended` runner that publishes a folder of Markdown posts to DEV
//! (Forem) and Hashnode, keeps the copies in step when a file changes, and cross-posts the way
//! writers do: first on the primary target, then on the others with `canonical_url` pointing
//! at the primary's copy.
//!
//! A post is never published twice, even when the server created the article and its answer
//! was lost: before every create the intent is saved in the store, and after a
//! failure that may have been applied (a timeout, a reset, a body cut short, DEV's "already
//! taken") the target is searched for the marker the engine puts at the end of every copy's
//! body (an HTML comment readers do not see) before anything is created there again.
//!
//! ```toml
//! [services.dev.gate.write]       # publish in the day only (optional)
//! tz = "Europe/London"
//! open = ["daily 09:00-22:00"]
//!
//! [tasks.blog]
//! engine = "blog"
//! every = "15m"
//! folder = "posts"
//! targets = ["dev", "hashnode"]   # the primary first
//! hashnode_publication = "6650a1…"
//! ```
//!
//! - [`post`]: a post's front matter (title, tags, series, cover image, targets,
//!   `publish: true`), parsed with `serde-saphyr`; a bad file is reported with its line and
//!   left out, the others go on.
//! - [`api`]: the typed calls, [`Dev`](api::Dev) and [`Hashnode`](api::Hashnode), and
//!   [`ApiError`](api::ApiError) (Hashnode's errors in `200` answers read into the same
//!   dispositions as the client's).
//! - [`checkpoint`]: where every copy stands ([`CopyState`]), one store entry per post.
//! - A target that is down is skipped for the run (degraded) while the other still gets the
//!   post; refused credentials, or a `hashnode_publication` that is not there, disable the task
//!   with one alert that says what to fix; writes are paced per target (DEV allows about one a
//!   second).

pub mod api;
pub mod checkpoint;
mod engine;
pub mod post;
pub mod settings;
mod sync;

pub use self::checkpoint::{CopyState, LastCreate, Ledger, POST_ENTRY, PostRecord};
pub use self::engine::BlogEngine;
pub use self::post::{Post, PostError};
pub use self::settings::{BlogSettings, Pace, Target};

/// Adds the `blog` engine to `kinds`, made from a task's [`BlogSettings`].
pub fn register(kinds: unattended_runner::EngineKinds) -> unattended_runner::EngineKinds {
    kinds.with("blog", BlogEngine::new)
}

/// The engines of the `unattended-blog` binary: `blog` alone.
pub fn kinds() -> unattended_runner::EngineKinds {
    register(unattended_runner::EngineKinds::new())
}
