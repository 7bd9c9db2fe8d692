//! The records the store keeps.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

/// A task's last good state, as saved.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    /// The value saved.
    pub value: T,
    /// Counts the saves of this task's checkpoint, from 1.
    pub version: u64,
    /// When it was saved.
    pub updated_at: Timestamp,
}

/// What a checkpoint save expects to replace, to detect two writers of one task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// Replace whatever is there (last writer wins).
    #[default]
    Any,
    /// There must be no checkpoint yet.
    Absent,
    /// The stored checkpoint must be at this version (the one the caller loaded).
    Version(u64),
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting for its next run.
    Idle,
    /// Running now.
    Running,
    /// Its last run succeeded.
    Succeeded,
    /// Its last run did its work, but skipped steps that needed an unavailable service.
    Degraded,
    /// Its last run failed.
    Failed,
    /// Its last run failed; it waits until its next run time before trying again.
    Cooldown,
    /// Its next run waits for a time it was told (a window that opens, a pause that ends).
    Deferred,
    /// It does not run until a human acts (credentials revoked, a fault retrying cannot fix).
    Disabled,
}

impl TaskState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Cooldown => "cooldown",
            Self::Deferred => "deferred",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`TaskState`] or [`RunOutcome`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown state name {0:?}")]
pub struct UnknownName(pub String);

impl FromStr for TaskState {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Ok(match s {
            "idle" => Self::Idle,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "degraded" => Self::Degraded,
            "failed" => Self::Failed,
            "cooldown" => Self::Cooldown,
            "deferred" => Self::Deferred,
            "disabled" => Self::Disabled,
            other => return Err(UnknownName(other.to_owned())),
        })
    }
}

/// A task's state with its times, as the runner keeps it between runs and processes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskStatus {
    /// The state.
    pub state: TaskState,
    /// Since when.
    pub since: Timestamp,
    /// When it runs next, if scheduled.
    pub next_run: Option<Timestamp>,
    /// Why it is in this state, for the states that need a reason (deferred, disabled, failed).
    pub reason: Option<String>,
    /// The last schedule slot served (run, or skipped on purpose): where catch-up counts from.
    pub last_slot: Option<Timestamp>,
    /// When a run last ended in success (or degraded success): what the heartbeat watches.
    pub last_success: Option<Timestamp>,
    /// The last run's error, if it failed. Never a secret.
    pub last_error: Option<String>,
    /// The last failure's disposition, as text.
    pub last_disposition: Option<String>,
    /// Failed runs in a row.
    pub failures: u32,
    /// The run in progress, while [`TaskState::Running`].
    pub run: Option<RunId>,
}

impl TaskStatus {
    /// A status in `state` since `since`, with nothing else known.
    pub fn new(state: TaskState, since: Timestamp) -> Self {
        Self {
            state,
            since,
            next_run: None,
            reason: None,
            last_slot: None,
            last_success: None,
            last_error: None,
            last_disposition: None,
            failures: 0,
            run: None,
        }
    }

    /// The same status with its next run at `at`.
    #[must_use]
    pub fn next_run(mut self, at: Option<Timestamp>) -> Self {
        self.next_run = at;
        self
    }
}

/// Identifies a run in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunOutcome {
    /// It did its work.
    Succeeded,
    /// It did its work but skipped steps that needed an unavailable service.
    Degraded,
    /// It failed; the disposition says what next.
    Failed,
    /// It did not run its work (outside its window, a needed service down).
    Skipped,
    /// It was still running when the process stopped; found so at the next start.
    Abandoned,
}

impl RunOutcome {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Abandoned => "abandoned",
        }
    }
}

impl FromStr for RunOutcome {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Ok(match s {
            "succeeded" => Self::Succeeded,
            "degraded" => Self::Degraded,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            "abandoned" => Self::Abandoned,
            other => return Err(UnknownName(other.to_owned())),
        })
    }
}

