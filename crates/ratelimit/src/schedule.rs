//! The release schedule of one paced key: first come, first served, evenly spaced.
//!
//! Every request to a paced key takes a numbered ticket when it arrives, and ticket `n` may go
//! at `base + (n - first) × interval`: the generic cell rate algorithm (nginx's `limit_req`,
//! governor) turned into reservations, so that a request that waits keeps its place in line and
//! is never overtaken by one that came later. When the rate changes, or a pause holds the key,
//! the tickets not yet due are spaced again from that point, still in the order they were
//! taken. After a quiet spell up to `burst` requests may go at once.
//!
//! A sans-IO value: every method is given `now`.

use std::time::Duration;

use tokio::time::Instant;

/// A place in line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// The schedule of one key.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    interval: Duration,
    burst: u32,
    /// Ticket `first` is due at `base`; each later one an interval after the one before.
    first: u64,
    base: Instant,
    /// The next ticket to hand out.
    next: u64,
}

impl Schedule {
    /// An empty schedule: the first `burst` requests may go at once.
    pub(crate) fn new(now: Instant, interval: Duration, burst: u32) -> Self {
        let burst = burst.max(1);
        let base = now.checked_sub(tolerance(interval, burst)).unwrap_or(now);
        Self { interval, burst, first: 0, base, next: 0 }
    }

    /// An empty schedule whose first ticket is due at `at` (after a refusal: not at once).
    pub(crate) fn starting_at(at: Instant, interval: Duration, burst: u32) -> Self {
        Self { interval, burst: burst.max(1), first: 0, base: at, next: 0 }
    }

    /// The time between two requests.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Requests allowed at once after a quiet spell.
    pub(crate) fn burst(&self) -> u32 {
        self.burst
    }

    /// When ticket `ticket` may go.
    pub(crate) fn due(&self, ticket: Ticket) -> Instant {
        match ticket.0.checked_sub(self.first) {
            Some(places) => add(self.base, times(self.interval, places)),
            // Taken before the line was last spaced again: it is at the head of the line.
            None => self.base,
        }
    }

    /// When a ticket taken at `now` would be due, without taking it.
    pub(crate) fn next_due(&self, now: Instant) -> Instant {
        self.due(Ticket(self.next)).max(self.credit_floor(now))
    }

