//! The engine: one run uploads the queue's videos one after another, each resumable.
//!
//! A run, step by step (each step saved in the checkpoint before the next `.await`):
//!
//! 1. pick the upload in hand, or the next settled video of the queue (a video that cannot be
//!    uploaded as it is goes to `failed/` with the reason) → **saved: the file**;
//! 2. no session yet: start one (`videos.insert`, resumable) → **saved: session URI**;
//!    quota or upload limit spent → **saved: paused until midnight Pacific**, `RetryAt` then;
//!    metadata refused → `failed/` with YouTube's reason;
//! 3. resuming a session: ask YouTube where it stands (`Content-Range: bytes */N`);
//! 4. send the next chunk from the last byte YouTube *confirmed* → **saved: its `Range`** (which
//!    may be less than was sent); after any interruption (reset, timeout, 5xx, a lost answer)
//!    wait, ask again (3) and go on from the answer; a session gone (`404`/`410`) →
//!    **saved: a new session from byte 0, and why**;
//! 5. the last chunk's answer (or the status query's, when that answer was lost) is the video
//!    → **saved: its id**; confirm it with `videos.list` → **saved: its status**;
//! 6. move the video and its sidecar to `done/` with a record of the id → **saved: done**.
//!
//! A crash anywhere resumes at the step saved: nothing is uploaded twice, and at most the chunk
//! in flight is sent again.

use std::io;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use unattended_core::clock::add_saturating;
use unattended_core::{Disposition, HasDisposition as _};
use unattended_runner::{Engine, EngineSetup, RunSummary, TaskContext, TaskError};

use crate::api::{ApiError, Stored, YoutubeApi};
use crate::checkpoint::{Checkpoint, Upload};
use crate::progress::Meter;
use crate::queue::{Found, Queue, stat};
use crate::settings::YoutubeSettings;
use crate::sidecar::Metadata;

/// The service name the engine asks the runner for.
pub const SERVICE: &str = "youtube";

/// Defaults for the `youtube` service: Google's API, an attempt long enough for a chunk on a
/// slow uplink, OAuth tokens from the refresh token `unattended auth google` saved. Uploads are
/// `POST`/`PUT`, the gate's `write` class (`[services.youtube.gate.write]` limits their hours).
pub const SERVICE_DEFAULTS: &str = r#"
base_url = "https://www.googleapis.com"

[timeouts]
connect = "10s"
attempt = "5m"
overall = "15m"

[retry]
max_attempts = 5

[oauth]
client_id_env = "GOOGLE_CLIENT_ID"
client_secret_env = "GOOGLE_CLIENT_SECRET"
scopes = ["https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly"]
"#;

/// Interruptions in a row, with no byte gained, before a run gives up for now.
const MAX_STRIKES: u32 = 8;
/// New sessions for one video in one run before the run gives up for now.
const MAX_RESTARTS: u32 = 3;
/// The longest a run waits in place after an interruption; longer, it ends and comes back.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// Uploads the videos of a queue folder to YouTube.
#[derive(Clone, Debug)]
pub struct YoutubeEngine {
    settings: YoutubeSettings,
    queue: Queue,
}

/// How one video's upload ended in this run.
enum Sent {
    /// YouTube has the whole file.
    Complete,
    /// It cannot be uploaded: the reason (for `failed/`).
    Refused(String),
    /// It was removed or rewritten: forgotten, to be picked up again once it settles.
    Changed,
    /// The run was asked to stop: resumes from the checkpoint.
    Paused,
}

/// Where a video whose bytes YouTube has ended up.
enum Finished {
    /// In `done/`: its video id.
    Done(String),
    /// In `failed/` (YouTube rejected or failed it after the upload): its file name.
    Failed(String),
}

#[derive(Default)]
struct Tally {
    uploaded: Vec<String>,
    failed: Vec<String>,
    paused: bool,
}

