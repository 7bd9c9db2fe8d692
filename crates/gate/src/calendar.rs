//! When a window is open: weekly hours in a time zone, minus holidays and closed spans.
//!
//! # Daylight-saving time
//!
//! Window edges are local times, turned into instants with the time zone's rules as RFC 5545
//! and Temporal do ("compatible" disambiguation):
//!
//! - a local time that does not exist (in the spring-forward gap) is moved forward by the length
//!   of the gap: on 2026-03-08 in America/Los_Angeles, 02:30 becomes 03:30 PDT;
//! - a local time that happens twice (in the fall-back fold) is the first one: on 2026-11-01 in
//!   America/Los_Angeles, 01:30 is 01:30 PDT, not PST.
//!
//! So a window keeps its local wall-clock meaning on every day of the year, and a day with a
//! change simply has an hour more or less of it.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Weekly windows in a time zone, minus closed dates and spans. A sans-IO value: every question
/// is asked about a given instant.
///
/// ```
/// use unattended_gate::WindowCalendar;
///
/// let hours = WindowCalendar::new(
///     "America/Los_Angeles",
///     &["mon-fri 09:00-22:00", "sat 10:00-14:00"],
///     &["2026-12-25"],
/// )?;
/// let friday_night = "2026-11-27T23:00:00-08:00".parse::<jiff::Timestamp>()?;
/// assert!(!hours.is_open(friday_night));
/// assert_eq!(hours.next_open(friday_night).unwrap().to_string(), "2026-11-28T18:00:00Z"); // sat 10:00
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct WindowCalendar {
    tz: TimeZone,
    tz_name: String,
    weekly: Vec<WeeklyWindow>,
    closed_dates: BTreeSet<Date>,
    closed_spans: Vec<(Timestamp, Timestamp)>,
}

/// Days (bit 0 = Monday) and minutes since midnight; `end <= start` crosses midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WeeklyWindow {
    days: u8,
    start: u16,
    end: u16,
}

