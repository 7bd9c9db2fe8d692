//! One run: pending actions first, then the mailbox page by page from the checkpoint.
//!
//! ```text
//! retry pending actions (a webhook that was down)            store: done / pending
//! no checkpoint → profile's historyId, `since` = now          checkpoint
//! loop, one page at a time:
//!   History { id, page } → history.list (404 → Resync from the profile's id)
//!   Resync { id, page }  → messages.list, newest first, until `since` or resync_limit
//!   each message: seen? → skip; else messages.get → rules → actions   store: done, then seen
//!   next position (last page: the first page's historyId)      checkpoint
//! ```
//!
//! The checkpoint moves past a page only after every action of the page is recorded (done or
//! pending), so a run cut short anywhere repeats at most the page it was in, and the action log
//! keeps what was done from being done again.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use unattended_client::Client;
use unattended_runner::{Engine, EngineSetup, RunSummary, TaskContext, TaskError};

use crate::actions::{self, Delivery, Failure};
use crate::api::{ApiError, Gmail, MessageSummary, encode};
use crate::checkpoint::{Checkpoint, Position};
use crate::quota::QuotaWindow;
use crate::settings::{Action, EmailSettings, Rule};

/// The Gmail service's name, as the engine asks the runner for it.
pub const GMAIL: &str = "gmail";
/// The webhook service's name (one client for every rule's webhook, keyed by host).
pub const WEBHOOK: &str = "webhook";

/// The defaults of `[services.gmail]`: Google's host and OAuth client from the environment.
const GMAIL_DEFAULTS: &str = r#"
base_url = "https://gmail.googleapis.com"
[timeouts]
attempt = "30s"
overall = "2m"
[oauth]
client_id_env = "GOOGLE_CLIENT_ID"
client_secret_env = "GOOGLE_CLIENT_SECRET"
scopes = ["https://www.googleapis.com/auth/gmail.modify"]
"#;

/// The defaults of `[services.webhook]`: short timeouts, a few tries; a delivery that still
/// fails waits for the next run.
const WEBHOOK_DEFAULTS: &str = r#"
[timeouts]
attempt = "10s"
overall = "30s"
[retry]
max_attempts = 3
"#;

/// Store entry kinds.
const SEEN: &str = "seen";
const DONE: &str = "done";
const PENDING: &str = "pending";
const INTENT: &str = "intent";

/// Pending actions retried per run, oldest first.
const PENDING_PER_RUN: usize = 200;

/// The engine of `engine = "email"` tasks.
#[derive(Debug)]
pub struct EmailEngine {
    settings: EmailSettings,
    quota: Arc<Mutex<QuotaWindow>>,
}

impl EmailEngine {
    /// The engine for one task, its `jsonl` paths made relative to the config file's folder.
    pub fn new(mut settings: EmailSettings, setup: &EngineSetup) -> Self {
        for rule in &mut settings.rules {
            for action in &mut rule.actions {
                if let Action::Jsonl(path) = action {
                    *path = setup.resolve(&*path);
                }
            }
        }
        let quota = Arc::new(Mutex::new(QuotaWindow::new(settings.quota_per_minute)));
        Self { settings, quota }
    }
}

/// What an action for a message is, in the action log (`message/rule/action`).
fn log_key(message: &str, rule: &str, action: &Action) -> String {
    format!("{message}/{rule}/{}", action.kind())
}

/// An action that failed for now, with what it needs to be tried again.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    delivery: Delivery,
    action: String,
    attempts: u32,
    last_error: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    note: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    rules: Vec<String>,
}

/// What a message came to.
enum Handled {
    /// Looked at now (rules run, actions done or pending).
    New,
    /// Seen by an earlier run, or gone from the mailbox.
    Skipped,
    /// Received before the watch began (a resync stops there: the list is newest first).
    BeforeWatch,
}

/// What one run did.
#[derive(Default)]
struct Tally {
    messages: u64,
    done: u64,
    pending: u64,
}

/// What a run works with.
struct Run<'a> {
    engine: &'a EmailEngine,
    gmail: Gmail,
    webhook: Client,
    tally: Tally,
}

#[async_trait::async_trait]
impl Engine for EmailEngine {
    fn name(&self) -> &str {
        "email"
    }

    fn services(&self) -> Vec<String> {
        vec![GMAIL.to_owned(), WEBHOOK.to_owned()]
    }

