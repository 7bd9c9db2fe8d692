//! A task's settings: where the queue is and how to upload from it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Chunks other than the last must be multiples of this (256 KiB).
pub const CHUNK_UNIT: u64 = 256 * 1024;

/// A `youtube` task's own keys.
///
/// ```toml
/// [tasks.uploads]
/// engine = "youtube"
/// every = "5m"
/// folder = "videos"        # relative to the config file; done/ and failed/ go inside it
/// chunk_size = "8MiB"      # a multiple of 256 KiB
/// settle = "2m"            # a file changed more recently than this is still being written
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct YoutubeSettings {
    /// The queue folder: each video beside its sidecar `<stem>.toml`.
    pub folder: PathBuf,
    /// Where uploaded videos go (default `<folder>/done`).
    #[serde(default)]
    pub done: Option<PathBuf>,
    /// Where refused videos go (default `<folder>/failed`).
    #[serde(default)]
    pub failed: Option<PathBuf>,
    /// The size of each chunk sent (default 8 MiB): a multiple of 256 KiB, as `"8MiB"`,
    /// `"512KiB"` or a number of bytes. Memory use is about one chunk.
    #[serde(default = "default_chunk", deserialize_with = "de_bytes")]
    pub chunk_size: u64,
    /// A video or sidecar changed more recently than this is taken to be still being written
    /// and is left for a later run (default 2 min).
    #[serde(default = "default_settle", with = "unattended_client::duration")]
    pub settle: Duration,
    /// How long a settled video may wait for its sidecar before it goes to `failed/`
    /// (default 1 h).
    #[serde(default = "default_sidecar_wait", with = "unattended_client::duration")]
    pub sidecar_wait: Duration,
    /// The file extensions taken as videos, lower case (default: YouTube's usual formats).
    #[serde(default = "default_extensions")]
    pub extensions: Vec<String>,
    /// The most videos one run starts (default: no limit).
    #[serde(default)]
    pub max_per_run: Option<u32>,
}

const fn default_chunk() -> u64 {
    8 << 20
}

const fn default_settle() -> Duration {
    Duration::from_secs(120)
}

const fn default_sidecar_wait() -> Duration {
    Duration::from_secs(3600)
}

fn default_extensions() -> Vec<String> {
    ["mp4", "m4v", "mov", "mkv", "webm", "avi", "wmv", "flv", "mpg", "mpeg", "3gp", "mts"]
        .map(str::to_owned)
        .to_vec()
}

impl YoutubeSettings {
    /// Settings for the queue `folder`, every other key at its default.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
            done: None,
            failed: None,
            chunk_size: default_chunk(),
            settle: default_settle(),
            sidecar_wait: default_sidecar_wait(),
            extensions: default_extensions(),
            max_per_run: None,
        }
    }

    /// Refuses settings that cannot work.
    ///
    /// # Errors
    ///
    /// What is wrong, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.chunk_size == 0 || !self.chunk_size.is_multiple_of(CHUNK_UNIT) {
            return Err(format!(
                "`chunk_size` must be a multiple of 256 KiB (262144 bytes), not {}",
                self.chunk_size
            ));
        }
        if usize::try_from(self.chunk_size).is_err() || self.chunk_size > 1 << 30 {
            return Err("`chunk_size` must be at most 1 GiB".to_owned());
        }
        if self.extensions.is_empty() {
            return Err("`extensions` must name at least one".to_owned());
        }
        Ok(())
    }
}

/// A size: a number of bytes, or a string such as `"8MiB"`, `"512 KiB"`, `"1GiB"`.
fn de_bytes<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(de)? {
        Size::Number(n) => Ok(n),
        Size::Text(text) => parse_size(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a size; write bytes or a number with KiB, MiB or GiB"
            ))
        }),
    }
}

/// `"8MiB"` → 8388608; `None` for anything else than a whole number with an optional binary
/// unit.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Some(8 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("262144"), Some(262_144));
        for bad in ["", "8MB", "-1", "1.5MiB", "MiB", "99999999999999999999GiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn chunk_sizes_must_be_multiples_of_256_kib() {
        let mut s = YoutubeSettings::new("q");
        assert!(s.check().is_ok());
        for bad in [0, 1000, CHUNK_UNIT + 1, 2 << 30] {
            s.chunk_size = bad;
            assert!(s.check().is_err(), "{bad}");
        }
        s.chunk_size = CHUNK_UNIT;
        assert!(s.check().is_ok());
    }
}