/// How a run ended, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunEnd {
    /// When it ended.
    pub finished_at: Timestamp,
    /// How.
    pub outcome: RunOutcome,
    /// The runner's instruction, as text (`"retry at …"`, `"stop"`), if it failed.
    pub disposition: Option<String>,
    /// The error, as text, if it failed. Never a secret: the workspace's errors carry none.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// What the run did, in a line (`"uploaded 2 videos"`), if it said.
    pub summary: Option<String>,
}

impl RunEnd {
    /// A run that ended at `finished_at` with `outcome`, nothing else said.
    pub fn new(outcome: RunOutcome, finished_at: Timestamp) -> Self {
        Self { finished_at, outcome, disposition: None, error: None, attempts: 0, summary: None }
    }
}

/// A run as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// The task.
    pub task: String,
    /// When it started.
    pub started_at: Timestamp,
    /// How it ended, once it has.
    pub end: Option<RunEnd>,
    /// The runner that ran it (its name), if recorded.
    pub runner: Option<String>,
}

/// One service held back until a time: an open breaker or a rate-limit pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldService {
    /// The service key.
    pub key: String,
    /// Until when (wall time).
    pub until: Timestamp,
}

/// The rate a rate-limit layer learned for one service, as saved.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnedPace {
    /// The service key.
    pub key: String,
    /// Requests per second.
    pub rate: f64,
    /// When it was learned (wall time).
    pub learned_at: Timestamp,
}

/// Who holds a lease: one runner process.
///
/// Several runners may share one database (PostgreSQL, or one SQLite file). Each names itself
/// ([`name`](Self::name), shown in `status`); [`instance`](Self::instance) tells two processes of
/// one name apart. A lease held by a process of this host that is gone (its pid no longer
/// runs) is taken over at once; any other lease only when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The runner's name (`[runner] name`; the host name by default).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Random, drawn when the process starts: tells apart two holders of one name and host.
    pub instance: u64,
}

impl Holder {
    /// This process, named `name` (the host name if `None`).
    pub fn this_process(name: Option<&str>) -> Self {
        let host = host_name();
        Self {
            name: name.map_or_else(|| host.clone(), str::to_owned),
            host,
            pid: std::process::id(),
            instance: fastrand::u64(1..i64::MAX.cast_unsigned()),
        }
    }

    /// Whether this is the same process as `other`.
    pub fn is(&self, other: &Self) -> bool {
        self.instance == other.instance
    }

    /// Whether `other`'s process is known to be gone: it ran on this host and its pid is free.
    pub fn sees_gone(&self, other: &Self) -> bool {
        other.host == self.host && !self.is(other) && !pid_runs(other.pid)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {} on {})", self.name, self.pid, self.host)
    }
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let name = rustix::system::uname().nodename().to_string_lossy().into_owned();
        if !name.is_empty() {
            return name;
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned())
}

/// Whether a process with this pid exists (signal 0 checks without sending anything).
fn pid_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
            return false;
        };
        // EPERM: it exists but belongs to another user.
        !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// A task's lease: which runner runs it, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub task: String,
    /// The runner that holds (or last held) it.
    pub holder: Holder,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
    /// Whether its holder gave it back (the run ended).
    pub released: bool,
}

impl Lease {
    /// Whether it keeps `me` from running its task at `now`: held by another process that is
    /// not known to be gone, and not expired.
    pub fn excludes(&self, me: &Holder, now: Timestamp) -> bool {
        !self.released
            && self.expires_at > now
            && !me.is(&self.holder)
            && !me.sees_gone(&self.holder)
    }
}

/// The answer to a claim on a task ([`StateStore::claim`](crate::StateStore::claim)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The lease is the caller's until the time asked; `took_over` names the runner that held
    /// it unreleased (it stopped, or its lease ran out), whose unfinished runs of the task are
    /// now marked abandoned.
    Granted {
        /// The earlier holder, if its lease was taken over.
        took_over: Option<Holder>,
    },
    /// Another runner holds it.
    Held(Lease),
    /// Another runner is claiming it at this moment; ask again shortly.
    Busy,
}
