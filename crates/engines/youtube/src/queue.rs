//! The queue folder: which videos are ready, and moving them to `done/` or `failed/`.
//!
//! A video is ready when it and its sidecar (`<stem>.toml`) have not changed for `settle` (a
//! file still being copied keeps changing). A settled video without a sidecar waits up to
//! `sidecar_wait` for one, then goes to `failed/`. Moves are renames; across file systems
//! (`done/` on another disk) they are a copy to a hidden temporary name beside the destination,
//! flushed, renamed into place, then the source removed, so a crash leaves either the source or
//! a whole destination, never half a video under its own name.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;

use crate::settings::YoutubeSettings;

/// The queue folder and where finished videos go.
#[derive(Clone, Debug)]
pub struct Queue {
    folder: PathBuf,
    done: PathBuf,
    failed: PathBuf,
    extensions: Vec<String>,
    settle: Duration,
    sidecar_wait: Duration,
}

/// A video found in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Settled, with its sidecar.
    Ready {
        /// The file name.
        file: String,
        /// Its size.
        size: u64,
        /// Its modification time.
        modified: Timestamp,
    },
    /// It cannot be uploaded as it is (no sidecar after the wait, two videos for one sidecar,
    /// an empty file): the reason.
    Unusable {
        /// The file name.
        file: String,
        /// Why.
        reason: String,
    },
}

/// A file's size and modification time.
pub(crate) fn stat(path: &Path) -> io::Result<Option<(u64, Timestamp)>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.len(), modified(&meta)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn modified(meta: &fs::Metadata) -> Timestamp {
    // A file system without modification times: as old as can be, so it counts as settled.
    meta.modified()
        .ok()
        .and_then(|t: SystemTime| Timestamp::try_from(t).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Queue {
    /// The queue of `settings`, its paths already resolved.
    pub fn new(settings: &YoutubeSettings) -> Self {
        let folder = settings.folder.clone();
        Self {
            done: settings.done.clone().unwrap_or_else(|| folder.join("done")),
            failed: settings.failed.clone().unwrap_or_else(|| folder.join("failed")),
            folder,
            extensions: settings.extensions.iter().map(|e| e.to_ascii_lowercase()).collect(),
            settle: settings.settle,
            sidecar_wait: settings.sidecar_wait,
        }
    }

    /// The queue folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Where uploaded videos go.
    pub fn done(&self) -> &Path {
        &self.done
    }

    /// Where refused videos go.
    pub fn failed(&self) -> &Path {
        &self.failed
    }

    /// The path of `file` in the queue.
    pub fn path(&self, file: &str) -> PathBuf {
        self.folder.join(file)
    }

    /// The sidecar of `file` (`clip.mp4` → `clip.toml`).
    pub fn sidecar(&self, file: &str) -> PathBuf {
        self.folder.join(format!("{}.toml", stem(file)))
    }

    fn is_video(&self, name: &str) -> bool {
        !name.starts_with('.')
            && Path::new(name)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| self.extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }

    /// The videos of the queue at `now`, in file-name order: the ready ones and the unusable
    /// ones; videos still being written (or waiting for their sidecar) are left out.
    ///
    /// # Errors
    ///
    /// The folder cannot be read.
    pub fn scan(&self, now: Timestamp) -> io::Result<Vec<Found>> {
        let mut videos = BTreeMap::new();
        for entry in fs::read_dir(&self.folder)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if entry.file_type()?.is_file() && self.is_video(&name) {
                videos.insert(name, modified(&entry.metadata()?));
            }
        }
        let mut stems: BTreeMap<String, u32> = BTreeMap::new();
        for name in videos.keys() {
            *stems.entry(stem(name).to_owned()).or_default() += 1;
        }
        let settled = |at: Timestamp, wait: Duration| {
            let wait = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX);
            at.checked_add(wait).is_ok_and(|t| t <= now)
        };
        let mut out = Vec::new();
        for (file, at) in videos {
            if !settled(at, self.settle) {
                continue;
            }
            if stems[stem(&file)] > 1 {
                let reason = format!(
                    "more than one video shares the sidecar {}.toml; rename them apart",
                    stem(&file)
                );
                out.push(Found::Unusable { file, reason });
                continue;
            }
            let Some((_, sidecar_at)) = stat(&self.sidecar(&file))? else {
                if settled(at, self.settle + self.sidecar_wait) {
                    let reason = format!(
                        "no sidecar {}.toml (title, description, privacy…) appeared within {}",
                        stem(&file),
                        jiff::SignedDuration::try_from(self.sidecar_wait)
                            .map(|d| format!("{d:#}"))
                            .unwrap_or_default()
                    );
                    out.push(Found::Unusable { file, reason });
                }
                continue;
            };
            if !settled(sidecar_at, self.settle) {
                continue;
            }
            let Some((size, modified)) = stat(&self.path(&file))? else { continue };
            if size == 0 {
                out.push(Found::Unusable { file, reason: "the file is empty".to_owned() });
                continue;
            }
            out.push(Found::Ready { file, size, modified });
        }
        Ok(out)
    }

    /// Moves `file` and its sidecar to `done/`, after writing `record` beside them; returns the
    /// video's new path. Safe to call again after a crash part-way.
    ///
    /// # Errors
    ///
    /// The folder cannot be made or written.
    pub fn finish_done(&self, file: &str, tag: &str, record: &str) -> io::Result<PathBuf> {
        self.finish(&self.done.clone(), file, tag, "uploaded", record)
    }

    /// Moves `file` and its sidecar (if any) to `failed/`, after writing `record` (the reason)
    /// beside them; returns the video's new path.
    ///
    /// # Errors
    ///
    /// The folder cannot be made or written.
    pub fn finish_failed(&self, file: &str, tag: &str, record: &str) -> io::Result<PathBuf> {
        self.finish(&self.failed.clone(), file, tag, "failed", record)
    }

    fn finish(
        &self,
        dir: &Path,
        file: &str,
        tag: &str,
        kind: &str,
        record: &str,
    ) -> io::Result<PathBuf> {
        fs::create_dir_all(dir)?;
        let name = free_name(dir, file, tag);
        // The record first: a video in done/ or failed/ always has one.
        write_atomically(&dir.join(format!("{name}.{kind}.toml")), record.as_bytes())?;
        let sidecar = self.sidecar(file);
        if sidecar.exists() {
            move_file(&sidecar, &dir.join(format!("{}.toml", stem(&name))))?;
        }
        let to = dir.join(&name);
        let from = self.path(file);
        if from.exists() {
            move_file(&from, &to)?;
        }
        Ok(to)
    }
}

