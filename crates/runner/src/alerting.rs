//! The runner's side of alerting: incidents opened once and closed once.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;

use crate::machine::AlertAction;

/// An alert the runner raised or a recovery it reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertNote {
    /// The incident (`task:NAME:late`, `runner:memory`).
    pub incident: String,
    /// Whether it opened (`true`) or closed.
    pub raised: bool,
    /// A short title.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// What a human should do, if anything.
    pub help: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// Opens each incident once and closes it once; keeps what it said.
#[derive(Debug, Default)]
pub(crate) struct Alerter {
    open: Mutex<BTreeSet<String>>,
    said: Mutex<Vec<AlertNote>>,
}

impl Alerter {
    /// Applies `action` at `at`; returns the note if one was sent.
    pub(crate) fn apply(&self, action: AlertAction, at: Timestamp) -> Option<AlertNote> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let note = match action {
            AlertAction::Raise { incident, title, detail, help } => {
                if !open.insert(incident.clone()) {
                    return None;
                }
                tracing::warn!(%incident, %title, %detail, help = help.as_deref().unwrap_or(""), "alert");
                AlertNote { incident, raised: true, title, detail, help, at }
            }
            AlertAction::Recover { incident, detail } => {
                if !open.remove(&incident) {
                    return None;
                }
                tracing::info!(%incident, %detail, "recovered");
                AlertNote {
                    title: format!("recovered: {incident}"),
                    incident,
                    raised: false,
                    detail,
                    help: None,
                    at,
                }
            }
        };
        drop(open);
        self.said.lock().unwrap_or_else(PoisonError::into_inner).push(note.clone());
        Some(note)
    }

    /// Everything said so far.
    pub(crate) fn said(&self) -> Vec<AlertNote> {
        self.said.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether `incident` is open.
    pub(crate) fn is_open(&self, incident: &str) -> bool {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).contains(incident)
    }
}
