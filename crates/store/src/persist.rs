//! What the layers keep in memory, kept in the store too: open breakers, pauses, refresh tokens.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Notify;
use unattended_breaker::BreakerHandle;
use unattended_core::{HeldUntil, ServiceKey};
use unattended_ratelimit::{PaceSnapshot, PauseRegistry};
use unattended_token::{CredentialStore, CredentialStoreError};

use crate::error::StoreError;
use crate::records::{HeldService, LearnedPace};
use crate::store::{StateStore, Store};

/// Ends that differ by less than this are the same end (times pass through the monotonic clock).
const FOLLOW_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_millis(5);

fn breaker_kind(name: &str) -> String {
    format!("breaker:{name}")
}

fn pause_kind(name: &str) -> String {
    format!("pause:{name}")
}

/// An open breaker or a pause, as a row.
fn to_row(held: &HeldUntil) -> HeldService {
    HeldService { key: held.key.as_str().to_owned(), until: held.until }
}

/// The paces `registry` learned, as rows.
fn learned_paces(registry: &PauseRegistry) -> Vec<LearnedPace> {
    registry
        .paces()
        .into_iter()
        .map(|p| LearnedPace {
            key: p.key.as_str().to_owned(),
            rate: p.rate,
            learned_at: p.learned_at,
        })
        .collect()
}

/// A row, as an open breaker or a pause.
fn from_row(row: HeldService) -> HeldUntil {
    HeldUntil { key: ServiceKey::new(row.key), until: row.until }
}

impl Store {
    /// Saves the open breakers of `handle` under `name`, replacing what was saved before.
    ///
    /// # Errors
    ///
    /// The store could not write them; the earlier snapshot stays.
    pub async fn save_breakers(
        &self,
        name: &str,
        handle: &BreakerHandle,
    ) -> Result<(), StoreError> {
        let held = handle.snapshot().iter().map(to_row).collect();
        self.replace_held(&breaker_kind(name), held).await
    }

    /// Opens again the breakers saved under `name` whose time is not over; returns how many.
    ///
    /// # Errors
    ///
    /// The store could not read them.
    pub async fn restore_breakers(
        &self,
        name: &str,
        handle: &BreakerHandle,
    ) -> Result<usize, StoreError> {
        let held = self.held(&breaker_kind(name)).await?;
        Ok(handle.restore(held.into_iter().map(from_row)))
    }

    /// Saves the pauses of `registry` under `name`, and the paces it learned, replacing what was
    /// saved before (pauses and paces are each written in one transaction).
    ///
    /// # Errors
    ///
    /// The store could not write them; the earlier snapshot stays.
    pub async fn save_pauses(&self, name: &str, registry: PauseRegistry) -> Result<(), StoreError> {
        let held = registry.snapshot(self.clock().wall()).iter().map(to_row).collect();
        self.replace_held(&pause_kind(name), held).await?;
        self.replace_paces(name, learned_paces(&registry)).await
    }

    /// Takes back the pauses saved under `name` that are not over, and the paces learned in the
    /// last ten minutes; returns how many of each.
    ///
    /// # Errors
    ///
    /// The store could not read them.
    pub async fn restore_pauses(
        &self,
        name: &str,
        registry: PauseRegistry,
    ) -> Result<(usize, usize), StoreError> {
        let held = self.held(&pause_kind(name)).await?;
        let clock = self.clock();
        let pauses = registry.restore(held.into_iter().map(from_row), clock.wall());
        let saved = self.paces(name).await?;
        let paces = registry.restore_paces(
            saved.into_iter().map(|p| PaceSnapshot {
                key: ServiceKey::new(p.key),
                rate: p.rate,
                learned_at: p.learned_at,
            }),
            clock.now(),
            clock.wall(),
        );
        Ok((pauses, paces))
    }

    /// A [`CredentialStore`] for the refresh token `name`, kept in this database.
    pub fn credential(&self, name: impl Into<String>) -> StoredCredential {
        StoredCredential { store: self.clone(), name: name.into() }
    }
}

/// A refresh token kept in the state database (in SQLite written with `synchronous=FULL` to a
/// `0600` file; in PostgreSQL committed with `synchronous_commit = on`), so every runner sharing
/// the database sees a rotated token. Get one from [`Store::credential`].
#[derive(Clone, Debug)]
pub struct StoredCredential {
    store: Store,
    name: String,
}

