//! Cron expressions over jiff's zoned time.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, Cron, CronDateTime, Resolution, Weekday};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime as Zoned};

/// A cron expression (`"30 2 * * *"`, five fields, or six with seconds first), read by the
/// `croner` crate and evaluated in a time zone with its daylight-saving rules.
///
/// On the days a zone changes its clocks it follows the Open Cron Pattern Specification, as
/// croner does: a fixed time that falls in a gap runs at the first valid time after the gap
/// (`02:30` on a spring-forward night in America/Los_Angeles runs at `03:00`), and a fixed time
/// that happens twice runs once, at its first occurrence. Patterns with wildcard hours or
/// minutes run in real time: skipped in a gap, twice in a fold.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    cron: std::sync::Arc<Cron>,
}

impl CronExpr {
    /// The first occurrence strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let from = Local(after.to_zoned_datetime(tz.clone()));
        self.cron.find_next_occurrence(&from, false).ok().map(|z| z.0.timestamp())
    }

    /// The last occurrence at or before `at`, in `tz`.
    pub fn last_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let from = Local(at.to_zoned_datetime(tz.clone()));
        self.cron.find_previous_occurrence(&from, true).ok().map(|z| z.0.timestamp())
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// An English description (`"At 02:30"`), as croner words it.
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| format!("{text:?} is not a cron expression: {e}"))?;
        // croner reads a field of bare commas (`0 , * * *`) as one that matches no value; such
        // a pattern never runs, and every search for its next time walks a year second by
        // second before it gives up.
        let p = &cron.pattern;
        let fields = [
            ("seconds", &p.seconds),
            ("minutes", &p.minutes),
            ("hours", &p.hours),
            ("day of month", &p.days),
            ("month", &p.months),
            ("day of week", &p.days_of_week),
        ];
        for (name, field) in fields {
            if field.values().is_empty() && !field.has_modifiers() {
                return Err(format!(
                    "{text:?} is not a cron expression: its {name} field matches no value"
                ));
            }
        }
        Ok(Self { text: text.to_owned(), cron: std::sync::Arc::new(cron) })
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.text).finish()
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// A zoned time croner can search over (croner's own jiff support is for an older jiff).
#[derive(Clone)]
struct Local(Zoned);

fn civil(datetime: DateTime) -> CivilDateTime {
    // jiff keeps every part in range, so the unchecked constructors hold.
    CivilDateTime::new(
        CivilDate::from_parts_unchecked(
            i32::from(datetime.year()),
            datetime.month().unsigned_abs().into(),
            datetime.day().unsigned_abs().into(),
        ),
        CivilTime::from_parts_unchecked(
            datetime.hour().unsigned_abs().into(),
            datetime.minute().unsigned_abs().into(),
            datetime.second().unsigned_abs().into(),
        ),
    )
}

fn jiff_datetime(c: CivilDateTime) -> Result<DateTime, CronError> {
    let part = |v: u32| i8::try_from(v).map_err(|_| CronError::InvalidDate);
    let year = i16::try_from(c.year()).map_err(|_| CronError::InvalidDate)?;
    DateTime::new(
        year,
        part(c.month())?,
        part(c.day())?,
        part(c.hour())?,
        part(c.minute())?,
        part(c.second())?,
        0,
    )
    .map_err(|_| CronError::InvalidDate)
}

impl CronDateTime for Local {
    fn to_civil(&self) -> CivilDateTime {
        civil(self.0.datetime())
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(
            self.0.weekday().to_sunday_zero_offset().unsigned_abs().into(),
        )
    }

    fn resolve_civil(&self, c: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let ambiguous = self.0.time_zone().to_ambiguous_zoned_datetime(jiff_datetime(c)?);
        Ok(match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => Resolution::Single(Self(
                ambiguous.unambiguous().map_err(|_| CronError::InvalidTime)?,
            )),
            AmbiguousOffset::Fold { .. } => Resolution::Ambiguous(
                Self(ambiguous.clone().earlier().map_err(|_| CronError::InvalidTime)?),
                Self(ambiguous.later().map_err(|_| CronError::InvalidTime)?),
            ),
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0.checked_add(SignedDuration::from_secs(seconds)).ok().map(Local)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_runs_follow_the_zone() {
        let tz = TimeZone::get("Europe/London").unwrap();
        let e: CronExpr = "30 2 * * *".parse().unwrap();
        // 02:30 BST is 01:30Z in summer, 02:30Z in winter.
        assert_eq!(e.next_after(at("2026-07-01T00:00:00Z"), &tz), Some(at("2026-07-01T01:30:00Z")));
        assert_eq!(e.next_after(at("2026-12-01T00:00:00Z"), &tz), Some(at("2026-12-01T02:30:00Z")));
        assert_eq!(
            e.last_at_or_before(at("2026-12-01T02:30:00Z"), &tz),
            Some(at("2026-12-01T02:30:00Z")),
            "inclusive"
        );
    }

    #[test]
    fn a_time_in_the_gap_runs_after_it_and_a_folded_time_once() {
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        let e: CronExpr = "30 2 * * *".parse().unwrap();
        // 2026-03-08: 02:00 PST jumps to 03:00 PDT; 02:30 does not exist.
        let spring = e.next_after(at("2026-03-08T08:00:00Z"), &la).unwrap();
        assert_eq!(spring, at("2026-03-08T10:00:00Z"), "03:00 PDT, the first time after the gap");
        // 2026-11-01: 02:00 PDT goes back to 01:00 PST; 01:30 happens twice.
        let e: CronExpr = "30 1 * * *".parse().unwrap();
        let first = e.next_after(at("2026-11-01T07:00:00Z"), &la).unwrap();
        assert_eq!(first, at("2026-11-01T08:30:00Z"), "01:30 PDT");
        let next = e.next_after(first, &la).unwrap();
        assert_eq!(next, at("2026-11-02T09:30:00Z"), "not 01:30 PST again the same night");
    }

    #[test]
    fn a_field_that_matches_nothing_is_refused() {
        // Found by fuzzing: each took seconds per search, and never ran.
        for text in
            ["0 , * * *", ", * * * *", "0 0 ,, * *", "0 0 * , *", "0 0 * * ,", "0 0 0 * * ,"]
        {
            let err = text.parse::<CronExpr>().unwrap_err();
            assert!(err.contains("field matches no value"), "{text}: {err}");
        }
        for fine in ["0 0 L * *", "0 0 15W * *", "0 0 * * 5#3", "0 0 * * 5L", "0 0 1,15 * *"] {
            assert!(fine.parse::<CronExpr>().is_ok(), "{fine}");
        }
    }

    #[test]
    fn bad_expressions_say_so() {
        let err = "61 * * * *".parse::<CronExpr>().unwrap_err();
        assert!(err.contains("is not a cron expression"), "{err}");
        assert!("every tuesday".parse::<CronExpr>().is_err());
        let six: CronExpr = "0 */5 * * * *".parse().unwrap();
        let tz = TimeZone::UTC;
        assert_eq!(
            six.next_after(at("2026-01-01T00:00:00Z"), &tz),
            Some(at("2026-01-01T00:05:00Z"))
        );
    }
}
