//! What a rule does with a message, and how often each kind of action can happen.
//!
//! An action is recorded as done in the store after it succeeded, so a crash between the two
//! repeats it on the next run. What that repeat means differs by kind:
//!
//! | action | delivery | why |
//! |---|---|---|
//! | labels | exactly once in effect | `messages.modify` sets labels; sending it again leaves them as they are |
//! | webhook | at least once | a POST whose answer is lost (a timeout, a reset, a crash before the record) may have been received; it is sent again with the same `Idempotency-Key` |
//! | jsonl | exactly once | the file's length is recorded before the append; a repeat looks past it for the line's key and appends only if it is missing (cutting a torn half line) |
//! | command | at least once | a command cut short may have done its work; it gets the same `UNATTENDED_IDEMPOTENCY_KEY` each time |
//!
//! A webhook or command that fails for now (the target is down, a `5xx`, a timeout, a non-zero
//! exit) is kept as pending and tried again at the start of each run, never dropped; one that
//! cannot work (a `4xx`, a program that does not exist, a file that cannot be written) stops the
//! task for a human.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use unattended_client::{Client, SecretPath};
use unattended_core::{Clock, Disposition, HasDisposition as _};
use unattended_runner::TaskError;
use unattended_store::Store;

use crate::api::{ApiError, Gmail, MessageSummary};

/// What actions send: the message's summary, the rule, and the key that names this one
/// action for this message (the same every time it is tried).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// Names the action for this message: a receiver that remembers keys can drop a repeat.
    pub key: String,
    /// The task.
    pub task: String,
    /// The rule that matched.
    pub rule: String,
    /// The message.
    pub message: MessageSummary,
}

/// Why an action did not happen.
#[derive(Debug)]
pub(crate) enum Failure {
    /// For now: keep it pending and try again next run.
    Later(String),
    /// For good, or the whole run must stop (Gmail itself failing): return this.
    Fatal(TaskError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Fatal(e.into())
    }
}

/// `messages.modify`; a message deleted meanwhile has no labels to set, which counts as done.
pub(crate) async fn labels(
    gmail: &Gmail,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Result<&'static str, Failure> {
    Ok(if gmail.modify(id, add, remove).await? { "labelled" } else { "message gone" })
}

/// POSTs `delivery` as JSON with its key as `Idempotency-Key` (which also lets the client
/// retry it within the call). Errors name the webhook's origin only: its path may be a secret.
pub(crate) async fn webhook(
    client: &Client,
    url: &http::Uri,
    delivery: &Delivery,
) -> Result<String, Failure> {
    let origin = origin(url);
    let body = serde_json::to_vec(delivery).map_err(|e| Failure::Fatal(json_error(&e)))?;
    let mut req = Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", &delivery.key)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Fatal(TaskError::stop(format!("webhook {origin}: {e}"))))?;
    req.extensions_mut().insert(SecretPath);
    let res = match client.send(req).await {
        Ok(res) => res,
        Err(e) => {
            return match e.disposition() {
                Disposition::Stop | Disposition::Reauthorize => Err(Failure::Fatal(
                    TaskError::from(e).with_help(format!("check the webhook at {origin}")),
                )),
                _ => Err(Failure::Later(format!("webhook {origin}: {e}"))),
            };
        }
    };
    let status = res.status();
    // Read to the end so the connection can be used again; the answer itself is not needed.
    let _ = res.into_body().collect().await;
    if status.is_success() {
        Ok(format!("{origin} answered {status}"))
    } else if status.is_server_error()
        || matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS)
    {
        Err(Failure::Later(format!("webhook {origin} answered {status}")))
    } else {
        Err(Failure::Fatal(
            TaskError::stop(format!("webhook {origin} refused a delivery: {status}"))
                .with_help("check the rule's `webhook` URL and what the receiver expects"),
        ))
    }
}

fn origin(url: &http::Uri) -> String {
    format!(
        "{}://{}",
        url.scheme_str().unwrap_or("http"),
        url.authority().map_or("", |a| a.as_str())
    )
}

fn json_error(e: &serde_json::Error) -> TaskError {
    TaskError::stop(format!("a delivery cannot be written as JSON: {e}"))
}

/// Where a JSON Lines file ended before an append, kept until the append is recorded.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    offset: u64,
}

/// The most of a file read past a recorded offset to find a line (lines are a few kilobytes).
const SCAN_LIMIT: u64 = 16 << 20;