impl StoredCredential {
    fn error(&self, action: &'static str) -> impl FnOnce(StoreError) -> CredentialStoreError + '_ {
        move |e| CredentialStoreError::new(action, self.store.path(), io::Error::other(e))
    }
}

impl CredentialStore for StoredCredential {
    fn load(&self) -> Result<Option<SecretString>, CredentialStoreError> {
        self.store
            .blocking(|db| db.credential(&self.name))
            .map_err(self.error("read the refresh token"))
    }

    fn save(&self, refresh_token: &SecretString) -> Result<(), CredentialStoreError> {
        let now = self.store.clock().wall();
        self.store
            .blocking(|db| db.save_credential(&self.name, refresh_token, now))
            .map_err(self.error("save the refresh token"))
    }
}

/// What a [`StateSaver`] watches.
#[derive(Debug)]
enum Watched {
    Breakers(String, BreakerHandle),
    Pauses(String, PauseRegistry),
}

/// Keeps the store's copy of open breakers and pauses current: restored at start, saved a moment
/// after each change (changes within the moment are saved together), and saved once more when
/// dropped is not possible, so call [`save_now`](Self::save_now) before a clean exit.
///
/// Tell it of changes with [`changed`](Self::changed), or hand [`notifier`](Self::notifier) to
/// the layers' `on_event` hooks.
#[derive(Debug)]
pub struct StateSaver {
    shared: Arc<SaverShared>,
    task: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
struct SaverShared {
    store: Store,
    watched: Vec<Watched>,
    signal: Notify,
    debounce: Duration,
    /// What was last written of each kind, while following: a change is written at the next
    /// look, without waiting for a run to end.
    written: std::sync::Mutex<std::collections::BTreeMap<String, Vec<HeldService>>>,
}

/// How many services a [`StateSaver`] found held back at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Breakers opened again.
    pub breakers: usize,
    /// Pauses taken back.
    pub pauses: usize,
    /// Learned paces taken back.
    pub paces: usize,
}

/// Builds a [`StateSaver`].
#[derive(Debug)]
pub struct StateSaverBuilder {
    store: Store,
    watched: Vec<Watched>,
    debounce: Duration,
    follow: Option<Duration>,
}

impl StateSaver {
    /// A saver writing to `store`, saving 1 s after a change.
    pub fn builder(store: Store) -> StateSaverBuilder {
        StateSaverBuilder {
            store,
            watched: Vec::new(),
            debounce: Duration::from_secs(1),
            follow: None,
        }
    }

    /// Something changed: save soon.
    pub fn changed(&self) {
        self.shared.signal.notify_one();
    }

    /// A closure for a layer's `on_event` hook that calls [`changed`](Self::changed).
    pub fn notifier<E>(&self) -> impl Fn(&E) + Clone + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.shared);
        move |_: &E| {
            if let Some(shared) = shared.upgrade() {
                shared.signal.notify_one();
            }
        }
    }

    /// Saves everything now.
    ///
    /// # Errors
    ///
    /// The first write that failed.
    pub async fn save_now(&self) -> Result<(), StoreError> {
        self.shared.save_all().await
    }
}

impl Drop for StateSaver {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

impl StateSaverBuilder {
    /// Watches the breakers of `handle`, saved under `name`.
    #[must_use]
    pub fn breakers(mut self, name: impl Into<String>, handle: BreakerHandle) -> Self {
        self.watched.push(Watched::Breakers(name.into(), handle));
        self
    }

    /// Watches the pauses of `registry`, saved under `name`.
    #[must_use]
    pub fn pauses(mut self, name: impl Into<String>, registry: PauseRegistry) -> Self {
        self.watched.push(Watched::Pauses(name.into(), registry));
        self
    }