impl YoutubeEngine {
    /// The engine for a task with `settings` (paths resolved against the config's folder).
    ///
    /// # Errors
    ///
    /// The settings cannot work (a chunk size that is not a multiple of 256 KiB).
    pub fn new(mut settings: YoutubeSettings, setup: &EngineSetup) -> Result<Self, String> {
        settings.check()?;
        settings.folder = setup.resolve(&settings.folder);
        settings.done = settings.done.map(|d| setup.resolve(d));
        settings.failed = settings.failed.map(|d| setup.resolve(d));
        Ok(Self { queue: Queue::new(&settings), settings })
    }

    /// The queue it uploads from.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

#[async_trait::async_trait]
impl Engine for YoutubeEngine {
    fn name(&self) -> &str {
        "youtube"
    }

    fn services(&self) -> Vec<String> {
        vec![SERVICE.to_owned()]
    }

    fn service_defaults(&self, service: &str) -> Option<String> {
        (service == SERVICE).then(|| SERVICE_DEFAULTS.to_owned())
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let mut cp: Checkpoint = cx.checkpoint()?.unwrap_or_default();
        if let Some(until) = cp.paused_until {
            if cx.clock().wall() < until {
                return Err(TaskError::retry_at(
                    until,
                    format!("uploads are paused until {until}"),
                )
                .with_help("YouTube's daily quota resets at midnight Pacific time"));
            }
            cp.paused_until = None;
        }
        let client = cx.client(SERVICE)?.clone();
        let api = YoutubeApi::new(&client);
        let mut tally = Tally::default();
        let mut started = 0u32;
        while !cx.is_cancelled() {
            // 1. The upload in hand, or the next video of the queue.
            let up = match cp.upload.clone() {
                Some(up) => up,
                None => {
                    if self.settings.max_per_run.is_some_and(|max| started >= max) {
                        break;
                    }
                    let Some(up) = self.next_video(cx, &mut cp, &mut tally).await? else { break };
                    started += 1;
                    up
                }
            };
            // 2–5. Its bytes, unless YouTube already has them all.
            let sent = match &up.video {
                Some(_) => Sent::Complete,
                None => self.send(cx, &api, &mut cp, up).await?,
            };
            match sent {
                // 5–6. Confirmed, moved to done/.
                Sent::Complete => match self.finish(cx, &api, &mut cp).await? {
                    Finished::Done(id) => tally.uploaded.push(id),
                    Finished::Failed(file) => tally.failed.push(file),
                },
                Sent::Refused(reason) => {
                    let file = cp.upload.as_ref().map(|u| u.file.clone()).unwrap_or_default();
                    self.fail(cx, &mut cp, &file, &reason, &[]).await?;
                    tally.failed.push(file);
                }
                Sent::Changed => {}
                Sent::Paused => tally.paused = true,
            }
        }
        Ok(summary(&tally, &cp))
    }
}

impl YoutubeEngine {
    /// Step 1: the next settled video with a readable sidecar, saved as the upload in hand;
    /// unusable videos on the way go to `failed/`.
    async fn next_video(
        &self,
        cx: &mut TaskContext,
        cp: &mut Checkpoint,
        tally: &mut Tally,
    ) -> Result<Option<Upload>, TaskError> {
        let found = self.queue.scan(cx.clock().wall()).map_err(|e| {
            io_error(&format!("cannot read the queue folder {}", self.queue.folder().display()), &e)
        })?;
        for found in found {
            let (file, size, modified) = match found {
                Found::Ready { file, size, modified } => (file, size, modified),
                Found::Unusable { file, reason } => {
                    self.fail(cx, cp, &file, &reason, &[]).await?;
                    tally.failed.push(file);
                    continue;
                }
            };
            if let Err(reason) = self.metadata(&file) {
                self.fail(cx, cp, &file, &reason, &[]).await?;
                tally.failed.push(file);
                continue;
            }
            let up = Upload::new(file, size, modified);
            cp.upload = Some(up.clone());
            cx.save_checkpoint(&*cp).await?;
            return Ok(Some(up));
        }
        Ok(None)
    }