/// A calendar description that does not parse: which part, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The time zone is not in the IANA database.
    #[error("unknown time zone {0:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    TimeZone(String),
    /// An `open` entry is wrong.
    #[error("open window {part:?}: {reason}")]
    Open {
        /// The entry as written.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `closed` entry is wrong.
    #[error("closed entry {part:?}: {reason}")]
    Closed {
        /// The entry as written.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MINUTES: u16 = 24 * 60;

impl WindowCalendar {
    /// A calendar in time zone `tz` (an IANA name), open in the `open` windows and closed on the
    /// `closed` entries.
    ///
    /// - `open`: `"<days> <HH:MM>-<HH:MM>"`, days as `mon`…`sun`, ranges (`mon-fri`, `fri-mon`),
    ///   lists (`mon,wed,fri`) or `daily`; `24:00` ends at midnight; an end before the start
    ///   crosses midnight (`22:00-06:00`).
    /// - `closed`: a date (`2026-12-25`, the whole local day) or a local span
    ///   (`2026-12-24T18:00/2026-12-26T08:00`).
    ///
    /// # Errors
    ///
    /// [`CalendarError`] names the entry that does not parse and why.
    pub fn new(tz: &str, open: &[&str], closed: &[&str]) -> Result<Self, CalendarError> {
        let zone = TimeZone::get(tz).map_err(|_| CalendarError::TimeZone(tz.to_owned()))?;
        let weekly = open.iter().map(|part| parse_window(part)).collect::<Result<_, _>>()?;
        let mut calendar = Self {
            tz: zone,
            tz_name: tz.to_owned(),
            weekly,
            closed_dates: BTreeSet::new(),
            closed_spans: Vec::new(),
        };
        for part in closed {
            calendar.parse_closed(part)?;
        }
        calendar.closed_spans.sort();
        Ok(calendar)
    }

    /// A calendar that is always open (a class with no restriction).
    pub fn always() -> Self {
        Self {
            tz: TimeZone::UTC,
            tz_name: "UTC".to_owned(),
            weekly: vec![WeeklyWindow { days: 0x7f, start: 0, end: DAY_MINUTES }],
            closed_dates: BTreeSet::new(),
            closed_spans: Vec::new(),
        }
    }

    /// The time zone's name.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// True if the calendar is open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        self.spans(t, 1).iter().any(|(start, end)| *start <= t && t < *end)
    }

    /// The first instant at or after `t` when the calendar is open (`t` itself if open), or
    /// `None` if it does not open within about two years.
    pub fn next_open(&self, t: Timestamp) -> Option<Timestamp> {
        HORIZONS.iter().find_map(|days| {
            self.spans(t, *days).iter().find(|(_, end)| *end > t).map(|(start, _)| (*start).max(t))
        })
    }

    /// The first instant at or after `t` when the calendar is closed (`t` itself if closed), or
    /// `None` if it stays open for about two years.
    pub fn next_close(&self, t: Timestamp) -> Option<Timestamp> {
        let today = self.date_of(t);
        for days in HORIZONS {
            let spans = self.spans(t, days);
            let Some((_, end)) = spans.iter().find(|(start, end)| *start <= t && t < *end) else {
                return Some(t);
            };
            // A span ending before the first local day not computed is whole.
            let horizon =
                today.checked_add(days.days()).map_or(Timestamp::MAX, |d| self.local(d, 0));
            if *end < horizon {
                return Some(*end);
            }
        }
        None
    }

    /// The open spans that end after `t`, computed over the local days from two days before
    /// `t`'s to `days` days after it: sorted, merged, closures removed.
    ///
    /// Two days back, not one: a window that crosses midnight into a day the zone skipped
    /// (Pacific/Apia, 2011-12-30) ends on the day after, so it can hold instants of a local date
    /// two days after its own.
    fn spans(&self, t: Timestamp, days: i64) -> Vec<(Timestamp, Timestamp)> {
        let today = self.date_of(t);
        let mut open = Vec::new();
        let mut closed = Vec::new();
        let mut date = today.checked_sub(2.days()).unwrap_or(Date::MIN);
        let last = today.checked_add(days.days()).unwrap_or(Date::MAX);
        while date <= last {
            let weekday = date.weekday().to_monday_zero_offset();
            for w in &self.weekly {
                if w.days & (1 << weekday) != 0 {
                    let start = self.local(date, w.start);
                    let end = if w.end > w.start {
                        self.local(date, w.end)
                    } else {
                        date.tomorrow().map_or(Timestamp::MAX, |next| self.local(next, w.end))
                    };
                    if start < end {
                        open.push((start, end));
                    }
                }
            }
            if self.closed_dates.contains(&date) {
                let end = date.tomorrow().map_or(Timestamp::MAX, |next| self.local(next, 0));
                closed.push((self.local(date, 0), end));
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        closed.extend(self.closed_spans.iter().copied());
        subtract(merge(open), &merge(closed)).into_iter().filter(|(_, end)| *end > t).collect()
    }

    fn date_of(&self, t: Timestamp) -> Date {
        self.tz.to_datetime(t).date()
    }

    /// The instant of local `minutes` after midnight on `date` (24:00 is the next midnight).
    fn local(&self, date: Date, minutes: u16) -> Timestamp {
        let (date, minutes) = if minutes >= DAY_MINUTES {
            (date.tomorrow().unwrap_or(date), minutes - DAY_MINUTES)
        } else {
            (date, minutes)
        };
        let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).unwrap_or(Time::MIN);
        // Only the first and last local days of jiff's range fail; they saturate that way.
        let beyond = if date.year() < 0 { Timestamp::MIN } else { Timestamp::MAX };
        self.tz
            .to_ambiguous_timestamp(DateTime::from_parts(date, time))
            .compatible()
            .unwrap_or(beyond)
    }

    fn parse_closed(&mut self, part: &str) -> Result<(), CalendarError> {
        let err = |reason: &str| CalendarError::Closed {
            part: part.to_owned(),
            reason: reason.to_owned(),
        };
        let entry = part.trim();
        if let Some((from, to)) = entry.split_once('/') {
            let parse = |s: &str| {
                s.trim().parse::<DateTime>().map_err(|_| {
                    err("a span is two local date-times, like 2026-12-24T18:00/2026-12-26T08:00")
                })
            };
            let (from, to) = (parse(from)?, parse(to)?);
            let instant = |dt: DateTime| {
                self.tz.to_ambiguous_timestamp(dt).compatible().map_err(|_| err("out of range"))
            };
            let (from, to) = (instant(from)?, instant(to)?);
            if to <= from {
                return Err(err("the span ends before it starts"));
            }
            self.closed_spans.push((from, to));
        } else {
            let date = entry.parse::<Date>().map_err(|_| err("expected a date like 2026-12-25"))?;
            self.closed_dates.insert(date);
        }
        Ok(())
    }
}

/// How far ahead to look, in days, before giving up: a week covers weekly windows; a year and a
/// half covers long runs of holidays.
const HORIZONS: [i64; 3] = [8, 64, 800];

fn parse_window(part: &str) -> Result<WeeklyWindow, CalendarError> {
    let err =
        |reason: &str| CalendarError::Open { part: part.to_owned(), reason: reason.to_owned() };
    let entry = part.trim().to_ascii_lowercase();
    let (days, hours) = entry
        .split_once(char::is_whitespace)
        .ok_or_else(|| err("expected \"<days> <HH:MM>-<HH:MM>\", like \"mon-fri 09:00-17:00\""))?;
    let days = parse_days(days).ok_or_else(|| {
        err("days are mon..sun, ranges like mon-fri, lists like mon,wed, or daily")
    })?;
    let (start, end) =
        hours.trim().split_once('-').ok_or_else(|| err("hours are a range like 09:00-17:00"))?;
    let start = parse_time(start)
        .filter(|m| *m < DAY_MINUTES)
        .ok_or_else(|| err("the start is not a time from 00:00 to 23:59"))?;
    let end = parse_time(end).ok_or_else(|| err("the end is not a time from 00:00 to 24:00"))?;
    if end == start {
        return Err(err("the window is empty (for a whole day write 00:00-24:00)"));
    }
    Ok(WeeklyWindow { days, start, end })
}

fn parse_days(days: &str) -> Option<u8> {
    if matches!(days, "daily" | "*" | "every-day") {
        return Some(0x7f);
    }
    let index = |name: &str| DAY_NAMES.iter().position(|d| *d == name.get(..3).unwrap_or(name));
    let mut mask = 0u8;
    for item in days.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                let mut day = from;
                loop {
                    mask |= 1 << day;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => mask |= 1 << index(item)?,
        }
    }
    (mask != 0).then_some(mask)
}

fn parse_time(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
    let minutes = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minutes <= DAY_MINUTES).then_some(minutes)
}

