//! Time-window gate.
mod calendar;
pub use calendar::{CalendarError, CalendarSpec, WindowCalendar};
