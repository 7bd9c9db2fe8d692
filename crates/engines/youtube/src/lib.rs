//! An engine for the `unattended` runner: YouTube uploads from a queue folder that survive
//! anything.
//!
//! Put a video in the queue folder with a sidecar of the same stem (`talk.mp4` + `talk.toml`:
//! title, description, tags, category, privacy, optional `publish_at`, see [`Metadata`]). A task
//! that runs every few minutes uploads the settled videos one after another with YouTube's
//! resumable protocol; each uploaded video moves to `done/` beside a record of its id
//! (`talk.mp4.uploaded.toml`), and a video YouTube refuses for a reason no retry can fix
//! (invalid metadata, a sidecar that is missing or malformed) moves to `failed/` with the
//! reason (`talk.mp4.failed.toml`).
//!
//! Nothing is uploaded twice, and an interrupted upload goes on from the last byte YouTube
//! confirmed: the session URI and the confirmed offset are the checkpoint, saved after every
//! chunk. After a crash, a reset, a timeout or a `5xx`, the engine asks YouTube where the upload
//! stands and resumes from the answer; a lost final answer is recovered by that question; an
//! expired session starts a new one from byte 0 (the checkpoint says why); a spent quota or
//! upload limit pauses the task until midnight Pacific; revoked credentials disable it until a
//! human re-authorizes, the video staying queued. See `engine.rs` for the run's steps.
//!
//! ```toml
//! [tasks.uploads]
//! engine = "youtube"
//! every = "5m"
//! folder = "videos"
//!
//! [services.youtube]   # optional: the engine's defaults (Google's API, OAuth) apply
//! ```
//!
//! Chunks are a multiple of 256 KiB (`chunk_size`, default 8 MiB), read from the file one at a
//! time: memory use is about one chunk, whatever the video's size.

mod api;
mod checkpoint;
mod engine;
mod progress;
mod queue;
mod settings;
mod sidecar;

pub use self::api::{ApiError, INSERT_PATH, Stored, Video, YoutubeApi, parse_range};
pub use self::checkpoint::{Checkpoint, Upload};
pub use self::engine::{SERVICE, SERVICE_DEFAULTS, YoutubeEngine, next_pacific_midnight};
pub use self::queue::{Found, Queue};
pub use self::settings::{CHUNK_UNIT, YoutubeSettings};
pub use self::sidecar::{Metadata, Privacy};

use unattended_runner::{EngineKinds, EngineSetup};

/// Adds the `youtube` engine to `kinds`.
pub fn register(kinds: EngineKinds) -> EngineKinds {
    kinds.with("youtube", |settings: YoutubeSettings, setup: &EngineSetup| {
        YoutubeEngine::new(settings, setup)
    })
}

/// The engines the `unattended-youtube` binary knows: this one.
pub fn kinds() -> EngineKinds {
    register(EngineKinds::new())
}