    /// Steps 2–5 for `up`: until YouTube has the whole file, the run must stop, or the video
    /// turns out unusable.
    async fn send(
        &self,
        cx: &mut TaskContext,
        api: &YoutubeApi<'_>,
        cp: &mut Checkpoint,
        mut up: Upload,
    ) -> Result<Sent, TaskError> {
        let path = self.queue.path(&up.file);
        match stat(&path) {
            Ok(Some((size, modified))) if (size, modified) == (up.size, up.modified) => {}
            Ok(found) => {
                tracing::warn!(file = %up.file, "the video was {} before its upload finished; \
                    it starts again once it settles", if found.is_some() { "changed" } else { "removed" });
                cp.upload = None;
                cx.save_checkpoint(&*cp).await?;
                return Ok(Sent::Changed);
            }
            Err(e) => return Err(io_error(&format!("cannot read {}", path.display()), &e)),
        }
        let content_type = content_type(&up.file);
        let chunk = self.settings.chunk_size;
        let mut meter = Meter::new(&up.file, up.size, up.confirmed, cx.clock());
        let (mut strikes, mut restarts) = (0u32, 0u32);
        // 3. A session from an earlier run: its last chunk's fate is unknown, so ask first.
        let mut ask = up.session.is_some();
        loop {
            if cx.is_cancelled() {
                return Ok(Sent::Paused);
            }
            // 2. A session.
            let Some(session) = up.session.clone() else {
                let meta = match self.metadata(&up.file) {
                    Ok(meta) => meta,
                    Err(reason) => return Ok(Sent::Refused(reason)),
                };
                match api.start(&meta.resource(), up.size, content_type).await {
                    Ok(uri) => {
                        up.session = Some(uri);
                        up.sessions += 1;
                        up.confirmed = 0;
                        save(cx, cp, &up).await?;
                    }
                    Err(ApiError::Refused { reason, message, .. }) => {
                        return Ok(Sent::Refused(format!(
                            "YouTube refused it: {reason}: {message}"
                        )));
                    }
                    Err(e) => return Err(self.stop_for(cx, cp, &up, e).await),
                }
                continue;
            };
            // 3 or 4: ask where it stands, or send the next chunk from the confirmed byte.
            let answer = if ask {
                api.status(&session, up.size).await
            } else {
                let (first, len) = (up.confirmed, chunk.min(up.size - up.confirmed));
                let bytes = match read_chunk(&path, first, len).await {
                    Ok(bytes) => bytes,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
                        ) =>
                    {
                        tracing::warn!(file = %up.file, "the video shrank or vanished while uploading");
                        cp.upload = None;
                        cx.save_checkpoint(&*cp).await?;
                        return Ok(Sent::Changed);
                    }
                    Err(e) => return Err(io_error(&format!("cannot read {}", path.display()), &e)),
                };
                up.resent += (first + len).min(up.sent_to).saturating_sub(first);
                up.sent_to = up.sent_to.max(first + len);
                api.put_chunk(&session, first, bytes, up.size, content_type).await
            };
            let asked = std::mem::replace(&mut ask, false);
            match answer {
                // 5. YouTube has it all (the status query recovers a lost final answer).
                Ok(Stored::Complete(video)) => {
                    up.confirmed = up.size;
                    up.video = Some(video.id);
                    save(cx, cp, &up).await?;
                    meter.show(up.size);
                    cx.progress(up.size, Some(up.size), meter.line(up.size));
                    return Ok(Sent::Complete);
                }
                // A 308 without Range after bytes were kept: make sure before starting over.
                Ok(Stored::Partial(0)) if up.confirmed > 0 && !asked => ask = true,
                Ok(Stored::Partial(kept)) => {
                    if kept > up.confirmed {
                        strikes = 0;
                    } else if kept < up.confirmed {
                        up.restarted = Some(format!(
                            "YouTube kept {kept} of the {} bytes it had confirmed; sending from there",
                            up.confirmed
                        ));
                    }
                    up.confirmed = kept;
                    save(cx, cp, &up).await?;
                    meter.show(kept);
                    cx.progress(kept, Some(up.size), meter.line(kept));
                }
                Err(ApiError::SessionGone(status)) => {
                    restarts += 1;
                    up.restarted = Some(format!(
                        "the upload session was gone ({}) with {} bytes confirmed; a new session \
                         started from byte 0",
                        status.as_u16(),
                        up.confirmed
                    ));
                    up.session = None;
                    up.confirmed = 0;
                    save(cx, cp, &up).await?;
                    if restarts > MAX_RESTARTS {
                        let at = add_saturating(cx.clock().wall(), Duration::from_secs(3600));
                        return Err(TaskError::retry_at(
                            at,
                            "YouTube keeps losing the upload session",
                        ));
                    }
                }
                Err(e) if is_interruption(&e) => {
                    up.interruptions += 1;
                    strikes += 1;
                    save(cx, cp, &up).await?;
                    let now = cx.clock().wall();
                    let wait = interruption_wait(&e, now, strikes);
                    if strikes > MAX_STRIKES || cx.clock().until(wait) > MAX_WAIT {
                        return Err(self.stop_for(cx, cp, &up, e).await);
                    }
                    tracing::info!(file = %up.file, confirmed = up.confirmed, error = %e,
                        "upload interrupted; asking YouTube where it stands");
                    let cancel = cx.cancellation().clone();
                    tokio::select! {
                        () = cx.clock().sleep_until_wall(wait) => {}
                        () = cancel.cancelled() => return Ok(Sent::Paused),
                    }
                    ask = true;
                }
                Err(e) => return Err(self.stop_for(cx, cp, &up, e).await),
            }
        }
    }

