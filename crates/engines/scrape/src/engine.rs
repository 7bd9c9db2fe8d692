//! The engine: one run is a round over the watched pages, politely, resumable at every page.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use http::{HeaderValue, Uri};
use jiff::Timestamp;
use robotxt::Robots;
use unattended_client::Client;
use unattended_core::{Clock, Disposition, HasDisposition as _};
use unattended_runner::{Engine, EngineSetup, RunSummary, TaskContext, TaskError};
use unattended_store::Store;

use crate::api::{self, FetchError, PageAnswer, SitemapItem, Validators};
use crate::checkpoint::{Checkpoint, Outgoing, PageState, Round};
use crate::extract::{self, Extractor, Fields};
use crate::polite::{self, CachedRobots, Pace, Verdict};
use crate::report::{self, Change, ChangeKind, Sink};
use crate::settings::{ScrapeSettings, page_url};

/// The service pages, `robots.txt` and sitemaps are fetched through.
pub const WEB: &str = "web";
/// The service changes are POSTed through, when a webhook is configured.
pub const WEBHOOK: &str = "webhook";

/// The defaults of the `web` service: no base URL (requests carry full URLs), patient retries.
const WEB_DEFAULTS: &str = "[retry]\nmax_attempts = 3\n";

/// Store entry kinds.
const PAGE: &str = "page";
const ROBOTS: &str = "robots";
const CHANGE: &str = "change";

/// Nested sitemaps followed from one sitemap index, at most.
const MAX_SITEMAPS: usize = 50;

/// The scrape engine: watches pages, extracts fields, reports what changed.
///
/// Each run works through a *round*, one pass over every page (the settings' and those their
/// sitemaps list), saved in the checkpoint as its list of pages and which are done:
///
/// 1. changes and page states a run cut short had recorded are applied (idempotently);
/// 2. a new round is planned if none is open (sitemaps fetched like any page);
/// 3. the hosts are crawled side by side, one request in flight per host, each request a
///    `Crawl-delay` (or `min_delay`) after the last, `robots.txt` obeyed; every page's outcome
///    is saved in the checkpoint and then applied: its state to the store, its change to the
///    sinks;
/// 4. the round closes when every page is done; pages of a host that asked to wait (`429`,
///    `503`, an open breaker, an unreachable `robots.txt`) keep it open, and the run says when
///    to come back.
#[derive(Clone, Debug)]
pub struct ScrapeEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: ScrapeSettings,
    extractor: Extractor,
    agent: HeaderValue,
    jsonl: Option<PathBuf>,
    webhook: Option<Uri>,
    sinks: Vec<Sink>,
}

impl ScrapeEngine {
    /// The engine for `settings`, its paths resolved against the config's folder.
    ///
    /// # Errors
    ///
    /// The settings are not usable (the message says what to change).
    pub fn new(settings: ScrapeSettings, setup: &EngineSetup) -> Result<Self, String> {
        settings.check()?;
        let extractor = Extractor::new(&settings.fields)?;
        let agent = HeaderValue::from_str(&settings.user_agent)
            .map_err(|_| "user_agent is not a valid header value".to_owned())?;
        let jsonl = settings.report.jsonl.as_ref().map(|p| setup.resolve(p));
        let webhook = match &settings.report.webhook {
            Some(url) => {
                Some(url.parse::<Uri>().map_err(|e| format!("report.webhook {url:?}: {e}"))?)
            }
            None => None,
        };
        let mut sinks = Vec::new();
        if jsonl.is_some() {
            sinks.push(Sink::Jsonl);
        }
        if settings.reports_to_store() {
            sinks.push(Sink::Store);
        }
        if webhook.is_some() {
            sinks.push(Sink::Webhook);
        }
        Ok(Self { inner: Arc::new(Inner { settings, extractor, agent, jsonl, webhook, sinks }) })
    }
}

#[async_trait::async_trait]
impl Engine for ScrapeEngine {
    fn name(&self) -> &str {
        "scrape"
    }

    fn services(&self) -> Vec<String> {
        let mut services = vec![WEB.to_owned()];
        if self.inner.webhook.is_some() {
            services.push(WEBHOOK.to_owned());
        }
        services
    }

