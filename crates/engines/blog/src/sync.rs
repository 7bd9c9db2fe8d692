//! Bringing one post's copies in step: the original first, then the others pointing at it.
//!
//! For each target a copy is in one of the states of [`CopyState`], and every change of state is
//! saved before the next call:
//!
//! ```text
//!  (none) ──intent saved──▶ Sending ──create answered──▶ Published ──file changed──▶ update
//!                              │ answer lost: search the target for the marker
//!                              ├─ found ──────────────▶ Published
//!                              └─ not there: create again (the next time the target answers)
//! ```
//!
//! The original is the first of the post's targets that publishes (the primary unless it is
//! down); the others get `canonical_url` = the original's URL. A copy found or published later
//! than the original is brought in step by an update, so a target that was down catches up
//! with the right canonical URL.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use tokio::time::Instant;
use unattended_client::Client;
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_runner::{TaskContext, TaskError};

use crate::api::{ApiError, Article, Dev, Draft, Hashnode};
use crate::checkpoint::{CopyState, LastCreate, Ledger, POST_ENTRY, PostRecord};
use crate::post::{Post, sha256};
use crate::settings::{Pace, Target};

/// One target's API.
#[derive(Clone, Debug)]
pub(crate) enum Api {
    Dev(Dev),
    Hashnode(Hashnode),
}

impl Api {
    pub(crate) fn new(target: Target, client: Client, clock: Clock, publication: &str) -> Self {
        match target {
            Target::Dev => Self::Dev(Dev::new(client, clock)),
            Target::Hashnode => Self::Hashnode(Hashnode::new(client, publication, clock)),
        }
    }

    async fn create(&self, draft: &Draft) -> Result<Article, ApiError> {
        match self {
            Self::Dev(api) => api.create(draft).await,
            Self::Hashnode(api) => api.create(draft).await,
        }
    }

    async fn update(&self, id: &str, draft: &Draft) -> Result<Article, ApiError> {
        match self {
            Self::Dev(api) => api.update(id, draft).await,
            Self::Hashnode(api) => api.update(id, draft).await,
        }
    }

    async fn find(&self, marker: &str) -> Result<Option<Article>, ApiError> {
        match self {
            Self::Dev(api) => api.find(marker).await,
            Self::Hashnode(api) => api.find(marker).await,
        }
    }

    async fn marked(&self) -> Result<Vec<(String, Article)>, ApiError> {
        match self {
            Self::Dev(api) => api.marked().await,
            Self::Hashnode(api) => api.marked().await,
        }
    }
}

/// What one run did, and what it met.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Copies created.
    pub(crate) published: u64,
    /// Copies updated.
    pub(crate) updated: u64,
    /// Copies whose answer was lost, found again on the target.
    pub(crate) found: u64,
    /// Copies already in step.
    pub(crate) unchanged: u64,
    /// Posts a target refused, with its message.
    pub(crate) refused: Vec<String>,
}

/// A run over the posts: the targets' APIs, their pace, and the targets set aside.
#[derive(Debug)]
pub(crate) struct Run {
    apis: BTreeMap<Target, Api>,
    clock: Clock,
    pace: Pace,
    last_write: BTreeMap<Target, Instant>,
    /// The copies already on each target, by marker: read once a run, the first time a post
    /// the task has no record of is about to be created there (so records lost with a state
    /// file do not publish a post twice).
    index: BTreeMap<Target, BTreeMap<String, Article>>,
    /// Whether the post at hand had no record when its turn came.
    unknown: bool,
    /// Targets set aside for the rest of the run, and why.
    pub(crate) benched: BTreeMap<Target, String>,
    /// Targets whose credentials were refused.
    pub(crate) refused_credentials: BTreeMap<Target, String>,
    /// Targets whose writes wait for their time window, and when it opens.
    pub(crate) gated: BTreeMap<Target, Timestamp>,
    /// The first failure that needs a human.
    pub(crate) stop: Option<TaskError>,
    pub(crate) tally: Tally,
}

