use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn la() -> WindowCalendar {
    WindowCalendar::new(
        "America/Los_Angeles",
        &["mon-fri 09:00-22:00", "sat 10:00-14:00"],
        &["2026-12-25"],
    )
    .unwrap()
}

#[test]
fn weekly_hours_open_and_close() {
    let c = la();
    // Friday 2026-11-27, PST (UTC-8).
    assert!(c.is_open(ts("2026-11-27T09:00:00-08:00")));
    assert!(c.is_open(ts("2026-11-27T21:59:59-08:00")));
    assert!(!c.is_open(ts("2026-11-27T22:00:00-08:00")));
    assert!(!c.is_open(ts("2026-11-27T08:59:59-08:00")));
    assert_eq!(
        c.next_close(ts("2026-11-27T12:00:00-08:00")),
        Some(ts("2026-11-27T22:00:00-08:00"))
    );
    assert_eq!(c.next_open(ts("2026-11-27T23:00:00-08:00")), Some(ts("2026-11-28T10:00:00-08:00")));
    // Saturday 14:00 → Monday 09:00.
    assert_eq!(c.next_open(ts("2026-11-28T14:00:00-08:00")), Some(ts("2026-11-30T09:00:00-08:00")));
    // When open, next_open is now; when closed, next_close is now.
    let t = ts("2026-11-27T12:00:00-08:00");
    assert_eq!(c.next_open(t), Some(t));
    let t = ts("2026-11-27T23:00:00-08:00");
    assert_eq!(c.next_close(t), Some(t));
}

#[test]
fn holidays_and_closed_spans() {
    let c = la();
    // Friday 2026-12-25 is closed; the next opening is Saturday 10:00.
    assert!(!c.is_open(ts("2026-12-25T12:00:00-08:00")));
    assert_eq!(c.next_open(ts("2026-12-24T23:00:00-08:00")), Some(ts("2026-12-26T10:00:00-08:00")));
    let c = WindowCalendar::new(
        "Europe/Berlin",
        &["daily 00:00-24:00"],
        &["2026-12-24T18:00/2026-12-26T08:00"],
    )
    .unwrap();
    assert_eq!(
        c.next_close(ts("2026-12-24T12:00:00+01:00")),
        Some(ts("2026-12-24T18:00:00+01:00"))
    );
    assert_eq!(c.next_open(ts("2026-12-25T12:00:00+01:00")), Some(ts("2026-12-26T08:00:00+01:00")));
}

#[test]
fn windows_cross_midnight_and_weeks_wrap() {
    // Heavy scraping off-peak: 22:00-06:00 from Friday night to Monday morning.
    let c = WindowCalendar::new("UTC", &["fri-sun 22:00-06:00"], &[]).unwrap();
    assert!(c.is_open(ts("2026-11-28T03:00:00Z"))); // Saturday 03:00, from Friday's window
    assert!(c.is_open(ts("2026-11-30T05:59:00Z"))); // Monday 05:59, from Sunday's window
    assert!(!c.is_open(ts("2026-11-30T06:00:00Z")));
    assert_eq!(c.next_open(ts("2026-11-30T06:00:00Z")), Some(ts("2026-12-04T22:00:00Z")));
    // Across the year end.
    let c = WindowCalendar::new("UTC", &["thu 23:00-01:00"], &[]).unwrap();
    assert_eq!(c.next_close(ts("2026-12-31T23:30:00Z")), Some(ts("2027-01-01T01:00:00Z")));
    assert_eq!(c.next_open(ts("2027-01-01T01:00:00Z")), Some(ts("2027-01-07T23:00:00Z")));
}

#[test]
fn always_and_never() {
    let always = WindowCalendar::always();
    let t = ts("2026-11-28T10:00:00Z");
    assert!(always.is_open(t));
    assert_eq!(always.next_close(t), None);
    let never = WindowCalendar::new("UTC", &[], &[]).unwrap();
    assert_eq!(never.next_open(t), None);
    assert_eq!(never.next_close(t), Some(t));
}

