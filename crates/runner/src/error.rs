//! Why the runner itself could not start or go on.

use unattended_core::{Disposition, HasDisposition};

use crate::config::ConfigError;

/// The runner could not start or go on (a task's failure is never one of these: it is that
/// task's run record).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The config file cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A service's client could not be built from its settings.
    #[error("service {service:?}: {source}")]
    Service {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: unattended_client::ConfigError,
    },
    /// An environment variable the config names is not set.
    #[error("{var} is not set; it should hold {what}")]
    MissingEnv {
        /// The variable.
        var: String,
        /// What it should hold.
        what: String,
    },
    /// A setting cannot be used.
    #[error("{what}: {problem}")]
    Invalid {
        /// The setting.
        what: String,
        /// What is wrong.
        problem: String,
    },
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] unattended_store::StoreError),
    /// Another runner sharing the state runs the task now.
    #[error(
        "{task} is running in the runner {holder} (its claim lasts until {until}); wait for that run to end, or stop that runner"
    )]
    HeldElsewhere {
        /// The task.
        task: String,
        /// The runner that holds it.
        holder: String,
        /// When its claim ends unless renewed.
        until: jiff::Timestamp,
    },
    /// No task has that name.
    #[error("no task is called {name:?}; tasks: {known}")]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
}

impl HasDisposition for RunnerError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Store(e) => e.disposition(),
            _ => Disposition::Stop,
        }
    }
}