/// Sorts and merges overlapping or touching spans.
fn merge(mut spans: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `open` minus `closed`; both sorted and merged.
fn subtract(
    open: Vec<(Timestamp, Timestamp)>,
    closed: &[(Timestamp, Timestamp)],
) -> Vec<(Timestamp, Timestamp)> {
    let mut result = Vec::with_capacity(open.len());
    for (mut start, end) in open {
        for &(cs, ce) in closed {
            // An empty closure (a closed date the zone skipped) must not split a span.
            if ce <= cs || ce <= start || cs >= end {
                continue;
            }
            if cs > start {
                result.push((start, cs));
            }
            start = start.max(ce);
        }
        if start < end {
            result.push((start, end));
        }
    }
    result
}

impl fmt::Debug for WindowCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowCalendar")
            .field("tz", &self.tz_name)
            .field("weekly", &self.weekly)
            .field("closed_dates", &self.closed_dates)
            .field("closed_spans", &self.closed_spans)
            .finish()
    }
}

/// A calendar as written in a config file:
/// `{ tz = "America/Los_Angeles", open = ["mon-fri 09:00-22:00"], closed = ["2026-12-25"] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct CalendarSpec {
    /// The IANA time zone.
    pub tz: String,
    /// The weekly windows (see [`WindowCalendar::new`]).
    pub open: Vec<String>,
    /// Closed dates and spans.
    #[cfg_attr(feature = "serde", serde(default))]
    pub closed: Vec<String>,
}

impl TryFrom<&CalendarSpec> for WindowCalendar {
    type Error = CalendarError;

    fn try_from(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let open: Vec<&str> = spec.open.iter().map(String::as_str).collect();
        let closed: Vec<&str> = spec.closed.iter().map(String::as_str).collect();
        Self::new(&spec.tz, &open, &closed)
    }
}

#[cfg(test)]
mod tests;
