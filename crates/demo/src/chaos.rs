//! The chaos plan: what goes wrong, and when, as offsets from the start. The demo's plan packs
//! the whole fault catalogue into its minute; the simulation's is a seeded mix over weeks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Method;
use unattended_store::{Store, TaskState};
use unattended_testkit::fault::{Fault, RetryAfter, Route, Trigger};

use crate::world::World;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A mock faults are injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    YouTube,
    Gmail,
    Dev,
    Hashnode,
    Shop,
}

impl Target {
    const ALL: [Self; 5] = [Self::YouTube, Self::Gmail, Self::Dev, Self::Hashnode, Self::Shop];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::YouTube => "youtube",
            Self::Gmail => "gmail",
            Self::Dev => "dev",
            Self::Hashnode => "hashnode",
            Self::Shop => "shop",
        }
    }
}

/// How long a fault rule applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Span {
    /// For this long from when it is added.
    For(Duration),
    /// The next request that matches.
    Next,
    /// The `n`th request that matches from when it is added, counted from 1.
    #[cfg_attr(not(test), allow(dead_code))]
    Nth(u64),
    /// With this chance, from when it is added on.
    Chance(f64),
}

/// One thing that happens.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    Fault {
        target: Target,
        route: Route,
        fault: Fault,
        span: Span,
    },
    /// Google revokes the refresh token (a password change, a security review).
    Revoke,
    /// Google stops accepting the access tokens it issued, before their stated expiry (as it
    /// may at any time); the refresh token still works.
    #[cfg_attr(not(test), allow(dead_code))]
    ExpireTokens,
    /// Google's token endpoint answers every request with this fault, or (`None`) recovers.
    #[cfg_attr(not(test), allow(dead_code))]
    TokenEndpoint(Option<Fault>),
    /// A blog revokes its API key (the owner rotated it, the site reset it).
    #[cfg_attr(not(test), allow(dead_code))]
    RevokeKey(Target),
    /// A human issues a new API key and resets the task that stopped.
    #[cfg_attr(not(test), allow(dead_code))]
    RenewKey(Target),
    /// A human re-authorizes and resets the tasks that stopped.
    Reauthorize,
    /// The store's disk fills up (`true`) or is cleaned up by a human (`false`).
    DiskFull(bool),
    NewVideo,
    NewPost,
    NewMail,
    NewPrice,
}

impl Action {
    /// Whether a human causes or fixes it.
    pub(crate) fn is_human_cause(&self) -> bool {
        matches!(self, Self::Revoke | Self::RevokeKey(_) | Self::DiskFull(true))
    }
}

/// An action at an offset from the start.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    pub(crate) at: Duration,
    pub(crate) action: Action,
}

fn fault(at: Duration, target: Target, route: Route, fault: Fault, span: Span) -> Event {
    Event { at, action: Action::Fault { target, route, fault, span } }
}

/// Every request to the service.
pub(crate) fn routes(target: Target) -> Route {
    match target {
        Target::YouTube => Route::any("/upload"),
        Target::Gmail => Route::any("/gmail"),
        Target::Dev => Route::any("/api"),
        Target::Hashnode => Route::any("/"),
        Target::Shop => Route::any("/item"),
    }
}

fn chunks() -> Route {
    Route::of(Method::PUT, "/upload")
}

fn dev_create() -> Route {
    Route::of(Method::POST, "/api/articles")
}