    fn service_defaults(&self, service: &str) -> Option<String> {
        match service {
            WEB => Some(WEB_DEFAULTS.to_owned()),
            WEBHOOK => Some(String::new()),
            _ => None,
        }
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let mut run = Run::new(self.inner.clone(), cx)?;
        // 1. What a run cut short recorded but may not have applied.
        run.flush(cx).await?;
        // 2. A new round, unless one is open (and not too old).
        run.close_stale_round(cx);
        if run.cp.round.is_none() {
            let round = run.plan_round(cx).await?;
            run.cp.round = Some(round);
            cx.save_checkpoint(&run.cp).await?;
        }
        // 3. The crawl: each page saved in the checkpoint, then applied.
        run.crawl(cx).await?;
        // 4. The round closes, or waits for the hosts that asked us to.
        run.finish(cx).await
    }
}

/// What the step futures share.
#[derive(Clone)]
struct Shared {
    inner: Arc<Inner>,
    web: Client,
    clock: Clock,
    store: Store,
    task: Arc<str>,
}

/// One host of the crawl: its pace, its rules once known, its pages still to fetch.
struct Host {
    origin: String,
    pace: Pace,
    robots: Option<Robots>,
    queue: VecDeque<(usize, String)>,
}

/// A host that asked to be left alone (or could not be asked), and until when if it said.
#[derive(Debug)]
struct Deferral {
    origin: String,
    why: String,
    until: Option<Timestamp>,
}

/// What one step of one host gave.
enum Step {
    /// Page `i` was looked at.
    Page { i: usize, previous: Option<PageState>, outcome: Outcome },
    /// The host is deferred; its pages stay in the round.
    Deferred(Deferral),
}

enum Outcome {
    Fetched { validators: Validators, fields: Fields },
    NotModified { validators: Validators },
    Gone(http::StatusCode),
    Disallowed,
    Failed(String),
}

/// Counts for the summary.
#[derive(Default)]
struct Tally {
    fetched: u64,
    unchanged: u64,
    changes: u64,
    disallowed: u64,
    failed: Vec<String>,
}

/// One run's state.
struct Run {
    shared: Shared,
    cp: Checkpoint,
    hosts: BTreeMap<String, Host>,
    deferred: Vec<Deferral>,
    tally: Tally,
    webhook_down: bool,
}

impl Run {
    fn new(inner: Arc<Inner>, cx: &TaskContext) -> Result<Self, TaskError> {
        let shared = Shared {
            inner,
            web: cx.client(WEB)?.clone(),
            clock: cx.clock(),
            store: cx.store().clone(),
            task: cx.task().into(),
        };
        let cp = cx.checkpoint()?.unwrap_or_default();
        Ok(Self {
            shared,
            cp,
            hosts: BTreeMap::new(),
            deferred: Vec::new(),
            tally: Tally::default(),
            webhook_down: false,
        })
    }

    fn settings(&self) -> &ScrapeSettings {
        &self.shared.inner.settings
    }

    /// A round open longer than `round_timeout` is closed: its host that stayed away must not
    /// keep the others from being watched. Its leftover pages come again in the next round.
    fn close_stale_round(&mut self, cx: &TaskContext) {
        let Some(round) = &self.cp.round else { return };
        let age = unattended_core::clock::duration_between(round.started, cx.clock().wall());
        if age > self.settings().round_timeout {
            let left = round.pending().count();
            tracing::warn!(task = %cx.task(), left, "a round stayed open past round_timeout; starting a new one");
            self.cp.round = None;
        }
    }