/// America/Los_Angeles: 2026-03-08 02:00 PST → 03:00 PDT; 2026-11-01 02:00 PDT → 01:00 PST.
#[test]
fn dst_in_los_angeles() {
    // An edge in the gap: 02:30 does not exist and becomes 03:30 PDT.
    let c = WindowCalendar::new("America/Los_Angeles", &["sun 02:30-05:00"], &[]).unwrap();
    assert_eq!(c.next_open(ts("2026-03-08T00:00:00-08:00")), Some(ts("2026-03-08T03:30:00-07:00")));
    // The window is 1.5 h that day instead of 2.5 h.
    assert_eq!(
        c.next_close(ts("2026-03-08T03:30:00-07:00")),
        Some(ts("2026-03-08T05:00:00-07:00"))
    );
    // An edge in the fold: 01:30 happens twice; the window opens at the first.
    let c = WindowCalendar::new("America/Los_Angeles", &["sun 01:30-04:00"], &[]).unwrap();
    assert_eq!(c.next_open(ts("2026-11-01T00:00:00-07:00")), Some(ts("2026-11-01T01:30:00-07:00")));
    // ... and stays open through the repeated hour: 3.5 h that day.
    assert_eq!(
        c.next_close(ts("2026-11-01T01:30:00-07:00")),
        Some(ts("2026-11-01T04:00:00-08:00"))
    );
    // Ordinary business hours keep their local meaning on both sides of the change.
    let c = la();
    assert_eq!(c.next_open(ts("2026-03-06T23:00:00-08:00")), Some(ts("2026-03-07T10:00:00-08:00")));
    assert_eq!(c.next_open(ts("2026-03-08T12:00:00-07:00")), Some(ts("2026-03-09T09:00:00-07:00")));
}

/// Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
#[test]
fn dst_in_berlin() {
    let c = WindowCalendar::new("Europe/Berlin", &["sun 02:30-06:00"], &[]).unwrap();
    assert_eq!(c.next_open(ts("2026-03-29T00:00:00+01:00")), Some(ts("2026-03-29T03:30:00+02:00")));
    assert_eq!(c.next_open(ts("2026-10-25T00:00:00+02:00")), Some(ts("2026-10-25T02:30:00+02:00")));
    // A window ending in the fold ends at its first occurrence.
    let c = WindowCalendar::new("Europe/Berlin", &["sun 00:00-02:30"], &[]).unwrap();
    assert_eq!(
        c.next_close(ts("2026-10-25T01:00:00+02:00")),
        Some(ts("2026-10-25T02:30:00+02:00"))
    );
}

#[test]
fn parse_errors_say_which_part_is_wrong() {
    let err = |open: &[&str], closed: &[&str]| {
        WindowCalendar::new("UTC", open, closed).unwrap_err().to_string()
    };
    assert_eq!(
        WindowCalendar::new("Mars/Olympus", &[], &[]).unwrap_err().to_string(),
        "unknown time zone \"Mars/Olympus\": use an IANA name such as \"Europe/Berlin\" or \"UTC\""
    );
    assert!(
        err(&["mon-fri 9-17"], &[]).starts_with("open window \"mon-fri 9-17\": the start is not")
    );
    assert!(err(&["weekdays 09:00-17:00"], &[]).contains("days are mon..sun"));
    assert!(err(&["mon 09:00"], &[]).contains("hours are a range"));
    assert!(err(&["mon 09:00-25:00"], &[]).contains("the end is not a time"));
    assert!(err(&["mon 09:60-10:00"], &[]).contains("the start is not a time"));
    assert!(err(&["mon 09:00-09:00"], &[]).contains("00:00-24:00"));
    assert!(err(&["09:00-17:00"], &[]).contains("expected"));
    assert!(err(&[], &["christmas"]).starts_with("closed entry \"christmas\": expected a date"));
    assert!(err(&[], &["2026-12-26T08:00/2026-12-24T18:00"]).contains("ends before it starts"));
    assert!(err(&[], &["2026-12-24/soon"]).contains("two local date-times"));
}

