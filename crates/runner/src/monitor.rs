//! The runner's own health: resident memory and the store's free disk.

use std::path::Path;
use std::sync::Arc;

use crate::config::MonitorSettings;
use crate::machine::AlertAction;

/// Where readings of the process come from.
#[derive(Clone)]
pub(crate) struct Probe {
    rss: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
    free_disk: Arc<dyn Fn(&Path) -> Option<u64> + Send + Sync>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    /// This process and its file system.
    pub(crate) fn system() -> Self {
        Self { rss: Arc::new(resident_bytes), free_disk: Arc::new(free_bytes) }
    }

    /// Readings from these functions.
    pub(crate) fn new(
        rss: impl Fn() -> Option<u64> + Send + Sync + 'static,
        free_disk: impl Fn(&Path) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        Self { rss: Arc::new(rss), free_disk: Arc::new(free_disk) }
    }

    /// Fixed readings, for tests.
    #[cfg(test)]
    pub(crate) fn fixed(rss: Option<u64>, free: Option<u64>) -> Self {
        Self::new(move || rss, move |_| free)
    }
}

/// The resident memory of this process, from `/proc/self/status` (Linux; none elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The space free for unprivileged users on the file system holding `path`'s folder.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Alerts (or recoveries) from the readings: memory above `max_rss`, free disk below
/// `min_free_disk`. A reading that cannot be taken says nothing.
pub(crate) fn check(probe: &Probe, settings: &MonitorSettings, store: &Path) -> Vec<AlertAction> {
    let mut out = Vec::new();
    if let (Some(max), Some(rss)) = (settings.max_rss, (probe.rss)()) {
        let incident = "runner:memory".to_owned();
        out.push(if rss > max {
            AlertAction::Raise {
                incident,
                title: "the runner uses too much memory".to_owned(),
                detail: format!("resident memory {} is above max_rss {}", mib(rss), mib(max)),
                help: Some("look for a task that keeps growing; a restart frees it".to_owned()),
            }
        } else {
            AlertAction::Recover { incident, detail: format!("resident memory is {}", mib(rss)) }
        });
    }
    if let (Some(min), Some(free)) = (settings.min_free_disk, (probe.free_disk)(store)) {
        let incident = "runner:disk".to_owned();
        out.push(if free < min {
            AlertAction::Raise {
                incident,
                title: "the store's disk is nearly full".to_owned(),
                detail: format!(
                    "{} free where the store is ({}), below min_free_disk {}",
                    mib(free),
                    store.display(),
                    mib(min)
                ),
                help: Some(
                    "free some space: when the disk is full, checkpoints cannot be saved"
                        .to_owned(),
                ),
            }
        } else {
            AlertAction::Recover { incident, detail: format!("{} free", mib(free)) }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_above_and_below_their_limits() {
        let settings = MonitorSettings::default();
        let high = check(
            &Probe::fixed(Some(600 << 20), Some(100 << 20)),
            &settings,
            Path::new("/x/state.db"),
        );
        assert!(
            matches!(&high[..], [AlertAction::Raise { incident: m, .. }, AlertAction::Raise { incident: d, .. }] if m == "runner:memory" && d == "runner:disk")
        );
        let fine =
            check(&Probe::fixed(Some(20 << 20), Some(1 << 30)), &settings, Path::new("state.db"));
        assert!(fine.iter().all(|a| matches!(a, AlertAction::Recover { .. })));
        assert!(check(&Probe::fixed(None, None), &settings, Path::new("s")).is_empty());
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(resident_bytes().is_some_and(|b| b > 1 << 20));
        assert!(free_bytes(Path::new("./state.db")).is_some());
    }
}
