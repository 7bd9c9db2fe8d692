//! One play of the world: the runner and the chaos plan side by side for a while, then the
//! measures and the event log.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{EngineKinds, RunnerError, RunnerView, Transport};
use unattended_store::{Store, StoreError};
use unattended_testkit::fault::Fault;

use crate::chaos::{self, Action, Disk, Event, Span};
use crate::report::{Measures, TASKS, Throttle};
use crate::world::{Cadences, Mocks, World};

/// What a play needs.
pub(crate) struct Setup<'a> {
    pub(crate) label: &'static str,
    pub(crate) dir: &'a Path,
    pub(crate) clock: Clock,
    pub(crate) seed: u64,
    pub(crate) plan: Vec<Event>,
    pub(crate) cadences: Cadences,
    pub(crate) token_lifetime: Duration,
    pub(crate) length: Duration,
    pub(crate) naive: bool,
    /// Over sockets on 127.0.0.1 (else in-process, on an inline store).
    pub(crate) sockets: bool,
    /// The one task to run, the others disabled (`None`: every task).
    pub(crate) only: Option<&'static str>,
    /// Text laid after the world's config (more alert sinks, say), and transports it names.
    pub(crate) config_tail: String,
    pub(crate) transports: Vec<(&'static str, Transport)>,
}

/// How a play went.
#[derive(Debug)]
pub(crate) struct Played {
    pub(crate) measures: Measures,
    /// One line per chaos event, run and alert, in time order.
    pub(crate) events: String,
    /// The config file the runner read.
    pub(crate) config: std::path::PathBuf,
    /// The mocks, as the play left them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) mocks: Mocks,
    /// The store the runner wrote.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) store: Store,
    /// When the plan's offsets count from.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) started: tokio::time::Instant,
}

/// Why a play could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlayError {
    #[error("the demo's files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// Plays `setup`; `watch` sees the runner's view once a second while it runs.
pub(crate) async fn play(
    setup: Setup<'_>,
    kinds: &EngineKinds,
    watch: Option<&(dyn Fn(&RunnerView, Duration) + Sync)>,
) -> Result<Played, PlayError> {
    let clock = setup.clock;
    let mut world = World::new(
        setup.dir,
        clock,
        setup.seed,
        setup.cadences,
        setup.token_lifetime,
        setup.naive,
    )?;
    // Served first: the pages fed are recorded under the addresses the engines will see.
    if setup.sockets {
        world.serve().await?;
    }
    world.seed_content()?;
    world.config_tail = setup.config_tail;
    world.only = setup.only;
    let config = world.config(kinds)?;
    let config_path = config.file.clone();
    let store = world.store(!setup.sockets).await?;
    let disk = Disk::default();
    let free = disk.clone();
    let mut builder = world.builder(config, setup.seed, store.clone());
    for (name, transport) in setup.transports {
        builder = builder.transport(name, transport);
    }
    let mut runner =
        builder.monitor_readings(|| Some(64 << 20), move |_| Some(free.free())).build().await?;
    let view = runner.view();

    let (start, wall_start) = (clock.now(), clock.wall());
    let stop = CancellationToken::new();
    let mut lines: Vec<(jiff::Timestamp, String)> = Vec::new();
    let mut throttles = Vec::new();
    let mut human_causes = 0;
    let driver = async {
        for event in &setup.plan {
            if event.at > setup.length {
                break;
            }
            clock.sleep_until(start + event.at).await;
            if let Action::Fault {
                target, fault: Fault::RateLimited(_), span: Span::For(d), ..
            } = &event.action
            {
                throttles.push(Throttle {
                    target: *target,
                    from: clock.now(),
                    until: clock.now() + *d,
                });
            }
            human_causes += usize::from(event.action.is_human_cause());
            let said = chaos::apply(&mut world, &store, &disk, &event.action).await?;
            lines.push((clock.wall(), format!("chaos {said}")));
        }
        clock.sleep_until(start + setup.length).await;
        stop.cancel();
        Ok::<_, std::io::Error>(())
    };
    let watcher = async {
        let Some(watch) = watch else { return };
        while !stop.is_cancelled() {
            watch(&view, clock.now() - start);
            tokio::select! {
                () = clock.sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => {}
            }
        }
        watch(&view, clock.now() - start);
    };
    let (ran, drove, ()) = tokio::join!(runner.run(stop.clone()), driver, watcher);
    ran?;
    drove?;
    let wall_end = clock.wall();

    let alerts = runner.alerts();
    let measures = Measures::collect(
        setup.label,
        &world,
        &store,
        alerts.clone(),
        &throttles,
        human_causes,
        (wall_start, wall_end),
    )
    .await?;
    for task in TASKS {
        for r in &measures.history[task] {
            let how = r.end.as_ref().map_or_else(
                || "running".to_owned(),
                |e| {
                    let what = e.summary.as_deref().or(e.error.as_deref()).unwrap_or("");
                    format!("{} {what}", e.outcome.as_str())
                },
            );
            lines.push((r.started_at, format!("run {task} {}", how.trim_end())));
        }
    }
    for a in &alerts {
        let verb = if a.raised { "raised" } else { "closed" };
        lines.push((a.at, format!("alert {verb} {}: {}", a.incident, a.title)));
    }
    lines.sort_by_key(|(at, _)| *at);
    let mut events = String::new();
    for (at, line) in lines {
        events.push_str(&format!("{at} {line}\n"));
    }
    Ok(Played {
        measures,
        events,
        config: config_path,
        mocks: world.mocks.clone(),
        store,
        started: start,
    })
}