    fn service_defaults(&self, service: &str) -> Option<String> {
        match service {
            GMAIL => Some(GMAIL_DEFAULTS.to_owned()),
            WEBHOOK => Some(WEBHOOK_DEFAULTS.to_owned()),
            _ => None,
        }
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let s = &self.settings;
        let gmail = Gmail::new(cx.client(GMAIL)?.clone(), self.quota.clone(), cx.clock());
        let mut run = Run {
            engine: self,
            gmail,
            webhook: cx.client(WEBHOOK)?.clone(),
            tally: Tally::default(),
        };

        // 1. What could not be done before (a webhook that was down) goes first.
        run.retry_pending(cx).await?;

        // 2. Where the last run left the mailbox. The watch begins at the first run, saved
        //    before Gmail is asked: if it cannot answer, what arrives meanwhile is still new.
        let (mut cp, fresh) = match cx.checkpoint::<Checkpoint>()? {
            Some(cp) => (cp, false),
            None => {
                let cp = Checkpoint { since: cx.clock().wall(), at: Position::Start };
                cx.save_checkpoint(&cp).await?;
                (cp, true)
            }
        };

        // 3. Page by page; the checkpoint moves once a page's actions are all recorded.
        loop {
            let (ids, next, last) = match &cp.at {
                Position::Start => {
                    // Taken before listing, as for a resync: mail arriving meanwhile is in
                    // this history. A watch that began in an earlier run lists what came since.
                    let history_id = run.gmail.history_id().await?;
                    cp.at = if fresh {
                        Position::History { history_id, page: None, resume: None }
                    } else {
                        Position::Resync { history_id, page: None, listed: 0 }
                    };
                    cx.save_checkpoint(&cp).await?;
                    continue;
                }
                Position::History { history_id, page, resume } => {
                    match run
                        .gmail
                        .history(*history_id, &s.label, page.as_deref(), s.page_size)
                        .await
                    {
                        Ok(p) => {
                            // The first page's id: a later page's may be past records the
                            // listing never showed.
                            let resume = resume.unwrap_or(p.history_id);
                            let next = match p.next {
                                Some(page) => Position::History {
                                    history_id: *history_id,
                                    page: Some(page),
                                    resume: Some(resume),
                                },
                                None => Position::History {
                                    history_id: resume,
                                    page: None,
                                    resume: None,
                                },
                            };
                            let last = matches!(next, Position::History { page: None, .. });
                            (p.added, next, last)
                        }
                        Err(ApiError::HistoryGone) => {
                            // Taken before listing: mail arriving meanwhile is in this history.
                            let history_id = run.gmail.history_id().await?;
                            tracing::warn!(task = %cx.task(), history_id, "gmail's history ran out; resyncing the newest messages");
                            cp.at = Position::Resync { history_id, page: None, listed: 0 };
                            cx.save_checkpoint(&cp).await?;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Position::Resync { history_id, page, listed } => {
                    let room = s.resync_limit.saturating_sub(*listed).min(s.page_size).max(1);
                    let p = run.gmail.list(&s.label, page.as_deref(), room).await?;
                    let listed =
                        listed.saturating_add(u32::try_from(p.ids.len()).unwrap_or(u32::MAX));
                    let done =
                        Position::History { history_id: *history_id, page: None, resume: None };
                    match p.next {
                        Some(page) if listed < s.resync_limit => (
                            p.ids,
                            Position::Resync { history_id: *history_id, page: Some(page), listed },
                            false,
                        ),
                        _ => (p.ids, done, true),
                    }
                }
            };
            let resync = matches!(cp.at, Position::Resync { .. });
            let mut before_watch = false;
            for id in ids {
                let not_before = resync.then_some(cp.since);
                if let Handled::BeforeWatch = run.message(cx, &id, not_before).await? {
                    before_watch = true;
                    break;
                }
            }
            let (next, last) = match (before_watch, &cp.at) {
                (true, Position::Resync { history_id, .. }) => {
                    (Position::History { history_id: *history_id, page: None, resume: None }, true)
                }
                _ => (next, last),
            };
            cp.at = next;
            cx.save_checkpoint(&cp).await?;
            if last {
                break;
            }
        }
        let t = &run.tally;
        Ok(RunSummary::new().items(t.messages).note(format!(
            "{} new message(s), {} action(s) done, {} pending",
            t.messages, t.done, t.pending
        )))
    }
}

impl Run<'_> {
    /// Looks at message `id` once: fetch, rules, actions, then "seen".
    async fn message(
        &mut self,
        cx: &mut TaskContext,
        id: &str,
        not_before: Option<jiff::Timestamp>,
    ) -> Result<Handled, TaskError> {
        let task = cx.task().to_owned();
        if cx.store().entry::<Seen>(&task, SEEN, id).await?.is_some() {
            return Ok(Handled::Skipped);
        }
        let Some(message) = self.gmail.message(id).await? else {
            return Ok(Handled::Skipped);
        };
        if not_before.is_some_and(|since| message.received < since) {
            return Ok(Handled::BeforeWatch);
        }
        let now = cx.clock().wall();
        let mut matched = Vec::new();
        for rule in self.engine.settings.rules.iter().filter(|r| r.matches(&message, now)) {
            for action in &rule.actions {
                self.act(cx, rule, action, &message, 0).await?;
            }
            matched.push(rule.name.clone());
        }
        cx.store().insert_entry(&task, SEEN, id, &Seen { rules: matched }).await?;
        self.tally.messages += 1;
        cx.progress(self.tally.messages, None, format!("message {id} looked at"));
        Ok(Handled::New)
    }

    /// Does one action once, unless the log says it was done; records done or pending.
    async fn act(
        &mut self,
        cx: &mut TaskContext,
        rule: &Rule,
        action: &Action,
        message: &MessageSummary,
        attempts: u32,
    ) -> Result<(), TaskError> {
        let task = cx.task().to_owned();
        let key = log_key(&message.id, &rule.name, action);
        let store = cx.store().clone();
        if store.entry::<Done>(&task, DONE, &key).await?.is_some() {
            store.delete_entry(&task, PENDING, &key).await?;
            return Ok(());
        }
        let delivery = Delivery {
            key: format!("{}/{key}", encode(&task)),
            task: task.clone(),
            rule: rule.name.clone(),
            message: message.clone(),
        };
        let timeout = self.engine.settings.command_timeout;
        let outcome = match action {
            Action::Labels { add, remove } => {
                actions::labels(&self.gmail, &message.id, add, remove).await.map(str::to_owned)
            }
            Action::Webhook(url) => actions::webhook(&self.webhook, url, &delivery).await,
            Action::Jsonl(path) => actions::jsonl(&store, &task, &key, path, &delivery).await,
            Action::Command(argv) => actions::command(argv, &delivery, timeout, cx.clock()).await,
        };
        match outcome {
            Ok(note) => {
                store.insert_entry(&task, DONE, &key, &Done { note }).await?;
                store.delete_entry(&task, PENDING, &key).await?;
                if let Action::Jsonl(_) = action {
                    store.delete_entry(&task, INTENT, &key).await?;
                }
                self.tally.done += 1;
                Ok(())
            }
            Err(Failure::Later(why)) => {
                let pending = Pending {
                    delivery,
                    action: action.kind().to_owned(),
                    attempts: attempts + 1,
                    last_error: why.clone(),
                };
                store.put_entry(&task, PENDING, &key, &pending).await?;
                cx.skip(action.kind(), format!("rule {}: {why}; tried again next run", rule.name));
                self.tally.pending += 1;
                Ok(())
            }
            Err(Failure::Fatal(e)) => Err(e),
        }
    }

    /// Tries the pending actions again, oldest first.
    async fn retry_pending(&mut self, cx: &mut TaskContext) -> Result<(), TaskError> {
        let task = cx.task().to_owned();
        let pending = cx.store().entries::<Pending>(&task, PENDING, None, PENDING_PER_RUN).await?;
        for entry in pending {
            let p = entry.value;
            let rules = &self.engine.settings.rules;
            let found = rules.iter().find(|r| r.name == p.delivery.rule).and_then(|rule| {
                rule.actions.iter().find(|a| a.kind() == p.action).map(|a| (rule, a))
            });
            let Some((rule, action)) = found else {
                tracing::warn!(task = %task, key = %entry.key, "a pending action's rule is no longer configured; dropped");
                cx.store().delete_entry(&task, PENDING, &entry.key).await?;
                continue;
            };
            self.act(cx, rule, action, &p.delivery.message, p.attempts).await?;
        }
        Ok(())
    }
}