/// `clip.mp4` → `clip`.
pub(crate) fn stem(file: &str) -> &str {
    Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file)
}

/// `file` in `dir`, or `stem (tag).ext` if a different video already has that name.
fn free_name(dir: &Path, file: &str, tag: &str) -> String {
    let taken =
        |name: &str| dir.join(name).exists() || dir.join(format!("{}.toml", stem(name))).exists();
    if !taken(file) {
        return file.to_owned();
    }
    let ext = Path::new(file).extension().and_then(|e| e.to_str());
    let with = |suffix: String| match ext {
        Some(ext) => format!("{} ({suffix}).{ext}", stem(file)),
        None => format!("{file} ({suffix})"),
    };
    let first = with(tag.to_owned());
    if !taken(&first) {
        return first;
    }
    (2..).map(|n| with(format!("{tag} {n}"))).find(|name| !taken(name)).unwrap_or(first)
}

/// Writes `bytes` to `path` through a temporary file, flushed, then renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = hidden_beside(path);
    fs::write(&tmp, bytes)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)
}

fn hidden_beside(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.partial"))
}

/// Renames `from` to `to`; across file systems, copies and removes instead.
pub(crate) fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    move_with(from, to, |a, b| fs::rename(a, b))
}

fn move_with(
    from: &Path,
    to: &Path,
    rename: impl Fn(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    match rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let tmp = hidden_beside(to);
            fs::copy(from, &tmp)?;
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, to)?;
            if let Some(dir) = to.parent() {
                // The new name must survive a power cut before the old one goes.
                let _ = fs::File::open(dir).and_then(|d| d.sync_all());
            }
            fs::remove_file(from)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> YoutubeSettings {
        let mut s = YoutubeSettings::new(dir);
        s.settle = Duration::from_secs(60);
        s.sidecar_wait = Duration::from_secs(600);
        s
    }

    fn touch(path: &Path, bytes: &[u8], at: Timestamp) {
        fs::write(path, bytes).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::try_from(at).unwrap()).unwrap();
    }

    #[test]
    fn only_settled_videos_with_sidecars_are_ready() {
        let dir = tempfile::tempdir().unwrap();
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let ago = |s: i64| now.checked_sub(jiff::SignedDuration::from_secs(s)).unwrap();
        let q = Queue::new(&settings(dir.path()));
        touch(&dir.path().join("a.mp4"), b"aaaa", ago(3600));
        touch(&dir.path().join("a.toml"), b"title = \"a\"", ago(3600));
        // Still being copied.
        touch(&dir.path().join("b.mp4"), b"bb", ago(10));
        touch(&dir.path().join("b.toml"), b"title = \"b\"", ago(3600));
        // Its sidecar is still being written.
        touch(&dir.path().join("c.MOV"), b"cc", ago(3600));
        touch(&dir.path().join("c.toml"), b"title = \"c\"", ago(5));
        // No sidecar yet, but not for long.
        touch(&dir.path().join("d.mkv"), b"dd", ago(120));
        // No sidecar for too long.
        touch(&dir.path().join("e.webm"), b"ee", ago(3600));
        // Not videos.
        touch(&dir.path().join("f.txt"), b"ff", ago(3600));
        touch(&dir.path().join(".g.mp4"), b"gg", ago(3600));
        touch(&dir.path().join("h.mp4.part"), b"hh", ago(3600));
        // Empty.
        touch(&dir.path().join("i.mp4"), b"", ago(3600));
        touch(&dir.path().join("i.toml"), b"title = \"i\"", ago(3600));
        // Two videos, one sidecar.
        touch(&dir.path().join("j.mp4"), b"j1", ago(3600));
        touch(&dir.path().join("j.mov"), b"j2", ago(3600));
        touch(&dir.path().join("j.toml"), b"title = \"j\"", ago(3600));
        fs::create_dir(dir.path().join("k.mp4")).unwrap();

        let found = q.scan(now).unwrap();
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|f| match f {
                Found::Ready { file, .. } => (file.as_str(), true),
                Found::Unusable { file, .. } => (file.as_str(), false),
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a.mp4", true),
                ("e.webm", false),
                ("i.mp4", false),
                ("j.mov", false),
                ("j.mp4", false),
            ]
        );
        assert!(
            matches!(&found[0], Found::Ready { size: 4, modified, .. } if *modified == ago(3600))
        );
        let reasons: Vec<String> = found
            .iter()
            .filter_map(|f| match f {
                Found::Unusable { reason, .. } => Some(reason.clone()),
                Found::Ready { .. } => None,
            })
            .collect();
        assert!(
            reasons[0].contains("no sidecar e.toml") && reasons[0].contains("10m"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("empty"));
        assert!(reasons[2].contains("more than one video shares the sidecar j.toml"));
    }

    #[test]
    fn finishing_moves_the_pair_and_writes_the_record_and_can_be_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(&settings(dir.path()));
        fs::write(dir.path().join("a.mp4"), b"video").unwrap();
        fs::write(dir.path().join("a.toml"), b"title = \"a\"").unwrap();
        let to = q.finish_done("a.mp4", "vid1", "video_id = \"vid1\"\n").unwrap();
        assert_eq!(to, dir.path().join("done/a.mp4"));
        assert_eq!(fs::read(&to).unwrap(), b"video");
        assert!(dir.path().join("done/a.toml").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("done/a.mp4.uploaded.toml")).unwrap(),
            "video_id = \"vid1\"\n"
        );
        assert!(!dir.path().join("a.mp4").exists() && !dir.path().join("a.toml").exists());

        // The same name again (another video): it gets its id beside its name.
        fs::write(dir.path().join("a.mp4"), b"other").unwrap();
        let to = q.finish_done("a.mp4", "vid2", "video_id = \"vid2\"\n").unwrap();
        assert_eq!(to, dir.path().join("done/a (vid2).mp4"));
        assert_eq!(fs::read(dir.path().join("done/a.mp4")).unwrap(), b"video");
        assert!(dir.path().join("done/a (vid2).mp4.uploaded.toml").exists());

        // Failed, without a sidecar; then once more as if after a crash: nothing breaks.
        fs::write(dir.path().join("b.mp4"), b"bad").unwrap();
        q.finish_failed("b.mp4", "1", "reason = \"no sidecar\"\n").unwrap();
        assert!(dir.path().join("failed/b.mp4").exists());
        assert!(dir.path().join("failed/b.mp4.failed.toml").exists());
        assert!(!dir.path().join("b.mp4").exists());
    }

    #[test]
    fn a_move_across_file_systems_copies_then_removes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.mp4");
        let to = dir.path().join("elsewhere.mp4");
        fs::write(&from, b"the video").unwrap();
        let cross = |_: &Path, _: &Path| Err(io::Error::from(io::ErrorKind::CrossesDevices));
        move_with(&from, &to, cross).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"the video");
        assert!(!from.exists());
        assert!(!dir.path().join(".elsewhere.mp4.partial").exists());
        // Other errors are errors.
        fs::write(&from, b"x").unwrap();
        let denied = |_: &Path, _: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(
            move_with(&from, &to, denied).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert!(from.exists());
    }
}
