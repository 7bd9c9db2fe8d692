//! The one place that reads time.
//!
//! # Why wall time is derived from tokio's clock
//!
//! `tokio::time::pause` (and `#[tokio::test(start_paused = true)]`) pauses only tokio's own
//! [`Instant`]: `std::time::Instant`, `SystemTime` and `jiff::Timestamp::now()` keep running.
//! Token expiry, `Retry-After` dates and time windows are wall-clock questions, so a clock that
//! read the system wall time could never be tested under a paused runtime. A [`Clock`] instead
//! fixes one wall instant against one tokio instant when it is made and derives every later wall
//! reading from tokio's clock:
//!
//! ```text
//! wall() = anchor_wall + (tokio::time::Instant::now() - anchor_instant)
//! ```
//!
//! So a paused test controls wall time too, and a clock can start at any wall instant, for
//! example a minute before a daylight-saving change.
//!
//! The price: in production, wall time is monotonic from the moment the clock was made. A step of
//! the system clock (NTP correction) is not followed, and on Linux time spent suspended is not
//! counted by the monotonic clock. Long-running processes that care can make a fresh
//! [`Clock::system`] now and then; clocks are cheap `Copy` values.

use std::future::Future;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::{Instant, Sleep};

/// A source of time that a paused tokio runtime controls completely.
///
/// Every clock read and every sleep in the workspace goes through a `Clock`:
/// [`now`](Clock::now) for measuring durations, [`wall`](Clock::wall) for calendar time, and
/// [`sleep_until`](Clock::sleep_until) / [`sleep`](Clock::sleep) for waiting.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use unattended_core::Clock;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = Clock::starting_at("2026-03-08T09:59:00Z".parse().unwrap());
/// clock.sleep(Duration::from_secs(60)).await; // returns at once: the runtime is paused
/// assert_eq!(clock.wall().to_string(), "2026-03-08T10:00:00Z");
/// # }
/// ```
///
/// # Clone
///
/// A `Clock` is a small `Copy` value; copies agree with each other because they share the same
/// anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    anchor_wall: Timestamp,
    anchor_instant: Instant,
}

impl Clock {
    /// A clock whose wall time starts at the system's current time.
    #[allow(clippy::disallowed_methods)] // the single sanctioned read of the system clock
    pub fn system() -> Self {
        Self { anchor_wall: Timestamp::now(), anchor_instant: Instant::now() }
    }

    /// A clock whose wall time is `wall` now and moves with tokio's clock from here on.
    ///
    /// Use it in tests to start at a chosen instant: with a paused runtime, the wall time then
    /// changes only when tokio's clock is advanced.
    #[allow(clippy::disallowed_methods)]
    pub fn starting_at(wall: Timestamp) -> Self {
        Self { anchor_wall: wall, anchor_instant: Instant::now() }
    }

    /// Parses `start` (an RFC 3339 timestamp such as `2026-03-08T09:59:00Z`, or a zoned date time
    /// such as `2026-03-08T01:59:00-08:00[America/Los_Angeles]`) and starts a clock there.
    ///
    /// # Errors
    ///
    /// Returns the parse error when `start` is neither form.
    pub fn parse_start(start: &str) -> Result<Self, jiff::Error> {
        let wall = match start.parse::<Timestamp>() {
            Ok(ts) => ts,
            Err(err) => match start.parse::<jiff::ZonedDateTime>() {
                Ok(zoned) => zoned.timestamp(),
                Err(_) => return Err(err),
            },
        };
        Ok(Self::starting_at(wall))
    }

    /// The current monotonic instant (tokio's clock, so a paused runtime controls it).
    #[allow(clippy::disallowed_methods, clippy::unused_self)]
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// The current wall-clock time.
    pub fn wall(&self) -> Timestamp {
        self.wall_at(self.now())
    }

    /// The wall-clock time at monotonic instant `at` (which may lie in the past or the future).
    pub fn wall_at(&self, at: Instant) -> Timestamp {
        if at >= self.anchor_instant {
            add_saturating(self.anchor_wall, at - self.anchor_instant)
        } else {
            sub_saturating(self.anchor_wall, self.anchor_instant - at)
        }
    }

    /// The monotonic instant at which the wall clock will read (or read) `wall`.
    ///
    /// Instants before the clock's anchor are clamped to the anchor: they are in the past either
    /// way, and waiting for them returns at once.
    pub fn instant_at(&self, wall: Timestamp) -> Instant {
        let offset = wall.duration_since(self.anchor_wall);
        if offset.is_negative() {
            return self.anchor_instant;
        }
        let offset = Duration::try_from(offset).unwrap_or(Duration::MAX);
        after(self.anchor_instant, offset)
    }

    /// How long from now until the wall clock reads `wall`; zero if that is already past.
    pub fn until(&self, wall: Timestamp) -> Duration {
        duration_between(self.wall(), wall)
    }

    /// A future that completes at monotonic instant `deadline`.
    #[allow(clippy::disallowed_methods, clippy::unused_self)]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        tokio::time::sleep_until(deadline)
    }

    /// A future that completes after `duration` (saturating far in the future for huge values).
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(after(self.now(), duration))
    }

    /// Runs `future` with a time limit of `duration` on this clock.
    #[allow(clippy::disallowed_methods, clippy::unused_self)]
    pub fn timeout<F: Future>(&self, duration: Duration, future: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(duration, future)
    }

    /// A future that completes when the wall clock reads `wall`.
    pub fn sleep_until_wall(&self, wall: Timestamp) -> impl Future<Output = ()> + Send + 'static {
        self.sleep(self.until(wall))
    }
}

impl Default for Clock {
    /// The system clock, as [`Clock::system`].
    fn default() -> Self {
        Self::system()
    }
}

