//! Gmail's quota units, paced: at most N units in any minute.
//!
//! Gmail counts units per user per minute (`messages.get` 5, `history.list` 2, ...) and answers
//! `403 userRateLimitExceeded` past the limit. Spending them evenly keeps a task under the limit
//! instead of learning it from refusals. The window is a sans-IO core: it is given `now`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The span Gmail counts units over.
const MINUTE: Duration = Duration::from_secs(60);

/// Units spent in the last minute, and the limit.
#[derive(Debug)]
pub(crate) struct QuotaWindow {
    limit: u32,
    spent: VecDeque<(Instant, u32)>,
    used: u32,
}

impl QuotaWindow {
    /// A window allowing `limit` units per minute (at least 1).
    pub(crate) fn new(limit: u32) -> Self {
        Self { limit: limit.max(1), spent: VecDeque::new(), used: 0 }
    }

    /// Spends `cost` units at `now` if they fit in the minute before it; otherwise the instant
    /// at which they will (nothing is spent then).
    pub(crate) fn take(&mut self, now: Instant, cost: u32) -> Result<(), Instant> {
        while let Some(&(at, units)) = self.spent.front() {
            if at + MINUTE > now {
                break;
            }
            self.spent.pop_front();
            self.used -= units;
        }
        let cost = cost.min(self.limit);
        if self.used + cost <= self.limit {
            self.spent.push_back((now, cost));
            self.used += cost;
            return Ok(());
        }
        // Enough of the oldest spending must leave the window for `cost` to fit.
        let mut freed = self.limit - self.used;
        for &(at, units) in &self.spent {
            freed += units;
            if freed >= cost {
                return Err(at + MINUTE);
            }
        }
        Err(now + MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        unattended_core::Clock::starting_at("2026-12-01T10:00:00Z".parse().unwrap()).now()
    }

    #[test]
    fn units_fit_until_the_limit_then_wait_for_the_oldest_to_leave() {
        let t0 = t0();
        let mut w = QuotaWindow::new(12);
        assert_eq!(w.take(t0, 5), Ok(()));
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(w.take(t1, 5), Ok(()));
        assert_eq!(w.take(t1, 2), Ok(()), "exactly the limit");
        assert_eq!(w.take(t1, 1), Err(t0 + MINUTE), "the first 5 must leave");
        assert_eq!(w.take(t0 + MINUTE, 5), Ok(()));
        assert_eq!(w.take(t0 + MINUTE, 5), Err(t1 + MINUTE), "5 + 2 + 5 > 12: wait for t1");
    }

    #[test]
    fn a_cost_above_the_limit_is_capped_so_it_can_ever_pass() {
        let t0 = t0();
        let mut w = QuotaWindow::new(3);
        assert_eq!(w.take(t0, 5), Ok(()));
        assert_eq!(w.take(t0, 1), Err(t0 + MINUTE));
    }
}