/// The demo's plan over `d`: every fault of the catalogue once, content arriving all along, the
/// refresh token revoked near the end.
pub(crate) fn demo(d: Duration) -> Vec<Event> {
    let at = |f: f64| d.mul_f64(f);
    let secs = |s: u64| Duration::from_secs(s);
    let mut plan = vec![
        fault(at(0.0), Target::Shop, routes(Target::Shop), Fault::Hang, Span::Chance(0.04)),
        fault(at(0.0), Target::Gmail, routes(Target::Gmail), Fault::Transport, Span::Chance(0.04)),
        fault(at(0.0), Target::YouTube, chunks(), Fault::ResetMidChunk, Span::Chance(0.05)),
        fault(
            at(0.08),
            Target::Dev,
            routes(Target::Dev),
            Fault::RateLimited(Some(RetryAfter::Seconds(3))),
            Span::For(secs(3)),
        ),
        fault(at(0.12), Target::YouTube, chunks(), Fault::Transport, Span::Next),
        fault(
            at(0.18),
            Target::Hashnode,
            routes(Target::Hashnode),
            Fault::RateLimited(Some(RetryAfter::Date(4))),
            Span::For(secs(4)),
        ),
        fault(at(0.22), Target::Dev, dev_create(), Fault::CommitThenDrop, Span::Next),
        fault(
            at(0.28),
            Target::Gmail,
            routes(Target::Gmail),
            Fault::Unavailable,
            Span::For(at(0.25)),
        ),
        fault(
            at(0.34),
            Target::Shop,
            routes(Target::Shop),
            Fault::RateLimited(Some(RetryAfter::Seconds(2))),
            Span::For(secs(2)),
        ),
        fault(at(0.40), Target::YouTube, chunks(), Fault::Hang, Span::Next),
        fault(at(0.46), Target::YouTube, chunks(), Fault::ShortRange, Span::Next),
        fault(
            at(0.66),
            Target::YouTube,
            Route::of(Method::POST, "/upload"),
            Fault::QuotaExceeded,
            Span::Next,
        ),
        Event { at: at(0.8), action: Action::Revoke },
    ];
    for i in 1..=7 {
        let t = at(0.1 * f64::from(i));
        plan.push(Event { at: t, action: Action::NewMail });
        plan.push(Event { at: t, action: Action::NewMail });
        if i % 2 == 1 {
            plan.push(Event { at: t, action: Action::NewPost });
            plan.push(Event { at: t, action: Action::NewVideo });
            plan.push(Event { at: t, action: Action::NewPrice });
        }
    }
    plan.sort_by_key(|e| e.at);
    plan
}

/// The simulation's plan over `days`, drawn from `seed`: rate-limit bursts every day, an outage
/// most days, hangs and resets all along, lost answers and quota exhaustion now and then, one
/// revoked refresh token and one full disk, each fixed by a human the next morning.
pub(crate) fn simulation(days: u32, seed: u64) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut plan = Vec::new();
    for target in Target::ALL {
        let route = routes(target);
        plan.push(fault(Duration::ZERO, target, route.clone(), Fault::Hang, Span::Chance(0.002)));
        plan.push(fault(Duration::ZERO, target, route, Fault::Transport, Span::Chance(0.005)));
    }
    plan.push(fault(
        Duration::ZERO,
        Target::YouTube,
        chunks(),
        Fault::ResetMidChunk,
        Span::Chance(0.01),
    ));
    let some_time =
        |rng: &mut fastrand::Rng, day: u32| DAY * day + Duration::from_secs(rng.u64(0..86_400));
    for day in 0..days {
        for _ in 0..rng.u32(2..=4) {
            let target = Target::ALL[rng.usize(..Target::ALL.len())];
            let wait = rng.u64(30..=300);
            let how = if rng.bool() { RetryAfter::Seconds(wait) } else { RetryAfter::Date(wait) };
            let at = some_time(&mut rng, day);
            let span = Span::For(Duration::from_secs(wait));
            plan.push(fault(at, target, routes(target), Fault::RateLimited(Some(how)), span));
        }
        if rng.f64() < 0.6 {
            let target = Target::ALL[rng.usize(..Target::ALL.len())];
            let length = MINUTE * rng.u32(10..=60);
            let at = some_time(&mut rng, day);
            plan.push(fault(at, target, routes(target), Fault::Unavailable, Span::For(length)));
        }
        if day % 3 == 1 {
            let at = some_time(&mut rng, day);
            plan.push(fault(at, Target::Dev, dev_create(), Fault::CommitThenDrop, Span::Next));
        }
        if day % 7 == 3 {
            let at = some_time(&mut rng, day);
            let route = Route::of(Method::POST, "/upload");
            plan.push(fault(at, Target::YouTube, route, Fault::QuotaExceeded, Span::Next));
        }
        plan.push(Event { at: some_time(&mut rng, day), action: Action::NewVideo });
        if day % 2 == 0 {
            plan.push(Event { at: some_time(&mut rng, day), action: Action::NewPost });
        }
        for _ in 0..10 {
            plan.push(Event { at: some_time(&mut rng, day), action: Action::NewMail });
        }
        for _ in 0..4 {
            plan.push(Event { at: some_time(&mut rng, day), action: Action::NewPrice });
        }
    }
    // The human causes: at 3 AM, fixed the next morning at half past eight.
    let mut three_am = |day: u32| DAY * day + HOUR * 3 + MINUTE * rng.u32(0..60);
    let revoked = three_am(days * 2 / 5);
    plan.push(Event { at: revoked, action: Action::Revoke });
    plan.push(Event { at: next_morning(revoked), action: Action::Reauthorize });
    let full = three_am(days * 7 / 10);
    plan.push(Event { at: full, action: Action::DiskFull(true) });
    plan.push(Event { at: next_morning(full), action: Action::DiskFull(false) });
    plan.sort_by_key(|e| e.at);
    plan
}

