//! The retry budget: retries paid for by successes, shared by every clone of a layer.
//!
//! # Why budgets and not only max attempts?
//!
//! "Three attempts per request" is harmless while a service is healthy and ruinous when it is
//! down: every caller triples its load on a service that is already failing, and layered
//! retries multiply (three attempts at each of five layers is 243×). A budget caps retries
//! *in aggregate*, whatever each request's own limit.
//!
//! # Why successes pay, not requests
//!
//! A budget that earns from requests (Finagle's and tower's `TpsBudget`: retries worth 20% of
//! the requests of the last 10 s) cannot tell a flaky host from a dead one, since both receive
//! requests. Tight enough to hold a total outage to 1.2× the load, it is too tight for a host
//! where every fifth request fails (that takes a retry for every fourth success), and callers see
//! failures the host would have answered; loose enough for that, and a dead host gets the
//! retries too.
//!
//! Here, as in gRPC's retry throttling, a success earns a share of a retry (half by default) and
//! a retry spends one. A flaky host earns more than its retries cost; a dead host earns nothing,
//! and once the saved-up retries are spent (10 at most, and the budget starts full) its failures
//! are not retried until successes come back. A total outage therefore costs its calls plus at
//! most the saved-up retries, however long it lasts and whatever came before; the circuit
//! breaker is what stops the calls themselves.
//!
//! The balance is one atomic word, in thousandths of a retry: no lock, no clock, and a success
//! while the balance is full only reads it.

use std::sync::atomic::{AtomicU64, Ordering};

const MILLI: u64 = 1000;

/// The settings of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    pub(crate) max_retries: u32,
    pub(crate) per_success: f64,
}

impl BudgetConfig {
    /// At most 10 retries saved up (the budget starts full), and half a retry earned per
    /// success: a host failing up to a third of its requests keeps all its retries, a dead one
    /// gets 10 in all.
    pub const fn new() -> Self {
        Self { max_retries: 10, per_success: 0.5 }
    }

    /// The most retries saved up, and what the budget starts with (0 to 10,000).
    #[must_use]
    pub const fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The share of a retry each success earns (0 to 10; 0.5 pays one retry per two successes).
    #[must_use]
    pub const fn per_success(mut self, share: f64) -> Self {
        self.per_success = share;
        self
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A retry budget earned by successes, safe to share between threads without locking.
///
/// Call [`record_success`](Self::record_success) for each successful response and
/// [`try_withdraw`](Self::try_withdraw) before each retry.
#[derive(Debug)]
pub struct RetryBudget {
    /// Thousandths of a retry.
    balance: AtomicU64,
    cap: u64,
    earn: u64,
}

impl RetryBudget {
    /// A full budget. The config must be valid (the retry layer's config checks it).
    pub fn new(config: BudgetConfig) -> Self {
        let cap = u64::from(config.max_retries).saturating_mul(MILLI);
        let share = if config.per_success.is_finite() { config.per_success } else { 0.0 };
        Self {
            balance: AtomicU64::new(cap),
            cap,
            earn: (share.clamp(0.0, 10.0) * MILLI as f64).round() as u64,
        }
    }

    /// Records a success: it earns its share of a retry, up to the cap.
    pub fn record_success(&self) {
        // The common case, a full budget, is a read.
        let mut current = self.balance.load(Ordering::Relaxed);
        while current < self.cap && self.earn > 0 {
            let next = current.saturating_add(self.earn).min(self.cap);
            match self.balance.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes one retry from the budget, if it holds one.
    pub fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(MILLI))
            .is_ok()
    }

    /// Whole retries the budget holds.
    pub fn remaining(&self) -> u64 {
        self.balance.load(Ordering::Relaxed) / MILLI
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn budget(max_retries: u32, per_success: f64) -> RetryBudget {
        RetryBudget::new(BudgetConfig::new().max_retries(max_retries).per_success(per_success))
    }

    #[test]
    fn it_starts_full_and_a_dead_host_earns_nothing() {
        let b = budget(10, 0.5);
        assert_eq!(b.remaining(), 10);
        assert_eq!((0..100).filter(|_| b.try_withdraw()).count(), 10);
        assert_eq!(b.remaining(), 0);
    }

    #[test]
    fn successes_pay_their_share_up_to_the_cap() {
        let b = budget(3, 0.5);
        assert_eq!((0..3).filter(|_| b.try_withdraw()).count(), 3);
        b.record_success();
        assert!(!b.try_withdraw(), "half a retry is not a retry");
        b.record_success();
        assert!(b.try_withdraw());
        (0..100).for_each(|_| b.record_success());
        assert_eq!(b.remaining(), 3, "capped");
        // Fractional shares are exact: 0.3 per success pays 3 retries per 10 successes.
        let b = budget(100, 0.3);
        (0..100).for_each(|_| assert!(b.try_withdraw()));
        (0..10).for_each(|_| b.record_success());
        assert_eq!((0..10).filter(|_| b.try_withdraw()).count(), 3);
    }

    /// Every fifth call fails once and is retried: the balance never runs out. A budget of
    /// 20% of requests could not afford it (one retry per four first attempts is 25%).
    #[test]
    fn a_flaky_host_pays_for_its_retries() {
        let b = budget(10, 0.5);
        for n in 1..=100_000u32 {
            if n.is_multiple_of(5) {
                assert!(b.try_withdraw(), "request {n}");
            }
            // The first attempt, or its retry, succeeds.
            b.record_success();
        }
        assert!(b.remaining() >= 9, "{}", b.remaining());
    }

    #[test]
    fn zero_allows_nothing() {
        let b = budget(0, 0.5);
        b.record_success();
        assert!(!b.try_withdraw());
        let b = budget(2, 0.0);
        (0..2).for_each(|_| assert!(b.try_withdraw()));
        (0..100).for_each(|_| b.record_success());
        assert!(!b.try_withdraw());
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let b = Arc::new(budget(10_000, 1.0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..5_000).filter(|_| b.try_withdraw()).count())
            })
            .collect();
        let taken: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!((taken, b.remaining()), (10_000, 0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1_000).for_each(|_| b.record_success()))
            })
            .collect();
        threads.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(b.remaining(), 4_000);
    }
}