    /// The pages of a new round: the settings' pages, then those of the sitemaps.
    async fn plan_round(&mut self, cx: &mut TaskContext) -> Result<Round, TaskError> {
        let max = self.settings().max_pages;
        let mut urls: Vec<String> = Vec::new();
        let push = |urls: &mut Vec<String>, url: String| {
            if urls.len() < max && !urls.contains(&url) {
                urls.push(url);
            }
        };
        for page in &self.settings().pages.clone() {
            if let Ok(url) = page_url(page) {
                push(&mut urls, url.to_string());
            }
        }
        let mut sitemaps: VecDeque<(String, u8)> =
            self.settings().sitemaps.iter().map(|s| (s.clone(), 0)).collect();
        let mut followed = 0;
        while let Some((sitemap, depth)) = sitemaps.pop_front() {
            if urls.len() >= max || followed >= MAX_SITEMAPS {
                break;
            }
            followed += 1;
            match self.sitemap(&sitemap).await {
                Ok(items) => {
                    for item in items {
                        match item {
                            SitemapItem::Page(loc) => match page_url(&loc) {
                                Ok(url) => push(&mut urls, url.to_string()),
                                Err(e) => tracing::debug!(%sitemap, %e, "a sitemap entry skipped"),
                            },
                            SitemapItem::Sitemap(loc) if depth == 0 => sitemaps.push_back((loc, 1)),
                            SitemapItem::Sitemap(_) => {}
                        }
                    }
                }
                Err(why) => cx.skip(origin_of(&sitemap), format!("sitemap {sitemap}: {why}")),
            }
        }
        Ok(Round { started: cx.clock().wall(), urls, done: Vec::new() })
    }

    /// The `<loc>`s of one sitemap, fetched politely like a page.
    async fn sitemap(&mut self, sitemap: &str) -> Result<Vec<SitemapItem>, String> {
        let uri: Uri = sitemap.parse().map_err(|e| format!("not a URL: {e}"))?;
        let origin = origin_of(sitemap);
        let shared = self.shared.clone();
        let host = self.host(&origin);
        if let Err(d) = ensure_robots(&shared, host).await {
            return Err(d.why);
        }
        if !host.robots.as_ref().is_some_and(|r| r.is_allowed(path_of(&uri))) {
            return Err("disallowed by robots.txt".to_owned());
        }
        wait_turn(&shared, host).await;
        // Sitemaps may be far bigger than pages (50 MB by the protocol): at least 10 MiB.
        let limit = shared.inner.settings.max_page_bytes.max(10 << 20);
        let items = api::fetch_sitemap(&shared.web, &uri, &shared.inner.agent, limit).await;
        host.pace.finished(shared.clock.now());
        items.map_err(|e| e.to_string())
    }

    fn host(&mut self, origin: &str) -> &mut Host {
        let delay = self.shared.inner.settings.min_delay;
        self.hosts.entry(origin.to_owned()).or_insert_with(|| Host {
            origin: origin.to_owned(),
            pace: Pace::new(delay),
            robots: None,
            queue: VecDeque::new(),
        })
    }

    /// Crawls the round's pages not done yet, host by host side by side.
    async fn crawl(&mut self, cx: &mut TaskContext) -> Result<(), TaskError> {
        let pending: Vec<(usize, String)> = match &self.cp.round {
            Some(round) => round.pending().map(|(i, u)| (i, u.to_owned())).collect(),
            None => return Ok(()),
        };
        let total = self.cp.round.as_ref().map_or(0, |r| r.urls.len() as u64);
        for (i, url) in pending {
            self.host(&origin_of(&url)).queue.push_back((i, url));
        }
        let mut waiting: VecDeque<Host> =
            std::mem::take(&mut self.hosts).into_values().filter(|h| !h.queue.is_empty()).collect();
        let mut running: FuturesUnordered<BoxFuture<'static, (Host, Step)>> =
            FuturesUnordered::new();
        let max_hosts = self.settings().max_hosts;
        loop {
            while running.len() < max_hosts && !cx.is_cancelled() {
                let Some(host) = waiting.pop_front() else { break };
                running.push(Box::pin(step(self.shared.clone(), host)));
            }
            let Some((host, outcome)) = running.next().await else { break };
            match outcome {
                Step::Page { i, previous, outcome } => {
                    self.record(cx, i, previous, outcome).await?;
                    if !host.queue.is_empty() && !cx.is_cancelled() {
                        running.push(Box::pin(step(self.shared.clone(), host)));
                    }
                }
                Step::Deferred(d) => {
                    tracing::info!(task = %cx.task(), host = %d.origin, why = %d.why, "host deferred");
                    self.deferred.push(d);
                }
            }
            let done = self.cp.round.as_ref().map_or(0, |r| r.done.len() as u64);
            cx.progress(done, Some(total), format!("{} change(s) so far", self.tally.changes));
        }
        Ok(())
    }

