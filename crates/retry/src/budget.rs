//! The retry budget: a cap on retries as a share of requests, shared by every clone of a layer.
//!
//! # Why budgets and not only max attempts?
//!
//! "Three attempts per request" is harmless while a service is healthy and ruinous when it is
//! down: every caller triples its load on a service that is already failing, and layered
//! retries multiply (three attempts at each of five layers is 243×). A budget caps retries
//! *in aggregate*: over a sliding window (10 s by default) retries may add at most a ratio of the
//! requests made (20% by default), so a total outage costs at most 1.2× the normal load. A floor
//! (10 retries per second by default) keeps retries possible for callers that make few
//! requests, where a percentage of almost nothing would be nothing.
//!
//! Unlike Finagle's and tower's `TpsBudget`, where the floor is *added* to the percentage, here
//! it is a floor: a window allows `max(floor, ratio × requests)` retries. That keeps the ratio a
//! real cap once traffic is above the floor. Accounting is in thousandths of a retry, so a
//! ratio like 0.6 allows exactly 6 retries per 10 requests (tower-rs/tower#857 allows 10).
//!
//! The budget reads no clock: callers pass `now`. It takes no lock either: each of its ten
//! buckets is one atomic word holding the bucket's number and its count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 10;
const MILLI: u64 = 1000;

/// The settings of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    pub(crate) window: Duration,
    pub(crate) min_per_sec: u32,
    pub(crate) ratio: f64,
}

impl BudgetConfig {
    /// Finagle's and Linkerd's defaults: a 10 s window, 10 retries per second at least, and
    /// retries worth 20% of requests.
    pub const fn new() -> Self {
        Self { window: Duration::from_secs(10), min_per_sec: 10, ratio: 0.2 }
    }

    /// How long a request or a retry counts (1 to 60 seconds).
    #[must_use]
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries per second allowed whatever the traffic.
    #[must_use]
    pub const fn min_per_sec(mut self, min_per_sec: u32) -> Self {
        self.min_per_sec = min_per_sec;
        self
    }

    /// Retries allowed per request, as a ratio (0.2 = 20%; up to 10).
    #[must_use]
    pub const fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A sliding-window retry budget, safe to share between threads without locking.
///
/// Call [`deposit`](Self::deposit) once per request and [`try_withdraw`](Self::try_withdraw)
/// before each retry. Under concurrency, two withdrawals racing for the last unit may both
/// succeed: the budget is a bound on load, not an exact ledger.
#[derive(Debug)]
pub struct RetryBudget {
    origin: Instant,
    bucket_nanos: u64,
    floor_milli: u64,
    ratio_milli: u64,
    deposits: [AtomicU64; BUCKETS],
    withdrawals: [AtomicU64; BUCKETS],
}

impl RetryBudget {
    /// A budget whose window starts at `origin`. The config must be valid (the retry layer's
    /// config checks it).
    pub fn new(config: BudgetConfig, origin: Instant) -> Self {
        let window = config.window.max(Duration::from_millis(BUCKETS as u64));
        Self {
            origin,
            bucket_nanos: u64::try_from(window.as_nanos() / BUCKETS as u128).unwrap_or(u64::MAX),
            floor_milli: u64::from(config.min_per_sec)
                .saturating_mul(window.as_secs().max(1))
                .saturating_mul(MILLI),
            ratio_milli: (config.ratio.clamp(0.0, 1000.0) * MILLI as f64).round() as u64,
            deposits: Default::default(),
            withdrawals: Default::default(),
        }
    }

    /// Records one request made at `now`.
    pub fn deposit(&self, now: Instant) {
        add(&self.deposits, self.slot(now));
    }

    /// Takes one retry from the budget at `now`, if it allows one.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let slot = self.slot(now);
        let allowed =
            self.floor_milli.max(self.ratio_milli.saturating_mul(sum(&self.deposits, slot)));
        let spent = sum(&self.withdrawals, slot).saturating_add(1).saturating_mul(MILLI);
        if spent > allowed {
            return false;
        }
        add(&self.withdrawals, slot);
        true
    }

    /// Retries the budget would allow at `now`.
    pub fn remaining(&self, now: Instant) -> u64 {
        let slot = self.slot(now);
        let allowed =
            self.floor_milli.max(self.ratio_milli.saturating_mul(sum(&self.deposits, slot)));
        let spent = sum(&self.withdrawals, slot).saturating_mul(MILLI);
        allowed.saturating_sub(spent) / MILLI
    }

