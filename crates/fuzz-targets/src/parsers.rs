//! The text the runner and its engines read: the config file, cron and window expressions,
//! YouTube's `Range`, a post's front matter, `robots.txt`.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use unattended_engine_blog::{Post, Target};
use unattended_engine_scrape::CachedRobots;
use unattended_gate::WindowCalendar;
use unattended_runner::{CronExpr, EngineKinds, RunnerConfig};

use crate::now;

/// Instants the schedules are asked about: now, and the nights America/Los_Angeles moved its
/// clocks in 2026 (a gap on 8 March, a fold on 1 November).
fn instants() -> [Timestamp; 3] {
    [
        now(),
        Timestamp::constant(1_772_963_000, 0), // 2026-03-08T09:43:20Z, in the gap's hour
        Timestamp::constant(1_793_524_000, 0), // 2026-11-01T08:26:40Z, in the fold
    ]
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Line `line` (from 1) exists in `text`, or is the one after its last line break; `cr` says
/// whether a lone `\r` breaks a line too (it does in YAML).
fn check_line(text: &str, line: usize, cr: bool, what: &dyn std::fmt::Debug) {
    let lone_cr = if cr { text.replace("\r\n", "\n").matches('\r').count() } else { 0 };
    let lines = text.split('\n').count() + lone_cr;
    assert!(line >= 1 && line <= lines, "line {line} of {lines} in {what:?}");
}

/// YouTube's `Range` (`bytes=0-N`): the count it gives is at least one byte, and that count
/// written back in either form reads the same.
pub fn youtube_range(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Some(kept) = unattended_engine_youtube::parse_range(text) else { return };
    assert!(kept >= 1, "{text:?} kept {kept}");
    for form in ["bytes=0-", "bytes 0-"] {
        assert_eq!(
            unattended_engine_youtube::parse_range(&format!("{form}{}", kept - 1)),
            Some(kept)
        );
    }
}

/// The engines the `unattended` command knows.
fn kinds() -> EngineKinds {
    let kinds = unattended_engine_command::register(EngineKinds::new());
    let kinds = unattended_engine_scrape::register(kinds);
    let kinds = unattended_engine_email::register(kinds);
    let kinds = unattended_engine_youtube::register(kinds);
    unattended_engine_blog::register(kinds)
}

/// The runner's config (TOML → services and tasks, with every engine's settings): an error is
/// rendered with its places, each inside the text; a config that reads has one task per name.
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match RunnerConfig::parse(text, "/etc/unattended/unattended.toml", &kinds()) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(!e.issues().is_empty(), "an error without a mistake");
            for (line, column) in e.places() {
                check_line(text, line, false, &e);
                assert!(column >= 1);
            }
        }
        Ok(config) => {
            for task in &config.tasks {
                assert_eq!(config.task(&task.name).map(|t| &t.name), Some(&task.name));
                assert_eq!(config.tasks.iter().filter(|t| t.name == task.name).count(), 1);
            }
        }
    }
}

/// A cron expression: occurrences found are after (or at) the instant asked about, in UTC and in
/// a zone with daylight saving; in UTC, the next after one occurrence's previous second is it.
pub fn cron(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(cron) = text.parse::<CronExpr>() else { return };
    assert_eq!(cron.as_str(), text);
    let _ = cron.describe();
    let mut zones = vec![TimeZone::UTC];
    zones.extend(TimeZone::get("America/Los_Angeles").ok());
    for tz in &zones {
        for t in instants() {
            if let Some(next) = cron.next_after(t, tz) {
                assert!(next > t, "{text:?} in {tz:?}: next after {t} is {next}");
            }
            if let Some(last) = cron.last_at_or_before(t, tz) {
                assert!(last <= t, "{text:?} in {tz:?}: last at or before {t} is {last}");
                if *tz == TimeZone::UTC {
                    let before = last - jiff::SignedDuration::from_secs(1);
                    assert_eq!(cron.next_after(before, tz), Some(last), "{text:?} from {before}");
                }
            }
        }
    }
}

/// A gate window: the first line is the zone, then `open` entries, and `closed` ones after a
/// `!`. `is_open`, `next_open` and `next_close` agree at every instant asked about.
pub fn window(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut lines = text.lines();
    let Some(tz) = lines.next() else { return };
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    // A few entries say everything a calendar can; many only make each input slow.
    for line in lines.take(12) {
        match line.strip_prefix('!') {
            Some(entry) => closed.push(entry),
            None => open.push(line),
        }
    }
    let Ok(calendar) = WindowCalendar::new(tz, &open, &closed) else { return };
    for t in instants() {
        let is_open = calendar.is_open(t);
        let next_open = calendar.next_open(t);
        let next_close = calendar.next_close(t);
        if is_open {
            assert_eq!(next_open, Some(t), "{text:?}: open at {t}");
        } else {
            assert_eq!(next_close, Some(t), "{text:?}: closed at {t}");
        }
        if let Some(at) = next_open {
            assert!(at >= t && calendar.is_open(at), "{text:?}: next open after {t} is {at}");
        }
        if let Some(at) = next_close {
            assert!(at >= t && !calendar.is_open(at), "{text:?}: next close after {t} is {at}");
        }
    }
}

/// A Markdown post's front matter: an error's line and column are in the file; a post to
/// publish has a title, and only the targets the task publishes to.
pub fn front_matter(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let targets = [Target::Dev, Target::Hashnode];
    match Post::parse(Path::new("posts/fuzz.md"), "fuzz.md", text, &targets) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let line = usize::try_from(e.line).unwrap_or(usize::MAX);
            check_line(text, line, true, &e);
            assert!(e.column >= 1, "{e:?}");
        }
        Ok(None) => {}
        Ok(Some(post)) => {
            assert!(!post.meta.publish || !post.meta.title.is_empty(), "{post:?}");
            assert!(post.meta.targets.iter().all(|t| targets.contains(t)), "{post:?}");
            assert_eq!(post.hash.len(), 64);
        }
    }
}

/// `robots.txt` as the scrape engine reads it: the first line is the crawler's name, the second
/// a path it asks about, the rest the file. The rules answer, and the cached copy (a store
/// entry, as JSON) comes back as it was saved.
pub fn robots(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let agent = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let file = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let cached = CachedRobots { fetched_at: now(), rules: Some(file) };
    let robots = cached.robots(&agent);
    let _ = robots.is_allowed(&path);
    let _ = robots.is_allowed("/");
    if let Some(delay) = robots.crawl_delay() {
        assert!(delay < Duration::MAX);
    }
    let json = serde_json::to_string(&cached).expect("a cached robots.txt serializes");
    let back: CachedRobots = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back, cached);
}
