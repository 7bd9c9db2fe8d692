//! The runner's side of alerting: incidents opened once and closed once, through the outbox.

use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;
use unattended_alerts::{Notice, Outbox};
use unattended_store::StoreError;

use crate::machine::AlertAction;

/// An alert this runner raised or a recovery it reported (the outbox in the store has them
/// all, from every process).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// Sends the runner's alert actions to the outbox; keeps what it said.
#[derive(Debug)]
pub(crate) struct Alerter {
    outbox: Outbox,
    said: Mutex<Vec<AlertNote>>,
}

impl Alerter {
    pub(crate) fn new(outbox: Outbox) -> Self {
        Self { outbox, said: Mutex::new(Vec::new()) }
    }

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Applies `action`; returns the note if an alert was written (an incident already open,
    /// or one not open to recover, writes nothing).
    ///
    /// # Errors
    ///
    /// The store could not write the alert.
    pub(crate) async fn apply(&self, action: AlertAction) -> Result<Option<AlertNote>, StoreError> {
        let (incident, raised, title, detail, help) = match action {
            AlertAction::Raise { incident, title, detail, help } => {
                (incident, true, title, detail, help)
            }
            AlertAction::Recover { incident, detail } => {
                let title = match task_of(&incident) {
                    Some(task) => format!("{task} recovered"),
                    None => format!("recovered: {incident}"),
                };
                (incident, false, title, detail, None)
            }
        };
        let mut notice = Notice::new(title.clone(), detail.clone());
        if let Some(task) = task_of(&incident) {
            notice = notice.task(task);
        }
        if let Some(help) = &help {
            notice = notice.help(help.clone());
        }
        let written = if raised {
            self.outbox.raise(&incident, notice).await?
        } else {
            self.outbox.recover(&incident, notice).await?
        };
        let Some(alert) = written else { return Ok(None) };
        let note = AlertNote { incident, raised, title, detail, help, at: alert.at };
        self.said.lock().unwrap_or_else(PoisonError::into_inner).push(note.clone());
        Ok(Some(note))
    }

    /// Everything said so far.
    pub(crate) fn said(&self) -> Vec<AlertNote> {
        self.said.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The task of a `task:NAME:what` incident.
fn task_of(incident: &str) -> Option<&str> {
    let rest = incident.strip_prefix("task:")?;
    rest.rsplit_once(':').map(|(task, _)| task)
}