/// What a copy of `post` holds when it points at `canonical`: the file's hash and the
/// canonical URL, so a copy is updated when either changes.
fn version(post: &Post, canonical: Option<&str>) -> String {
    sha256(format!("{}\n{}", post.hash, canonical.unwrap_or("")).as_bytes())
}

fn is_published(record: &PostRecord, target: Target) -> bool {
    matches!(record.targets.get(&target), Some(CopyState::Published { .. }))
}

impl Run {
    pub(crate) fn new(apis: BTreeMap<Target, Api>, clock: Clock, pace: Pace) -> Self {
        Self {
            apis,
            clock,
            pace,
            last_write: BTreeMap::new(),
            index: BTreeMap::new(),
            unknown: false,
            benched: BTreeMap::new(),
            refused_credentials: BTreeMap::new(),
            gated: BTreeMap::new(),
            stop: None,
            tally: Tally::default(),
        }
    }

    /// Brings `post`'s copies in step: the original first, then the others.
    ///
    /// # Errors
    ///
    /// Only the store's (a target's failure sets the target aside for the run).
    pub(crate) async fn post(
        &mut self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
    ) -> Result<(), TaskError> {
        self.unknown = !ledger.posts.contains_key(&post.key);
        let record = ledger.record(post);
        let external = post.meta.canonical_url.as_deref();
        let mut tried = BTreeSet::new();
        if external.is_none() {
            // The original's copy must be there; else the first copy there is the original.
            if record.original.is_some_and(|o| !is_published(record, o)) {
                record.original = None;
            }
            if record.original.is_none() {
                record.original =
                    post.meta.targets.iter().copied().find(|t| is_published(record, *t));
            }
            if record.original.is_none() {
                for &target in &post.meta.targets {
                    tried.insert(target);
                    if self.copy(cx, ledger, post, target, None).await? {
                        let record = ledger.record(post);
                        record.original = Some(target);
                        save(cx, &post.key, record).await?;
                        break;
                    }
                }
            }
        }
        let Some(record) = ledger.posts.get(&post.key) else { return Ok(()) };
        let original = record.original;
        if external.is_none() && original.is_none() {
            // Published nowhere yet: the others wait for the original's URL.
            return Ok(());
        }
        for &target in &post.meta.targets {
            // Those tried for the original failed, or became it just now.
            if tried.contains(&target) {
                continue;
            }
            let record = &ledger.posts[&post.key];
            let canonical = match external {
                Some(url) => Some(url.to_owned()),
                None if Some(target) == original => None,
                None => record.original_url().map(str::to_owned),
            };
            self.copy(cx, ledger, post, target, canonical.as_deref()).await?;
        }
        Ok(())
    }