    /// Steps 5–6: confirm the video, move it to `done/` with its record, forget the upload.
    async fn finish(
        &self,
        cx: &mut TaskContext,
        api: &YoutubeApi<'_>,
        cp: &mut Checkpoint,
    ) -> Result<Finished, TaskError> {
        let Some(mut up) = cp.upload.clone() else { return Ok(Finished::Done(String::new())) };
        let id = up.video.clone().unwrap_or_default();
        if up.upload_status.is_none() {
            let status = match api.find(&id).await {
                Ok(Some(video)) => {
                    up.problem = video.problem;
                    video.upload_status.unwrap_or_else(|| "uploaded".to_owned())
                }
                // Not listed yet: YouTube said it has the file, under this id.
                Ok(None) => "uploaded".to_owned(),
                Err(ApiError::Client(e)) if matches!(e.disposition(), Disposition::RetryAt(_)) => {
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::warn!(video = %id, error = %e, "could not confirm the video with videos.list");
                    "uploaded".to_owned()
                }
            };
            up.upload_status = Some(status);
            save(cx, cp, &up).await?;
        }
        let status = up.upload_status.as_deref().unwrap_or_default();
        if matches!(status, "failed" | "rejected" | "deleted") {
            // YouTube has the bytes but will not show them (a duplicate, a processing failure):
            // sending them again would not help, so a human decides.
            let why = up.problem.as_deref().unwrap_or("no reason given");
            let what = match status {
                "failed" => "could not process",
                "rejected" => "rejected",
                _ => "deleted",
            };
            let reason = format!(
                "YouTube {what} the video {id} after the upload ({why}); see it in YouTube \
                 Studio, then fix the file or remove it"
            );
            let file = up.file.clone();
            let extra = [("video_id", id.as_str().into()), ("upload_status", status.into())];
            self.fail(cx, cp, &file, &reason, &extra).await?;
            return Ok(Finished::Failed(file));
        }
        let record = toml_record(&[
            ("video_id", id.as_str().into()),
            ("url", format!("https://youtu.be/{id}").into()),
            ("file", up.file.as_str().into()),
            ("bytes", count(up.size)),
            ("upload_status", up.upload_status.clone().unwrap_or_default().into()),
            ("uploaded_at", cx.clock().wall().to_string().into()),
            ("sessions", count(u64::from(up.sessions))),
            ("bytes_sent_again", count(up.resent)),
        ]);
        let (queue, file, tag) = (self.queue.clone(), up.file.clone(), id.clone());
        let moved = blocking(move || queue.finish_done(&file, &tag, &record))
            .await
            .map_err(|e| io_error(&format!("cannot move {} to done/", up.file), &e))?;
        tracing::info!(file = %up.file, video = %id, to = %moved.display(), "uploaded");
        cp.upload = None;
        cp.uploaded += 1;
        cx.save_checkpoint(&*cp).await?;
        Ok(Finished::Done(id))
    }