    /// Saves the outcome of page `i` in the checkpoint, then applies it.
    async fn record(
        &mut self,
        cx: &mut TaskContext,
        i: usize,
        previous: Option<PageState>,
        outcome: Outcome,
    ) -> Result<(), TaskError> {
        let Some(round) = &mut self.cp.round else { return Ok(()) };
        let Some(url) = round.urls.get(i).cloned() else { return Ok(()) };
        let now = cx.clock().wall();
        let task = cx.task().to_owned();
        let previous = previous.unwrap_or_default();
        let old = previous.hash.as_deref().zip(previous.fields.as_ref());
        let seq = previous.changes + 1;
        let (state, change) = match outcome {
            Outcome::Fetched { validators, fields } => {
                self.tally.fetched += 1;
                let hash = extract::hash(&fields);
                let kind = match &previous.hash {
                    None => Some(ChangeKind::New),
                    Some(h) if *h != hash => Some(ChangeKind::Changed),
                    Some(_) => None,
                };
                let change = kind.map(|kind| {
                    Change::new(&task, &url, seq, kind, now, old, Some((&hash, &fields)))
                });
                let state = PageState {
                    validators,
                    hash: Some(hash),
                    fields: Some(fields),
                    checked_at: Some(now),
                    error: None,
                    changes: previous.changes + u64::from(change.is_some()),
                };
                (Some(state), change)
            }
            Outcome::NotModified { validators } => {
                self.tally.unchanged += 1;
                let state = PageState {
                    validators,
                    checked_at: Some(now),
                    error: None,
                    ..previous.clone()
                };
                (Some(state), None)
            }
            Outcome::Gone(status) => {
                let change =
                    old.map(|_| Change::new(&task, &url, seq, ChangeKind::Gone, now, old, None));
                let state = PageState {
                    checked_at: Some(now),
                    error: Some(format!("gone ({})", status.as_u16())),
                    // Kept: a page that comes back is a new change, not its first one again.
                    changes: previous.changes + u64::from(change.is_some()),
                    ..PageState::default()
                };
                (Some(state), change)
            }
            Outcome::Disallowed => {
                self.tally.disallowed += 1;
                (None, None)
            }
            Outcome::Failed(error) => {
                self.tally.failed.push(format!("{url}: {error}"));
                let state =
                    PageState { checked_at: Some(now), error: Some(error), ..previous.clone() };
                (Some(state), None)
            }
        };
        round.mark_done(i);
        if let Some(state) = state {
            self.cp.unsaved.insert(url, state);
        }
        if let Some(change) = change {
            self.tally.changes += 1;
            let sinks = self.shared.inner.sinks.clone();
            self.cp.outbox.push(Outgoing { change, sinks });
        }
        cx.save_checkpoint(&self.cp).await?;
        self.flush(cx).await
    }