/// Half past eight the day after `t`'s night.
fn next_morning(t: Duration) -> Duration {
    let day = t.as_secs() / DAY.as_secs();
    DAY * u32::try_from(day).unwrap_or(u32::MAX) + HOUR * 8 + MINUTE * 30
}

/// The store's disk, as the runner's monitor reads it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Disk(Arc<AtomicBool>);

impl Disk {
    /// Free bytes: 10 MiB when full, else 50 GiB.
    pub(crate) fn free(&self) -> u64 {
        if self.0.load(Ordering::Relaxed) { 10 << 20 } else { 50 << 30 }
    }
}

/// Applies `action` to the world now; returns a line saying what happened.
pub(crate) async fn apply(
    world: &mut World,
    store: &Store,
    disk: &Disk,
    action: &Action,
) -> std::io::Result<String> {
    let now = world.clock.now();
    Ok(match action {
        Action::Fault { target, route, fault, span } => {
            let trigger = match *span {
                Span::For(d) => Trigger::Between(now, now + d),
                Span::Next => Trigger::Nth(1, 1),
                Span::Nth(n) => Trigger::Nth(n, n),
                Span::Chance(p) => Trigger::Chance(p),
            };
            let m = &world.mocks;
            match target {
                Target::YouTube => m.youtube.fault(route.clone(), trigger, fault.clone()),
                Target::Gmail => m.gmail.fault(route.clone(), trigger, fault.clone()),
                Target::Dev => m.dev.fault(route.clone(), trigger, fault.clone()),
                Target::Hashnode => m.hashnode.fault(route.clone(), trigger, fault.clone()),
                Target::Shop => m.shop.fault(route.clone(), trigger, fault.clone()),
            }
            let how = match span {
                Span::For(d) => format!("for {}", crate::world::humantime(*d)),
                Span::Next => "once".into(),
                Span::Nth(n) => format!("at request {n}"),
                Span::Chance(p) => format!("at random, {:.1}% of requests", p * 100.0),
            };
            format!("fault {} on {} {how}", fault.name(), target.name())
        }
        Action::Revoke => {
            // As Google does, the access tokens issued from it go with it.
            world.mocks.oauth.revoke_all();
            world.mocks.oauth.invalidate_access_tokens();
            "the Google refresh token is revoked".into()
        }
        Action::ExpireTokens => {
            world.mocks.oauth.invalidate_access_tokens();
            "Google refuses the access tokens it issued".into()
        }
        Action::TokenEndpoint(fault) => {
            world.mocks.oauth.fail_while(fault.clone());
            match fault {
                Some(f) => format!("Google's token endpoint fails: {}", f.name()),
                None => "Google's token endpoint recovers".into(),
            }
        }
        Action::RevokeKey(target) => {
            let m = &world.mocks;
            match target {
                Target::Dev => m.dev.revoke(crate::world::KEY),
                Target::Hashnode => m.hashnode.revoke(crate::world::KEY),
                _ => return Err(std::io::Error::other("only a blog has an API key")),
            }
            format!("{} revokes the API key", target.name())
        }
        Action::RenewKey(target) => {
            let m = &world.mocks;
            match target {
                Target::Dev => drop(m.dev.key(crate::world::KEY)),
                Target::Hashnode => drop(m.hashnode.token(crate::world::KEY)),
                _ => return Err(std::io::Error::other("only a blog has an API key")),
            }
            let reset = reset_if_stopped(store, "blog", world.clock.wall()).await?;
            let and = if reset { " and resets blog" } else { "" };
            format!("a human issues a new {} key{and}", target.name())
        }
        Action::Reauthorize => {
            world.authorize(store).await.map_err(std::io::Error::other)?;
            let mut reset = Vec::new();
            for task in ["uploads", "mail"] {
                if reset_if_stopped(store, task, world.clock.wall()).await? {
                    reset.push(task);
                }
            }
            format!("a human runs `unattended auth google` and resets {}", reset.join(", "))
        }
        Action::DiskFull(full) => {
            disk.0.store(*full, Ordering::Relaxed);
            if *full {
                "the store's disk is full".into()
            } else {
                "a human frees disk space".into()
            }
        }
        Action::NewVideo => format!("new video {:?}", world.feed_video()?),
        Action::NewPost => format!("new post {:?}", world.feed_post()?),
        Action::NewMail => format!("new mail {}", world.feed_mail()),
        Action::NewPrice => format!("price change: {}", world.change_price()),
    })
}

