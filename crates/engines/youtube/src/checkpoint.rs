//! What a run saves after each step: the upload in hand, where it stands, and why.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The task's checkpoint: at most one upload in hand (videos go one after another).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The video being uploaded, if any.
    pub upload: Option<Upload>,
    /// No session is started before this time (YouTube's quota or upload limit is spent until
    /// midnight Pacific).
    pub paused_until: Option<Timestamp>,
    /// Videos uploaded by this task so far.
    pub uploaded: u64,
    /// Videos moved to `failed/` by this task so far.
    pub failed: u64,
}

/// One video's upload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Upload {
    /// The video's file name in the queue folder.
    pub file: String,
    /// Its size when the upload began.
    pub size: u64,
    /// Its modification time when the upload began (a change means it was rewritten).
    pub modified: Timestamp,
    /// The resumable session's URI (it grants uploads to the session: never logged).
    pub session: Option<String>,
    /// The bytes YouTube confirmed it kept, from the start (its `Range`, not what was sent).
    pub confirmed: u64,
    /// The furthest byte sent in any session (to count the bytes sent again).
    pub sent_to: u64,
    /// Bytes sent more than once (interruptions, short `Range`s, new sessions).
    pub resent: u64,
    /// Sessions started for this video.
    pub sessions: u32,
    /// Why the last session started from byte 0 again, if one did.
    pub restarted: Option<String>,
    /// Interruptions survived (resets, timeouts, 5xx, lost answers).
    pub interruptions: u32,
    /// The video's id, once YouTube has the whole file.
    pub video: Option<String>,
    /// Its `uploadStatus`, once confirmed with `videos.list`.
    pub upload_status: Option<String>,
    /// Why YouTube failed or rejected it (`failureReason` / `rejectionReason`), if it did.
    pub problem: Option<String>,
}

impl Upload {
    /// A new upload of `file`, `size` bytes, modified at `modified`.
    pub fn new(file: String, size: u64, modified: Timestamp) -> Self {
        Self {
            file,
            size,
            modified,
            session: None,
            confirmed: 0,
            sent_to: 0,
            resent: 0,
            sessions: 0,
            restarted: None,
            interruptions: 0,
            video: None,
            upload_status: None,
            problem: None,
        }
    }
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session URI is a credential for the upload: shown only as present.
        f.debug_struct("Upload")
            .field("file", &self.file)
            .field("size", &self.size)
            .field("session", &self.session.as_ref().map(|_| "[present]"))
            .field("confirmed", &self.confirmed)
            .field("resent", &self.resent)
            .field("sessions", &self.sessions)
            .field("restarted", &self.restarted)
            .field("interruptions", &self.interruptions)
            .field("video", &self.video)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("upload", &self.upload)
            .field("paused_until", &self.paused_until)
            .field("uploaded", &self.uploaded)
            .field("failed", &self.failed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_uri_stays_out_of_debug_output() {
        let mut upload = Upload::new("a.mp4".into(), 10, Timestamp::UNIX_EPOCH);
        upload.session = Some("https://www.googleapis.com/upload?upload_id=SECRET".into());
        let cp = Checkpoint { upload: Some(upload), ..Checkpoint::default() };
        let shown = format!("{cp:?}");
        assert!(!shown.contains("SECRET") && shown.contains("[present]"), "{shown}");
        let back: Checkpoint = serde_json::from_value(serde_json::to_value(&cp).unwrap()).unwrap();
        assert_eq!(back, cp);
    }
}