    /// How long after a change to save (changes in between are saved together).
    #[must_use]
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Also looks, every `every`: writes what changed here (a breaker that opened, a pause a
    /// host asked for) without waiting for [`changed`](StateSaver::changed), and holds back here
    /// too what the other runners sharing the store wrote: three runners do not each learn the
    /// same outage. For a shared store ([`Store::is_shared`]); `None` (the default) only
    /// restores at start.
    #[must_use]
    pub fn follow(mut self, every: Option<Duration>) -> Self {
        self.follow = every.filter(|d| !d.is_zero());
        self
    }

    /// Restores what was saved, then starts saving changes.
    ///
    /// # Errors
    ///
    /// The saved state could not be read.
    pub async fn start(self) -> Result<(StateSaver, Restored), StoreError> {
        let mut restored = Restored::default();
        for watched in &self.watched {
            match watched {
                Watched::Breakers(name, handle) => {
                    restored.breakers += self.store.restore_breakers(name, handle).await?;
                }
                Watched::Pauses(name, registry) => {
                    let (pauses, paces) = self.store.restore_pauses(name, registry.clone()).await?;
                    restored.pauses += pauses;
                    restored.paces += paces;
                }
            }
        }
        if restored != Restored::default() {
            tracing::info!(
                breakers = restored.breakers,
                pauses = restored.pauses,
                paces = restored.paces,
                "services still held back after the restart"
            );
        }
        let shared = Arc::new(SaverShared {
            store: self.store,
            watched: self.watched,
            signal: Notify::new(),
            debounce: self.debounce,
            written: std::sync::Mutex::default(),
        });
        let task = tokio::spawn(run(Arc::downgrade(&shared)));
        let follower =
            self.follow.map(|every| tokio::spawn(follow(Arc::downgrade(&shared), every)));
        Ok((StateSaver { shared, task, follower }, restored))
    }
}

async fn run(shared: std::sync::Weak<SaverShared>) {
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let wait = async {
            strong.signal.notified().await;
            strong.store.clock().sleep(strong.debounce).await;
        };
        wait.await;
        if let Err(error) = strong.save_all().await {
            tracing::error!(%error, "could not save breaker and pause state; will try at the next change");
        }
    }
}

/// Takes in, every `every`, what the other runners hold back.
async fn follow(shared: std::sync::Weak<SaverShared>, every: Duration) {
    let mut failing = false;
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let clock = strong.store.clock();
        drop(strong);
        clock.sleep(every).await;
        let Some(strong) = shared.upgrade() else { return };
        let looked = async {
            strong.take_in().await?;
            strong.write_changes().await
        };
        match looked.await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("reading the other runners' breakers and pauses again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not read the other runners' breakers and pauses; trying again");
            }
            Err(_) => {}
        }
    }
}

impl SaverShared {
    /// What `watched` holds back here now, as rows under its kind.
    fn rows(&self, watched: &Watched) -> (String, Vec<HeldService>) {
        match watched {
            Watched::Breakers(name, handle) => {
                (breaker_kind(name), handle.snapshot().iter().map(to_row).collect())
            }
            Watched::Pauses(name, registry) => (
                pause_kind(name),
                registry.snapshot(self.store.clock().wall()).iter().map(to_row).collect(),
            ),
        }
    }

    /// Writes the kinds whose held services changed here since they were last written.
    async fn write_changes(&self) -> Result<(), StoreError> {
        for watched in &self.watched {
            let (kind, rows) = self.rows(watched);
            let same = |old: &Vec<HeldService>| {
                old.len() == rows.len()
                    && old
                        .iter()
                        .zip(&rows)
                        .all(|(a, b)| a.key == b.key && (a.until - b.until).abs() < FOLLOW_SLACK)
            };
            let unchanged = self
                .written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&kind)
                .is_some_and(same);
            if !unchanged {
                self.store.replace_held(&kind, rows.clone()).await?;
                self.remember(kind, rows);
            }
        }
        Ok(())
    }

    /// Holds back here what is held back in the store and not yet here.
    async fn take_in(&self) -> Result<(), StoreError> {
        let now = self.store.clock().wall();
        for watched in &self.watched {
            match watched {
                Watched::Breakers(name, handle) => {
                    let here = handle.snapshot();
                    for row in self.store.held(&breaker_kind(name)).await? {
                        let known = here.iter().any(|h| {
                            h.key.as_str() == row.key && h.until >= row.until - FOLLOW_SLACK
                        });
                        if row.until > now && !known {
                            tracing::info!(service = %row.key, name = %name, until = %row.until, "breaker opened by another runner; open here too");
                            handle.force_open(ServiceKey::new(row.key), row.until);
                        }
                    }
                }
                Watched::Pauses(name, registry) => {
                    for row in self.store.held(&pause_kind(name)).await? {
                        if registry.pause(ServiceKey::new(row.key.clone()), row.until, now) {
                            tracing::info!(service = %row.key, name = %name, until = %row.until, "paused by another runner's answer; paused here too");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn save_all(&self) -> Result<(), StoreError> {
        for watched in &self.watched {
            let (kind, rows) = self.rows(watched);
            self.store.replace_held(&kind, rows.clone()).await?;
            if let Watched::Pauses(name, registry) = watched {
                self.store.replace_paces(name, learned_paces(registry)).await?;
            }
            self.remember(kind, rows);
        }
        Ok(())
    }

    /// What was last written of `kind` (following writes only what differs from it).
    fn remember(&self, kind: String, rows: Vec<HeldService>) {
        self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(kind, rows);
    }
}
