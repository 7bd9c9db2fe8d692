//! Politeness, sans I/O: what `robots.txt` allows (RFC 9309, cached 24 h) and when a host may be
//! asked next.

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use robotxt::Robots;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::api::RobotsAnswer;

/// How long `robots.txt` rules are kept before they are asked for again (RFC 9309 §2.4).
pub const ROBOTS_TTL: Duration = Duration::from_secs(24 * 3600);

/// `robots.txt` of one origin as the store keeps it (an entry of kind `robots`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedRobots {
    /// When it was fetched.
    pub fetched_at: Timestamp,
    /// The rules; `None`: the file was unavailable (`4xx`), so anything may be crawled.
    pub rules: Option<String>,
}

impl CachedRobots {
    fn fresh(&self, now: Timestamp) -> bool {
        unattended_core::clock::duration_between(self.fetched_at, now) < ROBOTS_TTL
            && self.fetched_at <= now
    }

    /// The rules for the crawler `agent` (its group, or `*`): what the engine obeys.
    pub fn robots(&self, agent: &str) -> Robots {
        match &self.rules {
            Some(text) => Robots::parse(text.as_bytes(), agent),
            None => Robots::allow_all(),
        }
    }
}

/// The rules a crawl of one host follows, or why it may not crawl at all.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Crawl by these rules.
    Rules(Robots),
    /// Crawl nothing this time: `robots.txt` is unreachable and nothing is cached.
    Unreachable(String),
}

/// The cached copy, if still fresh: no need to ask.
pub(crate) fn cached(cached: Option<&CachedRobots>, now: Timestamp, agent: &str) -> Option<Robots> {
    cached.filter(|c| c.fresh(now)).map(|c| c.robots(agent))
}

/// What to crawl by after `answer`, given the copy in the store (even a stale one, which RFC
/// 9309 lets a crawler keep while the file is unreachable), and what to store now.
pub(crate) fn after_fetch(
    answer: RobotsAnswer,
    cached: Option<&CachedRobots>,
    now: Timestamp,
    agent: &str,
) -> (Verdict, Option<CachedRobots>) {
    let keep = |rules: Option<String>| {
        let c = CachedRobots { fetched_at: now, rules };
        (Verdict::Rules(c.robots(agent)), Some(c))
    };
    match answer {
        RobotsAnswer::Rules(text) => keep(Some(text_of(&text))),
        RobotsAnswer::Unavailable(_) => keep(None),
        RobotsAnswer::Unreachable { why, .. } => match cached {
            Some(c) => (Verdict::Rules(c.robots(agent)), None),
            None => (Verdict::Unreachable(why), None),
        },
    }
}

fn text_of(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The pace of one host: at most one request in flight (the caller's loop sees to that), and
/// each request `delay` after the end of the one before, so the host sees them at least
/// `delay` apart whatever the network's latency.
#[derive(Clone, Debug)]
pub(crate) struct Pace {
    delay: Duration,
    last_end: Option<Instant>,
}

impl Pace {
    /// A host asked every `delay`.
    pub(crate) fn new(delay: Duration) -> Self {
        Self { delay, last_end: None }
    }

    /// Lengthens the delay to `crawl_delay` if it is longer (the site asked for it).
    pub(crate) fn honour(&mut self, crawl_delay: Option<Duration>) {
        if let Some(d) = crawl_delay {
            self.delay = self.delay.max(d);
        }
    }

    /// When the next request may start.
    pub(crate) fn next_start(&self) -> Option<Instant> {
        self.last_end.map(|t| t + self.delay)
    }

    /// Records that a request ended (its answer came, or it failed) at `now`.
    pub(crate) fn finished(&mut self, now: Instant) {
        self.last_end = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const RULES: &str = "User-agent: pricewatch\nDisallow: /private\nCrawl-delay: 2\n\nUser-agent: *\nDisallow: /\n";

    #[test]
    fn rules_are_kept_a_day_and_match_our_group() {
        let now = t("2026-12-01T10:00:00Z");
        let (verdict, stored) =
            after_fetch(RobotsAnswer::Rules(Bytes::from(RULES)), None, now, "pricewatch");
        let Verdict::Rules(robots) = verdict else { panic!("{verdict:?}") };
        assert!(robots.is_allowed("/shop"));
        assert!(!robots.is_allowed("/private/x"));
        assert_eq!(robots.crawl_delay(), Some(Duration::from_secs(2)));
        let stored = stored.unwrap();
        assert!(cached(Some(&stored), t("2026-12-02T09:59:59Z"), "pricewatch").is_some());
        assert!(cached(Some(&stored), t("2026-12-02T10:00:00Z"), "pricewatch").is_none());
        let other = cached(Some(&stored), now, "otherbot").unwrap();
        assert!(!other.is_allowed("/shop"), "the * group");
    }

    #[test]
    fn unavailable_allows_all_and_unreachable_disallows_unless_cached() {
        let now = t("2026-12-01T10:00:00Z");
        let (v, stored) =
            after_fetch(RobotsAnswer::Unavailable(http::StatusCode::NOT_FOUND), None, now, "a");
        assert!(matches!(v, Verdict::Rules(r) if r.is_allowed("/anything")));
        assert_eq!(stored.unwrap().rules, None);

        let down = || RobotsAnswer::Unreachable { why: "503".into(), disposition: None };
        let (v, stored) = after_fetch(down(), None, now, "a");
        assert!(matches!(v, Verdict::Unreachable(_)));
        assert!(stored.is_none(), "an outage is not cached");

        let old = CachedRobots {
            fetched_at: t("2026-11-01T00:00:00Z"),
            rules: Some("User-agent: *\nDisallow: /x\n".into()),
        };
        let (v, stored) = after_fetch(down(), Some(&old), now, "a");
        assert!(matches!(v, Verdict::Rules(r) if r.is_allowed("/y") && !r.is_allowed("/x")));
        assert!(stored.is_none());
    }

    #[test]
    fn a_pace_spaces_starts() {
        let start = unattended_core::Clock::system().now();
        let mut pace = Pace::new(Duration::from_secs(1));
        assert_eq!(pace.next_start(), None);
        pace.honour(Some(Duration::from_secs(2)));
        pace.honour(Some(Duration::from_millis(500)));
        pace.finished(start);
        assert_eq!(pace.next_start(), Some(start + Duration::from_secs(2)));
    }
}