    /// Moves `file` to `failed/` with `reason`; forgets it if it was the upload in hand.
    async fn fail(
        &self,
        cx: &mut TaskContext,
        cp: &mut Checkpoint,
        file: &str,
        reason: &str,
        extra: &[(&str, toml::Value)],
    ) -> Result<(), TaskError> {
        let now = cx.clock().wall();
        let mut fields = vec![
            ("file", file.into()),
            ("reason", reason.into()),
            ("failed_at", now.to_string().into()),
        ];
        fields.extend(extra.iter().cloned());
        let record = toml_record(&fields);
        let tag = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let (queue, name) = (self.queue.clone(), file.to_owned());
        blocking(move || queue.finish_failed(&name, &tag, &record))
            .await
            .map_err(|e| io_error(&format!("cannot move {file} to failed/"), &e))?;
        tracing::warn!(%file, %reason, "moved to failed/");
        if cp.upload.as_ref().is_some_and(|u| u.file == file) {
            cp.upload = None;
        }
        cp.failed += 1;
        cx.save_checkpoint(&*cp).await?;
        Ok(())
    }

    /// The sidecar of `file`, read and checked.
    fn metadata(&self, file: &str) -> Result<Metadata, String> {
        let path = self.queue.sidecar(file);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("the sidecar {name} cannot be read: {e}"))?;
        Metadata::parse(&text).map_err(|e| format!("the sidecar {name} is not valid: {e}"))
    }

    /// What ends the run for `e`, the checkpoint saved (and the pause until midnight Pacific
    /// when YouTube's quota or upload limit is spent).
    async fn stop_for(
        &self,
        cx: &mut TaskContext,
        cp: &mut Checkpoint,
        up: &Upload,
        e: ApiError,
    ) -> TaskError {
        let now = cx.clock().wall();
        let err = match e {
            ApiError::Quota(_) | ApiError::UploadLimit => {
                let midnight = next_pacific_midnight(now);
                cp.paused_until = Some(midnight);
                TaskError::retry_at(midnight, format!("{e}; uploads resume at {midnight}"))
                    .with_help("YouTube's daily limits reset at midnight Pacific time")
            }
            ApiError::Credentials => TaskError::reauthorize(e.to_string()).with_help(
                "YouTube refused the credentials: run `unattended auth google`, then \
                 `unattended reset TASK`",
            ),
            ApiError::Client(e) => TaskError::from(e),
            ApiError::Status { status, .. } if status.is_client_error() => {
                TaskError::stop(e.to_string())
                    .with_help("check the channel and the API project in Google's console")
            }
            other => TaskError::retry_at(
                add_saturating(now, Duration::from_secs(600)),
                other.to_string(),
            ),
        };
        cp.upload = Some(up.clone());
        if let Err(save) = cx.save_checkpoint(&*cp).await {
            return save;
        }
        err
    }
}

async fn save(cx: &mut TaskContext, cp: &mut Checkpoint, up: &Upload) -> Result<(), TaskError> {
    cp.upload = Some(up.clone());
    cx.save_checkpoint(&*cp).await
}

/// Failures after which asking YouTube where the upload stands may help.
fn is_interruption(e: &ApiError) -> bool {
    match e {
        ApiError::Client(e) => matches!(e.disposition(), Disposition::RetryAt(_)),
        ApiError::Status { status, .. } => {
            status.is_server_error() || *status == http::StatusCode::BAD_REQUEST
        }
        // A chunk refused (its range disagrees with what YouTube kept) or an odd answer.
        ApiError::Refused { .. } | ApiError::Protocol(_) | ApiError::Throttled(_) => true,
        _ => false,
    }
}

/// When to ask again after an interruption: the server's time, else a doubling wait.
fn interruption_wait(e: &ApiError, now: Timestamp, strikes: u32) -> Timestamp {
    if let ApiError::Client(e) = e
        && let Disposition::RetryAt(at) = e.disposition()
        && at > now
    {
        return at;
    }
    add_saturating(now, Duration::from_secs(1 << strikes.min(6)))
}

