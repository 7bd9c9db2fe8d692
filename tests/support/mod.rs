//! What the process tests share.

use std::time::Duration;

use unattended::core::Clock;

/// Polls `cond` every 50 ms for up to `secs` seconds. A process test waits in real time, on
/// the project's `Clock` (a small runtime of its own drives the sleeps).
pub(crate) fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let clock = Clock::system();
    let start = clock.now();
    while !cond() {
        assert!(clock.now() - start < Duration::from_secs(secs), "gave up waiting for {what}");
        rt.block_on(async { clock.sleep(Duration::from_millis(50)).await });
    }
}
