//! A progress bar for `once` on a terminal, drawn from the progress a task reports
//! (`TaskContext::progress`), for every engine alike.
//!
//! The bar lives on the last line of standard error. A log line written meanwhile first clears
//! it (through [`Stderr`]), and the bar is drawn again below it at its next tick.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{Progress, RunnerView};

/// Whether a bar is on the screen now (a log line must clear it first).
static SHOWN: AtomicBool = AtomicBool::new(false);

const WIDTH: u64 = 24;
const TICK: Duration = Duration::from_millis(200);

/// A bar being drawn; [`finish`](Self::finish) clears it.
pub(crate) struct Bar(Option<(CancellationToken, tokio::task::JoinHandle<()>)>);

impl Bar {
    /// Draws `task`'s progress from `view` while it runs, if standard error is a terminal.
    pub(crate) fn start(view: RunnerView, task: &str, clock: Clock) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let stop = CancellationToken::new();
        let (done, name) = (stop.clone(), task.to_owned());
        let task = tokio::spawn(async move {
            while !done.is_cancelled() {
                let progress =
                    view.tasks().into_iter().find(|t| t.name == name).and_then(|t| t.progress);
                if let Some(p) = progress {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{}\x1b[K", frame(&p));
                    let _ = err.flush();
                    SHOWN.store(true, Ordering::SeqCst);
                }
                tokio::select! {
                    () = clock.sleep(TICK) => {}
                    () = done.cancelled() => {}
                }
            }
        });
        Self(Some((stop, task)))
    }

    /// Stops drawing and clears the bar.
    pub(crate) async fn finish(self) {
        if let Some((stop, task)) = self.0 {
            stop.cancel();
            let _ = task.await;
            clear();
        }
    }
}

/// Clears the bar's line if a bar is on it.
fn clear() {
    if SHOWN.swap(false, Ordering::SeqCst) {
        let _ = std::io::stderr().lock().write_all(b"\r\x1b[K");
    }
}

/// One frame: `[##########--------------]  42%  3 change(s) so far`; without a total, the
/// count alone.
pub(crate) fn frame(p: &Progress) -> String {
    let note = p.note.trim();
    match p.total {
        Some(total) if total > 0 => {
            let done = p.done.min(total);
            let filled = done * WIDTH / total;
            let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '-' }).collect();
            format!("[{bar}] {:>3}%  {note}", done * 100 / total)
        }
        _ => format!("[{} done] {note}", p.done),
    }
}

/// Standard error for log lines, clearing a bar before each write.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = std::io::Stderr;

    fn make_writer(&'a self) -> Self::Writer {
        clear();
        std::io::stderr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: u64, total: Option<u64>, note: &str) -> Progress {
        Progress { at: "2026-12-01T00:00:00Z".parse().unwrap(), done, total, note: note.into() }
    }

    #[test]
    fn a_frame_shows_the_share_done_and_the_note() {
        assert_eq!(
            frame(&progress(3, Some(12), "3 change(s) so far")),
            "[######------------------]  25%  3 change(s) so far"
        );
        assert_eq!(frame(&progress(0, Some(5), "")), format!("[{}]   0%  ", "-".repeat(24)));
        assert_eq!(frame(&progress(9, Some(5), "x")), format!("[{}] 100%  x", "#".repeat(24)));
        assert_eq!(frame(&progress(7, Some(0), "pages")), "[7 done] pages");
        assert_eq!(frame(&progress(7, None, "pages")), "[7 done] pages");
    }
}