    /// Applies what the checkpoint recorded: page states to the store, changes to their sinks.
    /// Each effect is idempotent, so applying it again after a crash changes nothing.
    async fn flush(&mut self, cx: &mut TaskContext) -> Result<(), TaskError> {
        let store = &self.shared.store;
        let task = &*self.shared.task;
        for (url, state) in std::mem::take(&mut self.cp.unsaved) {
            store.put_entry(task, PAGE, &url, &state).await?;
        }
        if self.cp.outbox.is_empty() {
            return Ok(());
        }
        if let Some(path) = &self.shared.inner.jsonl {
            let due: Vec<&Change> = self
                .cp
                .outbox
                .iter()
                .filter(|o| o.sinks.contains(&Sink::Jsonl))
                .map(|o| &o.change)
                .collect();
            if !due.is_empty() {
                let len = report::append_jsonl(path, &due, self.cp.jsonl_len).map_err(|e| {
                    TaskError::stop(format!("cannot append changes to {}: {e}", path.display()))
                        .with_help("check the report.jsonl path, its permissions and free space")
                })?;
                self.cp.jsonl_len = Some(len);
                for o in &mut self.cp.outbox {
                    o.sinks.retain(|s| *s != Sink::Jsonl);
                }
            }
        }
        for o in self.cp.outbox.iter_mut().filter(|o| o.sinks.contains(&Sink::Store)) {
            store.insert_entry(task, CHANGE, &o.change.id, &o.change).await?;
            o.sinks.retain(|s| *s != Sink::Store);
        }
        if let Some(hook) = self.shared.inner.webhook.clone()
            && !self.webhook_down
        {
            let client = cx.client(WEBHOOK)?.clone();
            let agent = self.shared.inner.agent.clone();
            for o in self.cp.outbox.iter_mut().filter(|o| o.sinks.contains(&Sink::Webhook)) {
                let json = serde_json::to_vec(&o.change).unwrap_or_default();
                match api::post_json(&client, &hook, &agent, &o.change.id, json).await {
                    Ok(()) => o.sinks.retain(|s| *s != Sink::Webhook),
                    Err(e) => {
                        // Kept in the outbox for the next run; no more tries in this one.
                        self.webhook_down = true;
                        cx.skip(WEBHOOK, format!("changes not delivered yet: {e}"));
                        break;
                    }
                }
            }
        }
        self.cp.outbox.retain(|o| !o.sinks.is_empty());
        Ok(())
    }

    /// Closes the round if every page is done, saves, and says how the run went.
    async fn finish(mut self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let left = self.cp.round.as_ref().map_or(0, |r| r.pending().count());
        if left == 0 {
            self.cp.round = None;
        }
        cx.save_checkpoint(&self.cp).await?;
        let t = &self.tally;
        let mut note = format!(
            "{} fetched, {} unchanged, {} change(s), {} disallowed by robots.txt, {} failed",
            t.fetched,
            t.unchanged,
            t.changes,
            t.disallowed,
            t.failed.len()
        );
        if let Some(first) = t.failed.first() {
            note.push_str(&format!(" (first: {first})"));
        }
        let items = t.fetched + t.unchanged;
        if cx.is_cancelled() && left > 0 {
            let now = cx.clock().wall();
            return Err(TaskError::retry_at(
                now,
                format!("stopped with {left} page(s) left; {note}"),
            ));
        }
        let mut until: Option<Timestamp> = None;
        for d in &self.deferred {
            match d.until {
                Some(t) => until = Some(until.map_or(t, |u| u.min(t))),
                None => cx.skip(&d.origin, &d.why),
            }
        }
        if let Some(at) = until {
            let hosts: Vec<String> = self
                .deferred
                .iter()
                .filter(|d| d.until.is_some())
                .map(|d| format!("{} ({})", d.origin, d.why))
                .collect();
            return Err(TaskError::retry_at(
                at,
                format!("{left} page(s) wait until {at} for {}; {note}", hosts.join(", ")),
            ));
        }
        if left > 0 {
            note.push_str(&format!("; {left} page(s) left for the next run"));
        }
        Ok(RunSummary::new().items(items).note(note))
    }
}