#[test]
fn day_lists_ranges_and_names() {
    let c = WindowCalendar::new("UTC", &["Monday,wed,FRI 08:00-09:00", "sat-sun 10:00-11:00"], &[])
        .unwrap();
    let open_on = |day: &str, hour: &str| c.is_open(ts(&format!("{day}T{hour}:30:00Z")));
    assert!(open_on("2026-11-23", "08")); // Monday
    assert!(!open_on("2026-11-24", "08")); // Tuesday
    assert!(open_on("2026-11-25", "08") && open_on("2026-11-27", "08"));
    assert!(open_on("2026-11-28", "10") && open_on("2026-11-29", "10"));
}

#[test]
fn specs_parse_from_toml() {
    let spec: CalendarSpec = toml::from_str(
        r#"
        tz = "America/Los_Angeles"
        open = ["mon-fri 09:00-22:00", "sat 10:00-14:00"]
        closed = ["2026-12-25"]
        "#,
    )
    .unwrap();
    assert_eq!(WindowCalendar::try_from(&spec).unwrap(), la());
    let bad: Result<CalendarSpec, _> = toml::from_str("tz = \"UTC\"\nopen = []\nopne = []");
    assert!(bad.unwrap_err().to_string().contains("opne"));
}

fn calendars() -> impl Strategy<Value = WindowCalendar> {
    let window = (1u8..128, 0u16..96, 1u16..96).prop_map(|(days, start, len)| {
        let days: Vec<&str> =
            (0..7).filter(|d| days & (1 << d) != 0).map(|d| DAY_NAMES[d]).collect();
        let (start, end) = (start * 15, (start * 15 + len * 15) % DAY_MINUTES);
        let end = if end == start { (end + 15) % DAY_MINUTES } else { end };
        format!(
            "{} {:02}:{:02}-{:02}:{:02}",
            days.join(","),
            start / 60,
            start % 60,
            end / 60,
            end % 60
        )
    });
    let zone = prop_oneof![
        Just("UTC"),
        Just("America/Los_Angeles"),
        Just("Europe/Berlin"),
        Just("Asia/Kolkata")
    ];
    (zone, proptest::collection::vec(window, 0..4), proptest::collection::vec(0u32..60, 0..3))
        .prop_map(|(tz, open, closed)| {
            let closed: Vec<String> = closed
                .iter()
                .map(|d| {
                    Date::constant(2026, 12, 1)
                        .checked_add(i64::from(*d).days())
                        .unwrap()
                        .to_string()
                })
                .collect();
            let open: Vec<&str> = open.iter().map(String::as_str).collect();
            let closed: Vec<&str> = closed.iter().map(String::as_str).collect();
            WindowCalendar::new(tz, &open, &closed).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `next_open(t)` is open, the second before it (if after `t`) is closed, and samples between
    /// `t` and it are closed; likewise `next_close`. Instants cover DST changes and the year end.
    #[test]
    fn next_open_and_next_close_are_the_edges(c in calendars(), offset in 0i64..(90 * 24 * 3600), samples in proptest::collection::vec(0.0f64..1.0, 20)) {
        let t = ts("2026-11-15T00:00:00Z") + SignedDuration::from_secs(offset);
        if let Some(open) = c.next_open(t) {
            prop_assert!(open >= t);
            prop_assert!(c.is_open(open), "next_open({t}) = {open} is not open");
            let span = open.duration_since(t);
            for s in &samples {
                let between = t + span.mul_f64(*s);
                prop_assert!(between >= open || !c.is_open(between), "{between} is open before {open}");
            }
            if open > t {
                prop_assert!(!c.is_open(open - SignedDuration::from_secs(1)));
            }
        }
        if let Some(close) = c.next_close(t) {
            prop_assert!(close >= t);
            prop_assert!(!c.is_open(close), "next_close({t}) = {close} is open");
            let span = close.duration_since(t);
            for s in &samples {
                let between = t + span.mul_f64(*s);
                prop_assert!(between >= close || c.is_open(between), "{between} is closed before {close}");
            }
        }
    }
}

/// Pacific/Apia skipped 2011-12-30: 23:59:59 on the 29th (UTC-10) was followed by 00:00 on the
/// 31st (UTC+14). The window of the 29th ends at "06:00 the next day", which does not exist and
/// becomes 06:00 on the 31st (the gap rule), 16:00Z on the 30th; every question agrees on that.
#[test]
fn a_zone_that_skipped_a_day_agrees_with_itself() {
    let c = WindowCalendar::new("Pacific/Apia", &["daily 10:00-06:00"], &[]).unwrap();
    let before = ts("2011-12-30T09:00:00Z"); // the 29th, 23:00 local
    assert!(c.is_open(before));
    assert_eq!(c.next_close(before), Some(ts("2011-12-30T16:00:00Z")));
    for t in ["2011-12-30T10:00:00Z", "2011-12-30T12:00:00Z", "2011-12-30T15:59:59Z"] {
        let t = ts(t);
        assert!(c.is_open(t), "{t}");
        assert_eq!(c.next_open(t), Some(t), "{t}");
        assert_eq!(c.next_close(t), Some(ts("2011-12-30T16:00:00Z")), "{t}");
    }
    let after = ts("2011-12-30T16:00:00Z");
    assert!(!c.is_open(after));
    assert_eq!(c.next_open(after), Some(ts("2011-12-30T20:00:00Z"))); // the 31st, 10:00 local
}

/// Near the end of the time library's range, a closed instant is still its own next close, and
/// no question panics at either end.
#[test]
fn the_ends_of_time_give_answers_not_panics() {
    let calendars = [
        la(),
        WindowCalendar::always(),
        WindowCalendar::new("Pacific/Apia", &["daily 10:00-06:00"], &["9999-12-30"]).unwrap(),
        WindowCalendar::new("Pacific/Kiritimati", &["daily 22:00-02:00"], &[]).unwrap(),
        WindowCalendar::new("Pacific/Pago_Pago", &["mon 00:00-24:00"], &["-009999-01-05"]).unwrap(),
    ];
    for c in &calendars {
        for hours in 0..200 {
            for t in [
                Timestamp::MAX - SignedDuration::from_hours(hours),
                Timestamp::MIN + SignedDuration::from_hours(hours),
            ] {
                let open = c.is_open(t);
                if open {
                    assert_eq!(c.next_open(t), Some(t), "{c:?} at {t}");
                } else {
                    assert_eq!(c.next_close(t), Some(t), "{c:?} at {t}");
                }
            }
        }
    }
}

/// Zones that skipped or repeated a whole day, or shift by half an hour or two hours, and when.
const ODD_ZONES: [(&str, &str); 9] = [
    ("Pacific/Apia", "2011-12-30T10:00:00Z"),
    ("Pacific/Fakaofo", "2011-12-30T11:00:00Z"),
    ("Pacific/Kwajalein", "1993-08-21T12:00:00Z"),
    ("Pacific/Kiritimati", "1995-01-01T10:00:00Z"),
    ("Pacific/Kanton", "1995-01-01T11:00:00Z"),
    ("America/Sitka", "1867-10-19T00:30:00Z"),
    ("Asia/Manila", "1844-12-31T16:00:00Z"),
    ("Australia/Lord_Howe", "2026-04-05T15:00:00Z"),
    ("Antarctica/Troll", "2026-03-29T01:00:00Z"),
];

fn odd_calendars() -> impl Strategy<Value = (WindowCalendar, Timestamp)> {
    let window = (1u8..128, 0u16..96, 1u16..96).prop_map(|(days, start, len)| {
        let days: Vec<&str> =
            (0..7).filter(|d| days & (1 << d) != 0).map(|d| DAY_NAMES[d]).collect();
        let (start, end) = (start * 15, (start * 15 + len * 15) % DAY_MINUTES);
        let end = if end == start { (end + 15) % DAY_MINUTES } else { end };
        format!(
            "{} {:02}:{:02}-{:02}:{:02}",
            days.join(","),
            start / 60,
            start % 60,
            end / 60,
            end % 60
        )
    });
    let windows = prop_oneof![
        Just(vec!["daily 10:00-06:00".to_owned()]),
        proptest::collection::vec(window, 1..4),
    ];
    (0..ODD_ZONES.len(), windows, proptest::collection::vec(-3i64..4, 0..2)).prop_map(
        |(zone, open, closed)| {
            let (tz, change) = ODD_ZONES[zone];
            let change = ts(change);
            let day = TimeZone::get(tz).unwrap().to_datetime(change).date();
            let closed: Vec<String> =
                closed.iter().map(|d| day.checked_add(d.days()).unwrap().to_string()).collect();
            let open: Vec<&str> = open.iter().map(String::as_str).collect();
            let closed: Vec<&str> = closed.iter().map(String::as_str).collect();
            (WindowCalendar::new(tz, &open, &closed).unwrap(), change)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `is_open`, `next_open` and `next_close` always agree, in zones whose history has gaps
    /// and folds of a whole day: an open instant is its own next opening and closes at
    /// `next_close`, open until then; a closed one is its own next close and stays closed until
    /// `next_open`.
    #[test]
    fn the_three_questions_agree_across_odd_zone_changes(
        (c, change) in odd_calendars(),
        offset in -(5 * 24 * 3600i64)..(5 * 24 * 3600),
        samples in proptest::collection::vec(0.0f64..1.0, 12),
    ) {
        let t = change + SignedDuration::from_secs(offset);
        let nanosecond = SignedDuration::from_nanos(1);
        if c.is_open(t) {
            prop_assert_eq!(c.next_open(t), Some(t), "{:?} at {}", c, t);
            let close = c.next_close(t);
            prop_assert!(close.is_none_or(|close| close > t), "{:?} at {}: {:?}", c, t, close);
            if let Some(close) = close {
                prop_assert!(!c.is_open(close), "{:?}: next_close({}) = {} is open", c, t, close);
                prop_assert!(c.is_open(close - nanosecond), "{:?}: just before {} is closed", c, close);
                for s in &samples {
                    let between = t + close.duration_since(t).mul_f64(*s);
                    prop_assert!(c.is_open(between), "{:?}: {} closed before {}", c, between, close);
                }
            }
        } else {
            prop_assert_eq!(c.next_close(t), Some(t), "{:?} at {}", c, t);
            let open = c.next_open(t);
            prop_assert!(open.is_none_or(|open| open > t), "{:?} at {}: {:?}", c, t, open);
            if let Some(open) = open {
                prop_assert!(c.is_open(open), "{:?}: next_open({}) = {} is closed", c, t, open);
                prop_assert!(!c.is_open(open - nanosecond), "{:?}: just before {} is open", c, open);
                for s in &samples {
                    let between = t + open.duration_since(t).mul_f64(*s);
                    prop_assert!(!c.is_open(between), "{:?}: {} open before {}", c, between, open);
                }
            }
        }
    }

    /// No instant the time library can hold makes a question panic.
    #[test]
    fn no_instant_panics(c in calendars(), second in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()) {
        let t = Timestamp::from_second(second).unwrap();
        let open = c.is_open(t);
        let _ = (c.next_open(t), c.next_close(t));
        prop_assert_eq!(open, c.next_open(t) == Some(t));
    }
}
