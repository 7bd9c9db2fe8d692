//! The `blog` engine: one run reads the folder and brings every ready post's copies in step.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use unattended_runner::{Engine, EngineSetup, RunSummary, TaskContext, TaskError};

use crate::checkpoint::Ledger;
use crate::post::Folder;
use crate::settings::{BlogSettings, Pace, Target};
use crate::sync::{Api, Run};

/// DEV's service, unless the config file says otherwise: the key from `DEV_API_KEY`.
const DEV_DEFAULTS: &str = r#"
base_url = "https://dev.to"
[auth]
kind = "header"
name = "api-key"
token_env = "DEV_API_KEY"
"#;

/// Hashnode's service, unless the config file says otherwise: the token from `HASHNODE_TOKEN`.
const HASHNODE_DEFAULTS: &str = r#"
base_url = "https://gql.hashnode.com"
[auth]
kind = "header"
name = "authorization"
token_env = "HASHNODE_TOKEN"
"#;

/// Publishes a folder of Markdown posts to DEV and Hashnode, cross-posted, exactly once.
///
/// Its services are its targets, by name (`dev`, `hashnode`); their defaults take the keys
/// from `DEV_API_KEY` and `HASHNODE_TOKEN`. Writes are the `write` action class, so a
/// `[services.dev.gate.write]` window (say `daily 09:00-22:00` in the writer's zone) keeps
/// publishing to it.
#[derive(Clone, Debug)]
pub struct BlogEngine {
    folder: PathBuf,
    targets: Vec<Target>,
    publication: String,
    pace: Pace,
}

impl BlogEngine {
    /// The engine for a task with `settings`, its folder relative to the config file.
    ///
    /// # Errors
    ///
    /// The settings cannot work (see [`BlogSettings::check`]).
    pub fn new(settings: BlogSettings, setup: &EngineSetup) -> Result<Self, String> {
        settings.check()?;
        Ok(Self {
            folder: setup.resolve(&settings.folder),
            targets: settings.targets,
            publication: settings.hashnode_publication.unwrap_or_default().trim().to_owned(),
            pace: settings.pace,
        })
    }
}

#[async_trait::async_trait]
impl Engine for BlogEngine {
    fn name(&self) -> &str {
        "blog"
    }

    fn services(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name().to_owned()).collect()
    }

    fn service_defaults(&self, service: &str) -> Option<String> {
        match service {
            "dev" => Some(DEV_DEFAULTS.to_owned()),
            "hashnode" => Some(HASHNODE_DEFAULTS.to_owned()),
            _ => None,
        }
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        // 1. Where every post's copies stand (one store entry per post).
        let mut ledger = Ledger::load(cx.store(), cx.task()).await?;

        // 2. The folder: posts, and files that are not valid posts (reported, left out).
        let folder = Folder::read(&self.folder, &self.targets).map_err(|e| {
            TaskError::stop(format!("the folder {} cannot be read: {e}", self.folder.display()))
                .with_help("create it, or point the task's `folder` at the posts")
        })?;
        for bad in &folder.errors {
            tracing::warn!(task = %cx.task(), error = %bad, "not a valid post: left out");
        }

        // 3. Each ready post in path order; every change of a copy is saved as it happens, the
        //    intent before each create (see `sync`), so a run cut short anywhere resumes
        //    without repeating a create.
        let mut apis = BTreeMap::new();
        for &target in &self.targets {
            let client = cx.client(target.name())?.clone();
            apis.insert(target, Api::new(target, client, cx.clock(), &self.publication));
        }
        let mut run = Run::new(apis, cx.clock(), self.pace);
        let ready: Vec<_> = folder.posts.iter().filter(|p| p.meta.publish).collect();
        let total = ready.len() as u64;
        for (done, post) in ready.into_iter().enumerate() {
            if cx.is_cancelled() {
                break;
            }
            cx.progress(done as u64, Some(total), post.key.clone());
            run.post(cx, &mut ledger, post).await?;
        }

        // 4. What it comes to.
        finish(run, &folder, cx.task())
    }
}

/// How to give `target` a credential it accepts.
fn renew(target: Target) -> String {
    let (what, var) = match target {
        Target::Dev => ("API key (DEV: Settings → Extensions)", "DEV_API_KEY"),
        Target::Hashnode => {
            ("personal access token (Hashnode: Settings → Developer)", "HASHNODE_TOKEN")
        }
    };
    format!(
        "make a new {what} and put it in the variable `[services.{target}.auth] token_env` \
         names ({var} unless the config says otherwise)"
    )
}

/// The run's summary, or the failure that needs the runner's (or a human's) attention.
fn finish(run: Run, folder: &Folder, task: &str) -> Result<RunSummary, TaskError> {
    if let Some(stop) = run.stop {
        return Err(stop);
    }
    if !run.refused_credentials.is_empty() {
        let which: Vec<String> =
            run.refused_credentials.iter().map(|(t, why)| format!("{t}: {why}")).collect();
        let renew: Vec<String> = run.refused_credentials.keys().map(|t| renew(*t)).collect();
        return Err(TaskError::reauthorize(format!("credentials refused: {}", which.join("; ")))
            .with_help(format!("{}, then `unattended reset {task}`", renew.join("; "))));
    }
    let t = &run.tally;
    let done = t.published + t.updated + t.found;
    if done == 0
        && let Some((target, at)) = run.gated.iter().min_by_key(|(_, at)| **at)
        && run.benched.len() == run.gated.len()
    {
        return Err(TaskError::retry_at(
            *at,
            format!("writes to {target} wait for its write window, which opens at {at}"),
        ));
    }
    let mut note = format!(
        "{} published, {} updated, {} found after a lost answer, {} up to date",
        t.published, t.updated, t.found, t.unchanged
    );
    for (target, why) in &run.benched {
        let _ = match run.gated.get(target) {
            Some(at) => write!(note, "; {target} waits for its window ({at})"),
            None => write!(note, "; {target} skipped: {why}"),
        };
    }
    if !t.refused.is_empty() {
        let _ = write!(note, "; refused: {}", t.refused.join("; "));
    }
    if !folder.errors.is_empty() {
        let errors: Vec<String> = folder.errors.iter().map(ToString::to_string).collect();
        let _ = write!(note, "; {} file(s) with errors: {}", errors.len(), errors.join("; "));
    }
    Ok(RunSummary::new().items(t.published + t.updated + t.found).note(note))
}