    /// Makes `target`'s copy of `post` hold the current version pointing at `canonical`:
    /// nothing if it does, an update if it holds an older one, a create (after the intent is
    /// saved, and after a search if an earlier create's answer was lost) if there is none.
    /// `true` if the copy is in step at the end.
    async fn copy(
        &mut self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
        target: Target,
        canonical: Option<&str>,
    ) -> Result<bool, TaskError> {
        if self.benched.contains_key(&target) {
            return Ok(false);
        }
        let version = version(post, canonical);
        let draft = Draft::new(post, canonical);
        let api = self.apis[&target].clone();
        let previous = ledger.posts[&post.key].targets.get(&target).cloned();
        match previous.clone() {
            Some(CopyState::Published { version: held, .. }) if held == version => {
                self.tally.unchanged += 1;
                return Ok(true);
            }
            Some(CopyState::Published { id, .. }) => {
                return self.update(cx, ledger, post, target, &api, &id, &draft, version).await;
            }
            Some(CopyState::Refused { version: refused, .. }) if refused == version => {
                return Ok(false);
            }
            Some(CopyState::Sending { version: sent, .. }) => {
                // An earlier create's answer was lost: look before creating again.
                match api.find(&post.marker).await {
                    Ok(Some(article)) => {
                        self.tally.found += 1;
                        let id = article.id.clone();
                        let in_step = sent == version;
                        self.set(cx, ledger, post, target, published(article, sent)).await?;
                        if in_step {
                            return Ok(true);
                        }
                        return self
                            .update(cx, ledger, post, target, &api, &id, &draft, version)
                            .await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.fail(cx, target, &e);
                        return Ok(false);
                    }
                }
            }
            None if self.unknown => match self.already_there(&api, target, &post.marker).await {
                Ok(Some(article)) => {
                    // A copy the checkpoint does not know: adopted, and brought in step.
                    tracing::info!(post = %post.key, %target, url = %article.url, "a copy is already there: adopted");
                    self.tally.found += 1;
                    let id = article.id.clone();
                    self.set(cx, ledger, post, target, published(article, String::new())).await?;
                    return self.update(cx, ledger, post, target, &api, &id, &draft, version).await;
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(cx, target, &e);
                    return Ok(false);
                }
            },
            Some(CopyState::Refused { .. }) | None => {}
        }

        // The intent is in the store before the create is sent (the checkpoint's version check
        // stops here a second process running this task).
        let since = self.clock.wall();
        cx.save_checkpoint(&LastCreate { post: post.key.clone(), target, at: since }).await?;
        let intent = CopyState::Sending { version: version.clone(), since };
        self.set(cx, ledger, post, target, intent).await?;
        self.pace(target).await;
        let created = api.create(&draft).await;
        self.wrote(target);
        match created {
            Ok(article) => {
                self.tally.published += 1;
                self.set(cx, ledger, post, target, published(article, version)).await?;
                Ok(true)
            }
            Err(e) if e.may_have_applied() => match api.find(&post.marker).await {
                Ok(Some(article)) => {
                    tracing::info!(post = %post.key, %target, error = %e, "the create's answer was lost; the post is there");
                    self.tally.found += 1;
                    self.set(cx, ledger, post, target, published(article, version)).await?;
                    Ok(true)
                }
                Ok(None) if matches!(e, ApiError::Taken { .. }) => {
                    self.refuse(cx, ledger, post, target, version, &e).await?;
                    Ok(false)
                }
                // Not there (yet): the intent stays, and the target is searched again first.
                Ok(None) => {
                    self.fail(cx, target, &e);
                    Ok(false)
                }
                Err(lookup) => {
                    tracing::warn!(post = %post.key, %target, error = %e, "a create failed and the post could not be looked for");
                    self.fail(cx, target, &lookup);
                    Ok(false)
                }
            },
            Err(e) => {
                // Nothing was done: the intent goes.
                self.restore(cx, ledger, post, target, previous).await?;
                if e.is_about_the_post() {
                    self.refuse(cx, ledger, post, target, version, &e).await?;
                } else {
                    self.fail(cx, target, &e);
                }
                Ok(false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &mut self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
        target: Target,
        api: &Api,
        id: &str,
        draft: &Draft,
        version: String,
    ) -> Result<bool, TaskError> {
        self.pace(target).await;
        let updated = api.update(id, draft).await;
        self.wrote(target);
        match updated {
            Ok(article) => {
                self.tally.updated += 1;
                self.set(cx, ledger, post, target, published(article, version)).await?;
                Ok(true)
            }
            Err(e) if e.is_about_the_post() => {
                self.refuse(cx, ledger, post, target, version, &e).await?;
                Ok(false)
            }
            Err(e) => {
                self.fail(cx, target, &e);
                Ok(false)
            }
        }
    }

    async fn set(
        &self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
        target: Target,
        state: CopyState,
    ) -> Result<(), TaskError> {
        let record = ledger.record(post);
        record.targets.insert(target, state);
        save(cx, &post.key, record).await
    }

    async fn restore(
        &self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
        target: Target,
        previous: Option<CopyState>,
    ) -> Result<(), TaskError> {
        let record = ledger.record(post);
        match previous {
            Some(state) => record.targets.insert(target, state),
            None => record.targets.remove(&target),
        };
        save(cx, &post.key, record).await
    }

    /// The target refused this version of the post: it fails with the target's message until
    /// the file changes.
    async fn refuse(
        &mut self,
        cx: &mut TaskContext,
        ledger: &mut Ledger,
        post: &Post,
        target: Target,
        version: String,
        e: &ApiError,
    ) -> Result<(), TaskError> {
        let message = match e {
            ApiError::Rejected { message, .. }
            | ApiError::Taken { message, .. }
            | ApiError::NotFound { message, .. } => message.clone(),
            other => other.to_string(),
        };
        tracing::warn!(post = %post.key, file = %post.path.display(), %target, %message, "the target refused the post");
        self.tally.refused.push(format!("{} on {target}: {message}", post.path.display()));
        self.set(cx, ledger, post, target, CopyState::Refused { version, message }).await
    }

    /// Sets `target` aside for the rest of the run, and notes what its failure needs.
    fn fail(&mut self, cx: &mut TaskContext, target: Target, e: &ApiError) {
        let why = e.to_string();
        match e.disposition() {
            Disposition::Reauthorize => {
                self.refused_credentials.insert(target, why.clone());
            }
            Disposition::RetryAt(at) if matches!(e, ApiError::Client(c) if c.is_outside_window()) =>
            {
                let at = self.gated.get(&target).map_or(at, |t| (*t).min(at));
                self.gated.insert(target, at);
            }
            Disposition::RetryAt(_) | Disposition::Skip(_) => cx.skip(target, &why),
            // Stop, and whatever else a disposition may come to mean: a human looks.
            _ => {
                if self.stop.is_none() {
                    let help = format!("{}, then `unattended reset {}`", fix(target, e), cx.task());
                    self.stop = Some(TaskError::stop(format!("{target}: {why}")).with_help(help));
                }
            }
        }
        self.benched.insert(target, why);
    }

    /// The copy of the post marked `marker` already on `target`, from the run's index of it.
    async fn already_there(
        &mut self,
        api: &Api,
        target: Target,
        marker: &str,
    ) -> Result<Option<Article>, ApiError> {
        if let Some(index) = self.index.get(&target) {
            return Ok(index.get(marker).cloned());
        }
        let index: BTreeMap<String, Article> = api.marked().await?.into_iter().collect();
        let found = index.get(marker).cloned();
        self.index.insert(target, index);
        Ok(found)
    }

    /// Waits until `target` may be written to again.
    async fn pace(&self, target: Target) {
        if let Some(last) = self.last_write.get(&target) {
            self.clock.sleep_until(*last + self.pace.of(target)).await;
        }
    }

    fn wrote(&mut self, target: Target) {
        self.last_write.insert(target, self.clock.now());
    }
}

/// What a human should fix when `e` stops the task.
fn fix(target: Target, e: &ApiError) -> String {
    match e {
        ApiError::Publication { .. } => "set the task's `hashnode_publication` to the id of a \
             publication the token's user may publish to"
            .to_owned(),
        ApiError::Forbidden { .. } => format!("give the {target} token the rights it lacks"),
        ApiError::Refused { .. } => format!(
            "check `base_url` in `[services.{target}]`; if it is right, {target}'s API has \
             changed and the engine must follow"
        ),
        _ => format!("read the error, and what {target} says about its API"),
    }
}

/// Writes `key`'s record to the store (one entry, alone), and counts as a heartbeat.
async fn save(cx: &mut TaskContext, key: &str, record: &PostRecord) -> Result<(), TaskError> {
    cx.store().put_entry(cx.task(), POST_ENTRY, key, record).await?;
    Ok(())
}

fn published(article: Article, version: String) -> CopyState {
    CopyState::Published { id: article.id, url: article.url, version }
}