    /// Takes the next ticket at `now`; returns it and when it is due (`now` or later).
    pub(crate) fn take(&mut self, now: Instant) -> (Ticket, Instant) {
        let floor = self.credit_floor(now);
        if self.due(Ticket(self.next)) < floor {
            // The key was quiet: credit for at most `burst` requests, not for the whole spell.
            self.first = self.next;
            self.base = floor;
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        (ticket, self.due(ticket).max(now))
    }

    /// A ticket that will not be used (its request gave up waiting). The last one taken is
    /// handed out again; any other leaves its slot empty.
    pub(crate) fn give_back(&mut self, ticket: Ticket) {
        if ticket.0 + 1 == self.next && ticket.0 >= self.first {
            self.next -= 1;
        }
    }

    /// Spaces the tickets not yet due at `now` by `interval` from here on, in their order.
    pub(crate) fn set_interval(&mut self, now: Instant, interval: Duration, burst: u32) {
        let pending = self.first_pending(now);
        // The last ticket that went keeps its time; the next one follows it by the new interval.
        let anchor = match pending.checked_sub(1) {
            Some(last) if last >= self.first => add(self.due(Ticket(last)), interval),
            _ => self.due(Ticket(pending)),
        };
        self.burst = burst.max(1);
        self.interval = interval;
        self.first = pending;
        self.base = anchor.max(now.checked_sub(tolerance(interval, self.burst)).unwrap_or(now));
    }

    /// True if a ticket not yet due at `now` is due before `at`.
    pub(crate) fn starts_before(&self, now: Instant, at: Instant) -> bool {
        self.due(Ticket(self.first_pending(now))) < at
    }

    /// No ticket goes before `at` (a pause): the tickets not yet due at `now` start at `at`, in
    /// their order, one interval apart. Returns `false` if they already did.
    pub(crate) fn not_before(&mut self, now: Instant, at: Instant) -> bool {
        let pending = self.first_pending(now);
        if self.due(Ticket(pending)) >= at {
            return false;
        }
        self.first = pending;
        self.base = at;
        true
    }

    /// The earliest ticket taken that is not due at `now`, or the next one to take.
    fn first_pending(&self, now: Instant) -> u64 {
        if now < self.base {
            return self.first;
        }
        let nanos = self.interval.as_nanos().max(1);
        let gone = (now - self.base).as_nanos() / nanos + 1;
        let gone = u64::try_from(gone).unwrap_or(u64::MAX);
        self.first.saturating_add(gone).min(self.next).max(self.first)
    }

    fn credit_floor(&self, now: Instant) -> Instant {
        now.checked_sub(tolerance(self.interval, self.burst)).unwrap_or(now)
    }
}

fn tolerance(interval: Duration, burst: u32) -> Duration {
    times(interval, u64::from(burst.saturating_sub(1)))
}

fn times(interval: Duration, n: u64) -> Duration {
    let nanos = interval.as_nanos().saturating_mul(u128::from(n));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn add(at: Instant, d: Duration) -> Instant {
    // Beyond tokio's range means "never" in practice; a far-off instant will do.
    at.checked_add(d).unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const ZERO: Duration = Duration::ZERO;

    fn start() -> Instant {
        // Far enough from the clock's origin to subtract credit from.
        unattended_core::Clock::system().now() + Duration::from_secs(3600)
    }

    #[test]
    fn evenly_spaced_in_arrival_order() {
        let t = start();
        let mut s = Schedule::new(t, 20 * MS, 1);
        let dues: Vec<_> = (0..4).map(|_| s.take(t).1 - t).collect();
        assert_eq!(dues, [ZERO, 20 * MS, 40 * MS, 60 * MS]);
        // A later arrival queues behind them.
        assert_eq!(s.take(t + 10 * MS).1 - t, 80 * MS);
    }

    #[test]
    fn a_quiet_spell_earns_at_most_the_burst() {
        let t = start();
        let mut s = Schedule::new(t, 100 * MS, 3);
        let later = t + Duration::from_secs(60);
        let dues: Vec<_> = (0..5).map(|_| s.take(later).1 - later).collect();
        assert_eq!(dues, [ZERO, ZERO, ZERO, 100 * MS, 200 * MS]);
    }

    #[test]
    fn a_new_rate_spaces_the_waiting_tickets_again_in_order() {
        let t = start();
        let mut s = Schedule::new(t, 10 * MS, 1);
        let tickets: Vec<_> = (0..5).map(|_| s.take(t).0).collect();
        // At 15 ms tickets 0 and 1 have gone; the rest now go 40 ms apart after ticket 1.
        s.set_interval(t + 15 * MS, 40 * MS, 1);
        let dues: Vec<_> = tickets[2..].iter().map(|k| s.due(*k) - t).collect();
        assert_eq!(dues, [50 * MS, 90 * MS, 130 * MS]);
        assert_eq!(s.take(t + 15 * MS).1 - t, 170 * MS);
    }

    #[test]
    fn a_pause_moves_the_line_behind_it() {
        let t = start();
        let mut s = Schedule::new(t, 10 * MS, 1);
        let tickets: Vec<_> = (0..4).map(|_| s.take(t).0).collect();
        assert!(s.not_before(t + 5 * MS, t + Duration::from_secs(1)));
        let dues: Vec<_> = tickets.iter().map(|k| s.due(*k) - t).collect();
        // Ticket 0 went before the pause; ticket 1 heads the line at its end.
        assert_eq!(dues[1..], [1000 * MS, 1010 * MS, 1020 * MS]);
        assert!(!s.not_before(t + 5 * MS, t + Duration::from_millis(500)), "already behind");
    }

    #[test]
    fn a_ticket_given_back_is_handed_out_again() {
        let t = start();
        let mut s = Schedule::new(t, 10 * MS, 1);
        s.take(t);
        let (second, due) = s.take(t);
        s.give_back(second);
        assert_eq!(s.take(t), (second, due));
    }
}
