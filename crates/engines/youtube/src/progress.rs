//! How an upload's progress is told: a line (bytes, rate, time left) reported to the runner with
//! every confirmed chunk (`unattended once` draws it as a bar on a terminal; the status page
//! shows it), and logged every tenth of the file.

use std::time::Duration;

use tokio::time::Instant;
use unattended_core::Clock;

/// Progress of one video's upload.
#[derive(Debug)]
pub(crate) struct Meter {
    file: String,
    total: u64,
    clock: Clock,
    started: Instant,
    from: u64,
    last_tenth: u64,
}

impl Meter {
    /// Starts measuring the upload of `file` (`total` bytes) from byte `from`.
    pub(crate) fn new(file: &str, total: u64, from: u64, clock: Clock) -> Self {
        Self {
            file: file.to_owned(),
            total,
            clock,
            started: clock.now(),
            from,
            last_tenth: tenth(from, total),
        }
    }

    /// The line for `done` bytes confirmed: `clip.mp4: 24.0 MiB of 100.0 MiB (24%), 3.1 MiB/s,
    /// 25s left`.
    pub(crate) fn line(&self, done: u64) -> String {
        let elapsed = self.clock.now().saturating_duration_since(self.started);
        let sent = done.saturating_sub(self.from);
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        let mut line = format!("{}: {} of {} ({percent}%)", self.file, mib(done), mib(self.total));
        if !elapsed.is_zero() && sent > 0 {
            let rate = sent as f64 / elapsed.as_secs_f64();
            let left = self.total.saturating_sub(done) as f64 / rate;
            line.push_str(&format!(", {}/s", mib(rate as u64)));
            if left.is_finite() {
                let left = jiff::SignedDuration::try_from(Duration::from_secs(left.ceil() as u64))
                    .unwrap_or_default();
                line.push_str(&format!(", {left:#} left"));
            }
        }
        line
    }

    /// Logs the line for `done` bytes confirmed when another tenth of the file is done.
    pub(crate) fn show(&mut self, done: u64) {
        if tenth(done, self.total) > self.last_tenth || done >= self.total {
            tracing::info!(target: "unattended::youtube", "{}", self.line(done));
        }
        self.last_tenth = tenth(done, self.total);
    }
}

fn tenth(done: u64, total: u64) -> u64 {
    (done * 10).checked_div(total).unwrap_or(10)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_line_has_bytes_rate_and_time_left() {
        let clock = Clock::starting_at("2026-12-01T12:00:00Z".parse().unwrap());
        let meter = Meter::new("clip.mp4", 100 << 20, 0, clock);
        assert_eq!(meter.line(0), "clip.mp4: 0.0 MiB of 100.0 MiB (0%)");
        clock.sleep(Duration::from_secs(10)).await;
        assert_eq!(
            meter.line(25 << 20),
            "clip.mp4: 25.0 MiB of 100.0 MiB (25%), 2.5 MiB/s, 30s left"
        );
    }
}