/// Appends `delivery` as one line of `path`, once: see the module docs. `log_key` names the
/// action in the store (its intent entry is removed by the caller with the done record).
pub(crate) async fn jsonl(
    store: &Store,
    task: &str,
    log_key: &str,
    path: &Path,
    delivery: &Delivery,
) -> Result<String, Failure> {
    let shown = path.display().to_string();
    let io = |what: &str, e: std::io::Error| {
        Failure::Fatal(TaskError::stop(format!("{what} {shown}: {e}")).with_help(
            "check that the file's folder exists and has room, and that only this task writes it",
        ))
    };
    let mut line = serde_json::to_vec(delivery).map_err(|e| Failure::Fatal(json_error(&e)))?;
    line.push(b'\n');
    let store_error = |e| Failure::Fatal(TaskError::from(e));
    match store.entry::<Intent>(task, "intent", log_key).await.map_err(store_error)? {
        Some(intent) => match look_past(path, intent.value.offset, &delivery.key)
            .map_err(|e| io("cannot read", e))?
        {
            Past::Found => return Ok(format!("found in {shown}")),
            Past::Missing { torn_from: Some(at) } => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("cannot open", e))?;
                file.set_len(at).map_err(|e| io("cannot cut a torn line of", e))?;
            }
            Past::Missing { torn_from: None } => {}
        },
        None => {
            let offset = match std::fs::metadata(path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io("cannot read", e)),
            };
            store
                .put_entry(task, "intent", log_key, &Intent { offset })
                .await
                .map_err(store_error)?;
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io("cannot open", e))?;
    file.write_all(&line).map_err(|e| io("cannot append to", e))?;
    file.sync_data().map_err(|e| io("cannot sync", e))?;
    Ok(format!("appended to {shown}"))
}

enum Past {
    Found,
    /// Not there; a last line without its newline starts at `torn_from`.
    Missing {
        torn_from: Option<u64>,
    },
}

/// Looks for a line whose `key` is `key` in `path` after `offset`.
fn look_past(path: &Path, offset: u64, key: &str) -> std::io::Result<Past> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Past::Missing { torn_from: None });
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len <= offset {
        return Ok(Past::Missing { torn_from: None });
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut tail = Vec::new();
    file.take(SCAN_LIMIT).read_to_end(&mut tail)?;
    #[derive(Deserialize)]
    struct Keyed {
        key: String,
    }
    let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let found = tail[..complete]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Keyed>(l).ok())
        .any(|l| l.key == key);
    if found {
        return Ok(Past::Found);
    }
    let torn = complete < tail.len() && offset + tail.len() as u64 == len;
    Ok(Past::Missing { torn_from: torn.then_some(offset + complete as u64) })
}

/// Runs `argv` (no shell) with `delivery` as JSON on stdin and its key, task, rule and message
/// id in `UNATTENDED_*` variables, killed after `timeout`.
pub(crate) async fn command(
    argv: &[String],
    delivery: &Delivery,
    timeout: Duration,
    clock: Clock,
) -> Result<String, Failure> {
    let program = argv.first().map_or("", String::as_str);
    let input = serde_json::to_vec(delivery).map_err(|e| Failure::Fatal(json_error(&e)))?;
    let mut child = tokio::process::Command::new(program)
        .args(argv.iter().skip(1))
        .env("UNATTENDED_IDEMPOTENCY_KEY", &delivery.key)
        .env("UNATTENDED_TASK", &delivery.task)
        .env("UNATTENDED_RULE", &delivery.rule)
        .env("UNATTENDED_MESSAGE_ID", &delivery.message.id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Failure::Fatal(
                TaskError::stop(format!("command {program:?} cannot be started: {e}"))
                    .with_help("give the program's full path in the rule's `command`"),
            ),
            _ => Failure::Later(format!("command {program:?} cannot be started: {e}")),
        })?;
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let run = async {
        let write = async {
            if let Some(mut pipe) = stdin.take() {
                // A program that does not read its input is fine: a broken pipe is not a failure.
                let _ = pipe.write_all(&input).await;
            }
        };
        let read = async {
            let mut err = Vec::new();
            if let Some(pipe) = stderr.as_mut() {
                let _ = pipe.take(64 << 10).read_to_end(&mut err).await;
            }
            err
        };
        let ((), err) = tokio::join!(write, read);
        (child.wait().await, err)
    };
    match clock.timeout(timeout, run).await {
        Err(_) => {
            Err(Failure::Later(format!("command {program:?} ran past {timeout:?} and was killed")))
        }
        Ok((Err(e), _)) => Err(Failure::Later(format!("command {program:?}: {e}"))),
        Ok((Ok(status), _)) if status.success() => Ok(format!("command {program:?} succeeded")),
        Ok((Ok(status), err)) => {
            let err = String::from_utf8_lossy(&err);
            let tail: String =
                err.trim().chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect();
            Err(Failure::Later(format!("command {program:?} {status}: {tail}")))
        }
    }
}