/// The next midnight in America/Los_Angeles after `now`, when YouTube's daily quotas reset
/// (computed in the zone: the day before a DST change is 23 or 25 hours long).
pub fn next_pacific_midnight(now: Timestamp) -> Timestamp {
    let tz = TimeZone::get("America/Los_Angeles").unwrap_or_else(|_| {
        tracing::warn!("no tz data for America/Los_Angeles; taking UTC-8");
        jiff::tz::offset(-8).to_time_zone()
    });
    now.to_zoned_datetime(tz.clone())
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned_datetime(tz))
        .map_or_else(|_| add_saturating(now, Duration::from_secs(86_400)), |z| z.timestamp())
}

/// The `X-Upload-Content-Type` for a file name.
fn content_type(file: &str) -> &'static str {
    let ext = std::path::Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "wmv" => "video/x-ms-wmv",
        "flv" => "video/x-flv",
        "mpg" | "mpeg" => "video/mpeg",
        "3gp" => "video/3gpp",
        "mts" => "video/mp2t",
        _ => "application/octet-stream",
    }
}

/// `len` bytes of `path` from `offset`, read on the blocking pool (one chunk in memory).
async fn read_chunk(path: &std::path::Path, offset: u64, len: u64) -> io::Result<bytes::Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    let path = path.to_owned();
    blocking(move || {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf)?;
        Ok(bytes::Bytes::from(buf))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(io::Error::other(e)))
}

fn io_error(what: &str, e: &io::Error) -> TaskError {
    TaskError::stop(format!("{what}: {e}")).with_help("check the folder's path and permissions")
}

/// A TOML table of these fields, in this order.
fn toml_record(pairs: &[(&str, toml::Value)]) -> String {
    let table: toml::Table = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    toml::to_string(&table).unwrap_or_default()
}

/// A count as a TOML integer (TOML integers are signed 64-bit).
fn count(n: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn summary(tally: &Tally, cp: &Checkpoint) -> RunSummary {
    let mut note = format!("uploaded {}", tally.uploaded.len());
    if !tally.uploaded.is_empty() {
        note.push_str(&format!(" ({})", tally.uploaded.join(", ")));
    }
    if !tally.failed.is_empty() {
        note.push_str(&format!("; failed {} ({})", tally.failed.len(), tally.failed.join(", ")));
    }
    if let Some(up) = &cp.upload {
        let state = if tally.paused { "paused at" } else { "at" };
        note.push_str(&format!("; {} {state} byte {} of {}", up.file, up.confirmed, up.size));
    }
    RunSummary::new().items(tally.uploaded.len() as u64).note(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn midnight_pacific_in_the_zone() {
        // 23:50 PST on 27 November → 00:00 PST on 28 November (08:00 UTC).
        assert_eq!(next_pacific_midnight(at("2026-11-28T07:50:00Z")), at("2026-11-28T08:00:00Z"));
        // Just after midnight: the next one, a whole day later.
        assert_eq!(next_pacific_midnight(at("2026-11-28T08:00:01Z")), at("2026-11-29T08:00:00Z"));
        // 8 March 2026 springs forward: that day has 23 hours, so from 00:30 PST the next
        // midnight is 22 h 30 min later, at 07:00 UTC (PDT), not 23 h 30 min.
        let start = at("2026-03-08T08:30:00Z");
        let next = next_pacific_midnight(start);
        assert_eq!(next, at("2026-03-09T07:00:00Z"));
        assert_eq!(
            jiff::SignedDuration::from_secs(next.as_second() - start.as_second()).as_secs(),
            81_000
        );
        // 1 November 2026 falls back: a 25-hour day.
        assert_eq!(next_pacific_midnight(at("2026-11-01T07:00:00Z")), at("2026-11-02T08:00:00Z"));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.MP4"), "video/mp4");
        assert_eq!(content_type("a.mov"), "video/quicktime");
        assert_eq!(content_type("a.weird"), "application/octet-stream");
    }

    #[test]
    fn records_are_toml() {
        // An all-digit id stays a string; counts are integers.
        let text = toml_record(&[("video_id", "12345".into()), ("bytes", count(12))]);
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["video_id"].as_str(), Some("12345"));
        assert_eq!(back["bytes"].as_integer(), Some(12));
        assert_eq!(count(u64::MAX).as_integer(), Some(i64::MAX));
    }
}