/// One step of `host`: its rules if not known yet, then its next page.
async fn step(shared: Shared, mut host: Host) -> (Host, Step) {
    if let Err(d) = ensure_robots(&shared, &mut host).await {
        return (host, Step::Deferred(d));
    }
    let Some((i, url)) = host.queue.pop_front() else {
        let d = Deferral { origin: host.origin.clone(), why: "nothing left".into(), until: None };
        return (host, Step::Deferred(d));
    };
    let previous: Option<PageState> = match shared.store.entry(&shared.task, PAGE, &url).await {
        Ok(found) => found.map(|e| e.value),
        Err(e) => {
            let failed = Outcome::Failed(format!("its last state could not be read: {e}"));
            return (host, Step::Page { i, previous: None, outcome: failed });
        }
    };
    let outcome = match url.parse::<Uri>() {
        Err(e) => Outcome::Failed(format!("not a URL: {e}")),
        Ok(uri) if !host.robots.as_ref().is_some_and(|r| r.is_allowed(path_of(&uri))) => {
            Outcome::Disallowed
        }
        Ok(uri) => {
            wait_turn(&shared, &host).await;
            let validators = previous.as_ref().map(|p| p.validators.clone()).unwrap_or_default();
            let limit = shared.inner.settings.max_page_bytes;
            let answer =
                api::fetch_page(&shared.web, &uri, &shared.inner.agent, &validators, limit).await;
            host.pace.finished(shared.clock.now());
            match answer {
                Ok(PageAnswer::Fetched { html, validators }) => {
                    let fields = shared.inner.extractor.extract(&html);
                    Outcome::Fetched { validators, fields }
                }
                Ok(PageAnswer::NotModified { validators }) => Outcome::NotModified { validators },
                Ok(PageAnswer::Gone(status)) => Outcome::Gone(status),
                Err(e) if e.is_host_trouble() => {
                    host.queue.push_front((i, url));
                    let until = until_of(&e, &shared.clock);
                    let d = Deferral { origin: host.origin.clone(), why: e.to_string(), until };
                    return (host, Step::Deferred(d));
                }
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
    };
    (host, Step::Page { i, previous, outcome })
}

/// When to come back after `e`: the client's time, or now for a broken body; `None` for a
/// service that is down (the run is degraded, the next one tries again).
fn until_of(e: &FetchError, clock: &Clock) -> Option<Timestamp> {
    match e {
        FetchError::Client(e) => match e.disposition() {
            Disposition::RetryAt(t) => Some(t),
            _ => None,
        },
        _ => Some(clock.wall()),
    }
}

/// Makes sure `host` has its rules: from the store if fetched in the last 24 h, else asked
/// (in its turn). A host whose `robots.txt` is unreachable, and not cached, is deferred.
async fn ensure_robots(shared: &Shared, host: &mut Host) -> Result<(), Deferral> {
    if host.robots.is_some() {
        return Ok(());
    }
    let agent = shared.inner.settings.robots_agent();
    let defer = |why: String, until| Deferral { origin: host.origin.clone(), why, until };
    let cached: Option<CachedRobots> =
        match shared.store.entry(&shared.task, ROBOTS, &host.origin).await {
            Ok(found) => found.map(|e| e.value),
            Err(e) => {
                return Err(defer(format!("the robots.txt cache could not be read: {e}"), None));
            }
        };
    let now = shared.clock.wall();
    let robots = match polite::cached(cached.as_ref(), now, agent) {
        Some(robots) => robots,
        None => {
            wait_turn(shared, host).await;
            let answer = api::fetch_robots(&shared.web, &host.origin, &shared.inner.agent).await;
            host.pace.finished(shared.clock.now());
            let until = match &answer {
                api::RobotsAnswer::Unreachable {
                    disposition: Some(Disposition::RetryAt(t)),
                    ..
                } => Some(*t),
                api::RobotsAnswer::Unreachable { .. } => None,
                _ => None,
            };
            let (verdict, store) =
                polite::after_fetch(answer, cached.as_ref(), shared.clock.wall(), agent);
            if let Some(store) = store
                && let Err(e) =
                    shared.store.put_entry(&shared.task, ROBOTS, &host.origin, &store).await
            {
                tracing::warn!(host = %host.origin, %e, "robots.txt could not be cached");
            }
            match verdict {
                Verdict::Rules(robots) => robots,
                Verdict::Unreachable(why) => {
                    let why = format!("robots.txt unreachable, so nothing is crawled: {why}");
                    return Err(Deferral { origin: host.origin.clone(), why, until });
                }
            }
        }
    };
    if let Some(asked) = robots.crawl_delay()
        && asked > shared.inner.settings.max_crawl_delay
    {
        let why = format!(
            "robots.txt asks for a Crawl-delay of {} s, more than max_crawl_delay; not crawled",
            asked.as_secs()
        );
        return Err(Deferral { origin: host.origin.clone(), why, until: None });
    }
    host.pace.honour(robots.crawl_delay());
    host.robots = Some(robots);
    Ok(())
}

/// Waits for `host`'s turn.
async fn wait_turn(shared: &Shared, host: &Host) {
    if let Some(at) = host.pace.next_start() {
        shared.clock.sleep_until(at).await;
    }
}

/// `scheme://host[:port]` of a URL (lower-case, default port left out).
pub(crate) fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_owned(),
    }
}

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str)
}