/// The number of whole buckets of `bucket_nanos` from `origin` to `now` (zero before `origin`),
/// truncated to 32 bits: the slot of `now` in a ring of time buckets.
///
/// In 64-bit arithmetic: it runs on every call of the layers that keep time windows, where a
/// 128-bit division (`Duration::as_nanos() / n`) costs several times more. Elapsed times over
/// 584 years saturate.
pub fn bucket_index(origin: Instant, now: Instant, bucket_nanos: u64) -> u32 {
    let elapsed = now.saturating_duration_since(origin);
    let nanos = elapsed
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(elapsed.subsec_nanos()));
    // Truncation wanted: rings compare slot numbers modulo 2^32.
    (nanos / bucket_nanos.max(1)) as u32
}

/// `to - from` as a non-negative duration: zero when `to` is not after `from`.
pub fn duration_between(from: Timestamp, to: Timestamp) -> Duration {
    let span: SignedDuration = to.duration_since(from);
    if span.is_negative() {
        Duration::ZERO
    } else {
        Duration::try_from(span).unwrap_or(Duration::MAX)
    }
}

/// `ts + d`, clamped to [`Timestamp::MAX`].
pub fn add_saturating(ts: Timestamp, d: Duration) -> Timestamp {
    ts.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// `ts - d`, clamped to [`Timestamp::MIN`].
pub fn sub_saturating(ts: Timestamp, d: Duration) -> Timestamp {
    ts.saturating_sub(d).unwrap_or(Timestamp::MIN)
}

/// `duration` after `from`, or about 30 years after it ("never" for any timer) when that would
/// overflow `Instant`.
fn after(from: Instant, duration: Duration) -> Instant {
    from.checked_add(duration).unwrap_or_else(|| far_future(from))
}

/// About 30 years after `from`: "never" for any timer, without overflowing `Instant`.
fn far_future(from: Instant) -> Instant {
    const THIRTY_YEARS: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    from.checked_add(THIRTY_YEARS).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_index_matches_the_exact_division() {
        let origin = Clock::system().now();
        let bucket = 6_000_000_000; // 6 s
        for secs in [0, 1, 5, 6, 7, 59, 60, 3_600, 86_400 * 365 * 30] {
            for nanos in [0, 1, 999_999_999] {
                let elapsed = Duration::new(secs, nanos);
                let exact = (elapsed.as_nanos() / u128::from(bucket)) as u32;
                assert_eq!(bucket_index(origin, origin + elapsed, bucket), exact, "{elapsed:?}");
            }
        }
        assert_eq!(bucket_index(origin + Duration::from_secs(10), origin, bucket), 0);
        // A zero-length bucket counts nanoseconds rather than dividing by zero.
        assert_eq!(bucket_index(origin, origin + Duration::from_nanos(5), 0), 5);
        // Slots wrap at 2^32, as the rings expect.
        let wrap = Duration::from_nanos((1 << 32) + 3);
        assert_eq!(bucket_index(origin, origin + wrap, 1), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_tokio_advance() {
        let clock = Clock::starting_at(ts("2026-11-28T10:00:00Z"));
        assert_eq!(clock.wall(), ts("2026-11-28T10:00:00Z"));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.wall(), ts("2026-11-28T10:01:30Z"));
        tokio::time::advance(Duration::from_secs(3 * 7 * 24 * 3600)).await;
        assert_eq!(clock.wall(), ts("2026-12-19T10:01:30Z"));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_moves_wall_time_under_paused_clock() {
        let clock = Clock::parse_start("2026-03-08T01:59:00-08:00[America/Los_Angeles]").unwrap();
        clock.sleep(Duration::from_secs(60)).await;
        let zoned = clock.wall().in_tz("America/Los_Angeles").unwrap();
        // 02:00 does not exist on this day: the clock jumps to 03:00 PDT.
        assert_eq!(zoned.to_string(), "2026-03-08T03:00:00-07:00[America/Los_Angeles]");
    }

    #[tokio::test(start_paused = true)]
    async fn copies_agree_and_instants_round_trip() {
        let clock = Clock::starting_at(ts("2026-11-28T10:00:00Z"));
        let copy = clock;
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.wall(), copy.wall());
        let at = clock.instant_at(ts("2026-11-28T10:00:05Z"));
        assert_eq!(at - clock.now(), Duration::from_millis(3500));
        assert_eq!(clock.wall_at(at), ts("2026-11-28T10:00:05Z"));
        assert_eq!(clock.until(ts("2026-11-28T10:00:05Z")), Duration::from_millis(3500));
        assert_eq!(clock.until(ts("2026-11-28T09:00:00Z")), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_wall_wakes_at_that_wall_time() {
        let clock = Clock::starting_at(ts("2026-11-28T10:00:00Z"));
        clock.sleep_until_wall(ts("2026-11-28T11:00:00Z")).await;
        assert_eq!(clock.wall(), ts("2026-11-28T11:00:00Z"));
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_inputs_saturate_instead_of_panicking() {
        let clock = Clock::starting_at(ts("2026-11-28T10:00:00Z"));
        drop(clock.sleep(Duration::MAX));
        let _ = clock.instant_at(Timestamp::MAX);
        assert_eq!(clock.instant_at(Timestamp::MIN), clock.now());
        assert_eq!(add_saturating(Timestamp::MAX, Duration::MAX), Timestamp::MAX);
        assert_eq!(sub_saturating(Timestamp::MIN, Duration::MAX), Timestamp::MIN);
        assert!(clock.wall_at(clock.now() + Duration::from_secs(1)) > clock.wall());
    }

    #[test]
    fn parse_start_rejects_garbage() {
        assert!(Clock::parse_start("next tuesday").is_err());
    }
}
