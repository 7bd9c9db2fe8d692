//! Where the layers' random draws come from: retry jitter, breaker open-time jitter, token
//! refresh skew, the release of paused callers.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A source of uniform draws in `[0, 1)`.
///
/// Unseeded ([`system`](Self::system), the default), each draw comes from the calling thread's
/// generator, seeded by the system: no lock, and callers on different threads never wait for
/// each other. Seeded ([`seeded`](Self::seeded)), every clone draws from one generator, so the
/// same program under a paused clock draws the same numbers in the same order on every run.
///
/// [`fork`](Self::fork) makes a source of its own seeded from this one: one seed can feed a
/// stream per consumer (a client gives one to each layer), so that one layer drawing more or
/// less does not shift the draws of another.
///
/// ```
/// use unattended_core::Random;
///
/// let (a, b) = (Random::seeded(7), Random::seeded(7));
/// assert_eq!(a.unit(), b.unit());
/// let (fa, fb) = (a.fork(), b.fork());
/// assert_eq!(fa.unit(), fb.unit());
/// assert!((0.0..1.0).contains(&Random::system().unit()));
/// ```
#[derive(Clone, Default)]
pub struct Random {
    seeded: Option<Arc<Mutex<fastrand::Rng>>>,
}

impl Random {
    /// Draws from the calling thread's generator.
    pub fn system() -> Self {
        Self { seeded: None }
    }

    /// Draws from one generator seeded with `seed`, shared by every clone.
    pub fn seeded(seed: u64) -> Self {
        Self { seeded: Some(Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)))) }
    }

    /// [`seeded`](Self::seeded) with `Some(seed)`, [`system`](Self::system) with `None`.
    pub fn from_seed(seed: Option<u64>) -> Self {
        seed.map_or_else(Self::system, Self::seeded)
    }

    /// True if the draws are reproducible.
    pub fn is_seeded(&self) -> bool {
        self.seeded.is_some()
    }

    /// A uniform draw in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        match &self.seeded {
            Some(rng) => rng.lock().unwrap_or_else(PoisonError::into_inner).f64(),
            None => fastrand::f64(),
        }
    }

    /// A seed drawn from this source for another one, or `None` when this one is not seeded.
    pub fn fork_seed(&self) -> Option<u64> {
        self.seeded.as_ref().map(|rng| rng.lock().unwrap_or_else(PoisonError::into_inner).u64(..))
    }

    /// A source of its own: seeded from this one when this one is seeded, else the system's.
    pub fn fork(&self) -> Self {
        Self::from_seed(self.fork_seed())
    }
}

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Random").field("seeded", &self.is_seeded()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_sequence_shared_by_clones() {
        let run = |seed| {
            let random = Random::seeded(seed);
            let clone = random.clone();
            (0..8)
                .map(|i| if i % 2 == 0 { random.unit() } else { clone.unit() })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert!(run(3).iter().all(|u| (0.0..1.0).contains(u)));
    }

    #[test]
    fn forks_are_reproducible_and_independent() {
        let root = Random::seeded(9);
        let (a, b) = (root.fork(), root.fork());
        assert!(a.is_seeded() && b.is_seeded());
        let first: Vec<f64> = (0..4).map(|_| a.unit()).collect();
        // Drawing from `a` does not move `b`, and the same root gives the same forks.
        let again = Random::seeded(9);
        let (a2, b2) = (again.fork(), again.fork());
        assert_eq!(b.unit(), b2.unit());
        assert_eq!(first, (0..4).map(|_| a2.unit()).collect::<Vec<_>>());
        assert_ne!(first[0], b.unit());
        assert!(!Random::system().fork().is_seeded());
        assert_eq!(Random::system().fork_seed(), None);
    }
}
