//! The gate's rules for code that is not a tower stack (the `reqwest` adapter, a loop of one's
//! own).

use std::fmt;
use std::sync::Arc;

use crate::error::OutsideWindow;
use crate::service::{Decision, Shared};

/// The gate layer's decisions, for requests sent another way.
///
/// Made by [`GateLayer::gatekeeper`](crate::GateLayer::gatekeeper) with the layer's rules and
/// clock: [`pass`](Self::pass) lets a class through, holds it until its window opens, or refuses
/// it, exactly as the layer would. Pick the class with
/// [`ByMethod::class_of_parts`](crate::ByMethod::class_of_parts) for the layer's default.
///
/// ```
/// use unattended_core::Clock;
/// use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Saturday night in Los Angeles.
/// let clock = Clock::parse_start("2026-11-28T23:00:00-08:00[America/Los_Angeles]")?;
/// let hours = WindowCalendar::new("America/Los_Angeles", &["mon-fri 09:00-22:00"], &[])?;
/// let keeper = GateLayer::new().class("write", hours, WhenClosed::Reject).clock(clock).gatekeeper();
/// keeper.pass("read").await?;
/// assert!(keeper.pass("write").await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gatekeeper {
    shared: Arc<Shared<()>>,
}

impl Gatekeeper {
    pub(crate) fn new(shared: Arc<Shared<()>>) -> Self {
        Self { shared }
    }

    /// Waits until a request of `class` may go, on the layer's clock.
    ///
    /// # Errors
    ///
    /// [`OutsideWindow`] when the class's window is closed and the rule does not wait (or not
    /// that long).
    pub async fn pass(&self, class: &str) -> Result<(), OutsideWindow> {
        match self.shared.decide(class) {
            Decision::Pass => Ok(()),
            Decision::Reject(error) => Err(error),
            Decision::Hold(opens_at) => {
                let clock = self.shared.clock;
                // Boxed: waiting is rare, and every caller's future would carry it inline.
                Box::pin(clock.sleep_until(clock.instant_at(opens_at))).await;
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: Vec<&str> = self.shared.rules.iter().map(|rule| &*rule.class).collect();
        f.debug_struct("Gatekeeper").field("classes", &classes).finish_non_exhaustive()
    }
}