    /// The bucket number of `now`, truncated to 32 bits (it wraps after about 13 years, which
    /// only matters if a window is compared across the wrap, and then costs one window).
    fn slot(&self, now: Instant) -> u32 {
        unattended_core::clock::bucket_index(self.origin, now, self.bucket_nanos)
    }
}

/// Adds one to the bucket of `slot`, resetting it first if it holds an older slot.
fn add(buckets: &[AtomicU64; BUCKETS], slot: u32) {
    let bucket = &buckets[slot as usize % BUCKETS];
    let mut current = bucket.load(Ordering::Relaxed);
    loop {
        let next = if (current >> 32) as u32 == slot {
            let count = (current as u32).saturating_add(1);
            (current & !u64::from(u32::MAX)) | u64::from(count)
        } else {
            (u64::from(slot) << 32) | 1
        };
        match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// The counts of the buckets that belong to the window ending at `slot`.
fn sum(buckets: &[AtomicU64; BUCKETS], slot: u32) -> u64 {
    buckets
        .iter()
        .map(|bucket| bucket.load(Ordering::Relaxed))
        .filter(|packed| slot.wrapping_sub((packed >> 32) as u32) < BUCKETS as u32)
        .map(|packed| u64::from(packed as u32))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(min_per_sec: u32, ratio: f64) -> (RetryBudget, Instant) {
        let origin = unattended_core::Clock::system().now();
        let config = BudgetConfig::new()
            .min_per_sec(min_per_sec)
            .ratio(ratio)
            .window(Duration::from_secs(1));
        (RetryBudget::new(config, origin), origin)
    }

    #[test]
    fn fractional_ratio_allows_exactly_its_share() {
        // tower-rs/tower#857: TpsBudget(1 s, 0, 0.6) allows 10 retries for 10 requests.
        let (b, t) = budget(0, 0.6);
        for _ in 0..10 {
            b.deposit(t);
        }
        assert_eq!((0..10).filter(|_| b.try_withdraw(t)).count(), 6);
        let (b, t) = budget(0, 0.25);
        for _ in 0..10 {
            b.deposit(t);
        }
        assert_eq!((0..10).filter(|_| b.try_withdraw(t)).count(), 2);
    }

    #[test]
    fn floor_applies_without_traffic_and_is_not_added_to_the_ratio() {
        let (b, t) = budget(5, 0.2);
        assert_eq!(b.remaining(t), 5);
        for _ in 0..100 {
            b.deposit(t);
        }
        // max(5, 20% of 100) = 20, not 25.
        assert_eq!(b.remaining(t), 20);
        assert_eq!((0..50).filter(|_| b.try_withdraw(t)).count(), 20);
        assert!(!b.try_withdraw(t));
    }

    #[test]
    fn zero_ratio_and_zero_floor_allow_nothing() {
        let (b, t) = budget(0, 0.0);
        b.deposit(t);
        assert!(!b.try_withdraw(t));
    }

    #[test]
    fn the_window_slides() {
        let (b, t) = budget(0, 1.0);
        for _ in 0..10 {
            b.deposit(t);
        }
        assert_eq!(b.remaining(t), 10);
        assert_eq!(b.remaining(t + Duration::from_millis(850)), 10);
        // A full window later the deposits have aged out.
        assert_eq!(b.remaining(t + Duration::from_millis(1000)), 0);
        // Buckets are reused for new slots without mixing old counts in.
        b.deposit(t + Duration::from_millis(1000));
        assert_eq!(b.remaining(t + Duration::from_millis(1000)), 1);
        // Withdrawals age out too.
        let (b, t) = budget(3, 0.0);
        assert_eq!((0..5).filter(|_| b.try_withdraw(t)).count(), 3);
        assert_eq!(b.remaining(t + Duration::from_secs(1)), 3);
    }

    #[test]
    fn concurrent_deposits_are_all_counted() {
        let (b, t) = budget(0, 1.0);
        let b = std::sync::Arc::new(b);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..10_000).for_each(|_| b.deposit(t)))
            })
            .collect();
        threads.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(b.remaining(t), 40_000);
    }
}
