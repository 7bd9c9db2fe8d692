//! What reached the services, read from the mocks' own state and the engines' report files, set
//! against what the world was fed: each item done once, still waiting, lost, or duplicated.

use crate::world::World;

/// The fate of one engine's items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Fed.
    pub(crate) fed: usize,
    /// Done exactly once, intact.
    pub(crate) once: usize,
    /// Not done yet, and still where the engine will find them (a queue folder, an inbox).
    pub(crate) waiting: usize,
    /// Done more than once.
    pub(crate) duplicated: usize,
    /// Gone without being done, or done wrong (other bytes).
    pub(crate) lost: usize,
}

impl Tally {
    fn count(&mut self, times: usize, still_there: bool) {
        self.fed += 1;
        match times {
            0 if still_there => self.waiting += 1,
            0 => self.lost += 1,
            1 => self.once += 1,
            _ => self.duplicated += 1,
        }
    }
}

/// The audit of every engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Audit {
    pub(crate) videos: Tally,
    pub(crate) dev: Tally,
    pub(crate) hashnode: Tally,
    pub(crate) mails: Tally,
    pub(crate) changes: Tally,
}

impl Audit {
    /// Reads the mocks and the report files.
    pub(crate) fn of(world: &World) -> Self {
        let m = &world.mocks;
        let mut audit = Self::default();

        let uploads = m.youtube.uploads();
        for (title, sha) in &world.fed.videos {
            let mine: Vec<_> = uploads.iter().filter(|u| &u.title == title).collect();
            let intact = mine.iter().filter(|u| &u.sha256 == sha).count();
            let n = title.trim_start_matches("clip ");
            let queued = world.dir.join("videos").join(format!("clip-{n}.webm")).exists();
            if intact < mine.len() {
                audit.videos.fed += 1;
                audit.videos.lost += 1;
            } else {
                audit.videos.count(intact, queued);
            }
        }

        let (dev, hashnode) = (m.dev.titles(), m.hashnode.titles());
        for title in &world.fed.posts {
            let file_is_there = true; // posts stay in their folder once published
            audit.dev.count(dev.iter().filter(|t| *t == title).count(), file_is_there);
            audit.hashnode.count(hashnode.iter().filter(|t| *t == title).count(), file_is_there);
        }

        let lines = jsonl(&world.dir.join("mail.jsonl"));
        for id in &world.fed.mails {
            // The label is idempotent; the effect that must not repeat is the line written.
            let starred = m.gmail.labels_of(id).is_some_and(|l| l.iter().any(|l| l == "STARRED"));
            let written = lines.iter().filter(|l| l["message"]["id"].as_str() == Some(id)).count();
            audit.mails.count(written, !starred);
        }

        let changes = jsonl(&world.dir.join("changes.jsonl"));
        let mut seen_last: std::collections::BTreeMap<&str, &str> = Default::default();
        for (i, (url, price)) in world.fed.prices.iter().enumerate() {
            // A price set again before a run saw the previous one is one change, not two.
            if seen_last.get(url.as_str()) == Some(&price.as_str()) {
                continue;
            }
            seen_last.insert(url, price);
            let n = changes
                .iter()
                .filter(|c| {
                    c["url"].as_str() == Some(url) && c["fields"]["price"].as_str() == Some(price)
                })
                .count();
            // A price overwritten before any run saw it cannot be recorded: not the watcher's
            // loss, and not counted. The last price of each page must be.
            let overwritten = world.fed.prices[i + 1..].iter().any(|(u, _)| u == url);
            if n == 0 && overwritten {
                continue;
            }
            audit.changes.count(n, true);
        }
        audit
    }

    /// Every tally, named.
    pub(crate) fn rows(&self) -> [(&'static str, &Tally); 5] {
        [
            ("videos uploaded (YouTube)", &self.videos),
            ("posts published (DEV)", &self.dev),
            ("posts published (Hashnode)", &self.hashnode),
            ("mails labelled (Gmail)", &self.mails),
            ("page changes recorded", &self.changes),
        ]
    }

    /// Items lost or done twice, in all.
    pub(crate) fn defects(&self) -> usize {
        self.rows().iter().map(|(_, t)| t.lost + t.duplicated).sum()
    }

    /// Items done twice, in all.
    pub(crate) fn duplicated(&self) -> usize {
        self.rows().iter().map(|(_, t)| t.duplicated).sum()
    }

    /// Items lost, in all.
    pub(crate) fn lost(&self) -> usize {
        self.rows().iter().map(|(_, t)| t.lost).sum()
    }

    /// Items fed, in all.
    pub(crate) fn fed(&self) -> usize {
        self.rows().iter().map(|(_, t)| t.fed).sum()
    }
}

fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use unattended_core::Clock;

    use super::*;
    use crate::world::Cadences;

    fn world(dir: &std::path::Path) -> World {
        let d = Duration::from_secs(1);
        let cadences = Cadences {
            uploads: d,
            mail: d,
            blog: d,
            prices: d,
            jitter: Duration::ZERO,
            attempt: d,
        };
        let clock = Clock::starting_at("2026-03-02T00:00:00Z".parse().unwrap());
        World::new(dir, clock, 1, cadences, Duration::from_secs(3600), false).unwrap()
    }

    #[test]
    fn a_line_written_twice_is_a_duplicate_and_a_video_gone_unuploaded_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = world(dir.path());
        let mail = w.feed_mail();
        let waiting = w.feed_mail();
        w.feed_video().unwrap();
        w.feed_video().unwrap();
        std::fs::remove_file(dir.path().join("videos/clip-002.webm")).unwrap();
        let line = format!("{{\"message\":{{\"id\":\"{mail}\"}}}}\n");
        std::fs::write(dir.path().join("mail.jsonl"), line.repeat(2)).unwrap();

        let audit = Audit::of(&w);
        assert_eq!((audit.mails.fed, audit.mails.duplicated, audit.mails.waiting), (2, 1, 1));
        assert_eq!((audit.videos.waiting, audit.videos.lost), (1, 1), "{:?}", audit.videos);
        assert_eq!(audit.defects(), 2);
        assert!(!waiting.is_empty());
    }

    #[test]
    fn nothing_fed_nothing_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::of(&world(dir.path()));
        assert_eq!((audit.fed(), audit.defects()), (0, 0));
    }
}
