//! The one failure this layer adds.

use std::error::Error as StdError;
use std::fmt;

use jiff::Timestamp;
use unattended_core::{Disposition, HasDisposition};

/// A request of a class that is outside its time window, refused (or waited for longer than
/// allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutsideWindow {
    /// The request's action class.
    pub class: String,
    /// When its window next opens, if it ever does (within about two years).
    pub opens_at: Option<Timestamp>,
}

impl OutsideWindow {
    /// The error for `class`, whose window opens next at `opens_at` (`None`: never).
    pub fn new(class: impl Into<String>, opens_at: Option<Timestamp>) -> Self {
        Self { class: class.into(), opens_at }
    }
}

impl fmt::Display for OutsideWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} actions are outside their time window", self.class)?;
        match self.opens_at {
            Some(at) => write!(f, "; it opens at {at}"),
            None => f.write_str("; it does not open again: check the calendar"),
        }
    }
}

impl StdError for OutsideWindow {}

impl HasDisposition for OutsideWindow {
    /// Retry when the window opens; stop if it never does.
    fn disposition(&self) -> Disposition {
        self.opens_at.map_or(Disposition::Stop, Disposition::RetryAt)
    }
}