/// `unattended reset TASK` for a task the runner disabled.
async fn reset_if_stopped(
    store: &Store,
    task: &str,
    now: jiff::Timestamp,
) -> std::io::Result<bool> {
    use unattended_store::StateStore as _;
    let status = store.task_state(task).await.map_err(std::io::Error::other)?;
    let Some(mut status) = status else { return Ok(false) };
    if !matches!(status.state, TaskState::Disabled | TaskState::Failed) {
        return Ok(false);
    }
    status.reason = Some(format!("reset by a human at {now}"));
    status.state = TaskState::Idle;
    status.since = now;
    status.failures = 0;
    status.last_error = None;
    status.last_disposition = None;
    status.next_run = Some(now);
    store.set_task_state(task, status).await.map_err(std::io::Error::other)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(plan: &[Event]) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = plan
            .iter()
            .filter_map(|e| match &e.action {
                Action::Fault { fault, .. } => Some(fault.name()),
                Action::Revoke => Some("revoked"),
                Action::DiskFull(true) => Some("disk_full"),
                _ => None,
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    #[test]
    fn the_demo_plan_strikes_with_the_whole_catalogue_in_time_order() {
        let d = Duration::from_secs(60);
        let plan = demo(d);
        assert!(plan.windows(2).all(|p| p[0].at <= p[1].at));
        assert!(plan.iter().all(|e| e.at <= d));
        let want = [
            "commit_then_drop",
            "hang",
            "quota_exceeded",
            "rate_limited",
            "reset_mid_chunk",
            "revoked",
            "short_range",
            "transport",
            "unavailable",
        ];
        assert_eq!(kinds(&plan), want);
        let dates = plan.iter().any(|e| {
            matches!(
                &e.action,
                Action::Fault { fault: Fault::RateLimited(Some(RetryAfter::Date(_))), .. }
            )
        });
        assert!(dates, "a Retry-After as a date");
    }

    #[test]
    fn the_simulation_plan_is_the_seeds_and_each_human_cause_is_fixed_the_next_morning() {
        let plan = simulation(21, 7);
        assert_eq!(plan, simulation(21, 7));
        assert_ne!(plan, simulation(21, 8));
        assert_eq!(plan.iter().filter(|e| e.action.is_human_cause()).count(), 2);
        for (cause, fix) in [
            (Action::Revoke, Action::Reauthorize),
            (Action::DiskFull(true), Action::DiskFull(false)),
        ] {
            let at = |a: &Action| plan.iter().find(|e| &e.action == a).unwrap().at;
            let (c, f) = (at(&cause), at(&fix));
            assert!(f > c && f - c < DAY + HOUR * 6, "{cause:?} at {c:?}, fixed at {f:?}");
        }
        assert!(
            kinds(&plan).contains(&"quota_exceeded") && kinds(&plan).contains(&"commit_then_drop")
        );
    }
}
