//! The whole runner under a paused clock with fake engines: weeks in seconds, exact counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use unattended_core::Clock;
use unattended_runner::{
    Engine, EngineKinds, RunSummary, Runner, RunnerConfig, TaskContext, TaskError,
};
use unattended_store::{RunOutcome, StateStore, Store, StoreConfig, TaskState};

/// What every fake engine saw: (task, wall time at the start of each run).
type Log = Arc<Mutex<Vec<(String, Timestamp)>>>;

/// A fake engine: logs each run, then behaves as its `mode` says.
#[derive(Clone)]
struct Fake {
    log: Log,
    mode: Mode,
    runs: Arc<Mutex<u32>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Ok,
    Panic,
    /// Sleeps this many seconds.
    Slow(u64),
    /// The first run asks to be retried this many seconds later; then succeeds.
    RetryLater(u64),
    /// Reauthorize on every run.
    Revoked,
    /// Fails (a plain error, retried) on the runs numbered here, from 1.
    FailOn(Vec<u32>),
    /// Counts in its checkpoint; hangs forever on run 2.
    Checkpointed,
    /// Its service is down (skipped, the run degraded) on the runs numbered here, from 1.
    SkipOn(Vec<u32>),
    /// Saves a small checkpoint on run 1, then one of this many bytes.
    Grows(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "ok")]
    mode: Mode,
}

fn ok() -> Mode {
    Mode::Ok
}

#[async_trait::async_trait]
impl Engine for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    fn services(&self) -> Vec<String> {
        Vec::new()
    }

    async fn run(&self, cx: &mut TaskContext) -> Result<RunSummary, TaskError> {
        let now = cx.clock().wall();
        self.log.lock().unwrap().push((cx.task().to_owned(), now));
        let n = {
            let mut runs = self.runs.lock().unwrap();
            *runs += 1;
            *runs
        };
        match &self.mode {
            Mode::Ok => {}
            Mode::Panic => panic!("engine bug on run {n}"),
            Mode::Slow(secs) => cx.clock().sleep(Duration::from_secs(*secs)).await,
            Mode::RetryLater(secs) if n == 1 => {
                let at = now.checked_add(Duration::from_secs(*secs)).unwrap();
                return Err(TaskError::retry_at(at, "429: come back later"));
            }
            Mode::RetryLater(_) => {}
            Mode::Revoked => return Err(TaskError::reauthorize("invalid_grant: token revoked")),
            Mode::FailOn(which) if which.contains(&n) => {
                return Err(TaskError::retry_at(now, format!("flaky on run {n}")));
            }
            Mode::FailOn(_) => {}
            Mode::SkipOn(which) if which.contains(&n) => {
                let uri = "https://api.example/".parse().unwrap();
                let key = unattended_core::ServiceKey::from_uri(&uri).unwrap();
                return Err(TaskError::skip(key, "503: the service is down"));
            }
            Mode::SkipOn(_) => {}
            Mode::Grows(bytes) => {
                let value = if n == 1 { "first".to_owned() } else { "x".repeat(*bytes) };
                cx.save_checkpoint(&value).await?;
            }
            Mode::Checkpointed => {
                let done: u32 = cx.checkpoint()?.unwrap_or(0);
                cx.save_checkpoint(&(done + 1)).await?;
                if n == 2 {
                    std::future::pending::<()>().await;
                }
            }
        }
        Ok(RunSummary::new().items(1))
    }
}

struct Harness {
    log: Log,
    kinds: EngineKinds,
    dir: tempfile::TempDir,
    clock: Clock,
}

impl Harness {
    fn new(start: &str) -> Self {
        let log: Log = Arc::default();
        let shared = log.clone();
        let kinds = EngineKinds::new().with("fake", move |s: Settings, _| {
            Ok(Fake { log: shared.clone(), mode: s.mode, runs: Arc::default() })
        });
        let clock = Clock::starting_at(start.parse().unwrap());
        Self { log, kinds, dir: tempfile::tempdir().unwrap(), clock }
    }

    fn config(&self, text: &str) -> RunnerConfig {
        RunnerConfig::parse(text, self.dir.path().join("unattended.toml"), &self.kinds)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn store(&self) -> Store {
        let config = StoreConfig::new().inline(true);
        Store::open(self.dir.path().join("state.db"), config, self.clock).await.unwrap()
    }

    async fn runner(&self, text: &str) -> Runner {
        let store = self.store().await;
        Runner::builder(self.config(text))
            .clock(self.clock)
            .seed(11)
            .store(store)
            .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
            .build()
            .await
            .unwrap()
    }

    /// Runs `runner` for `d` of simulated time, then shuts it down.
    async fn run_for(&self, runner: &mut Runner, d: Duration) {
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let clock = self.clock;
        let timer = tokio::spawn(async move {
            clock.sleep(d).await;
            stopper.cancel();
        });
        runner.run(stop).await.unwrap();
        timer.await.unwrap();
    }

    fn runs_of(&self, task: &str) -> Vec<Timestamp> {
        self.log.lock().unwrap().iter().filter(|(t, _)| t == task).map(|(_, at)| *at).collect()
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn local(t: Timestamp, tz: &str) -> String {
    t.to_zoned_datetime(TimeZone::get(tz).unwrap()).strftime("%Y-%m-%d %H:%M").to_string()
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(start_paused = true)]
async fn thirty_days_across_the_spring_changes_of_two_zones() {
    // America/Los_Angeles springs forward on 8 March 2026, Europe/London on 29 March.
    let h = Harness::new("2026-03-05T00:00:00Z");
    let mut runner = h
        .runner(
            r#"
            [tasks.la-daily]
            engine = "fake"
            cron = "30 2 * * *"
            tz = "America/Los_Angeles"

            [tasks.london-daily]
            engine = "fake"
            cron = "30 1 * * *"
            tz = "Europe/London"

            [tasks.weekdays]
            engine = "fake"
            cron = "0 9 * * mon-fri"
            tz = "Europe/London"

            [tasks.half-hourly]
            engine = "fake"
            every = "30m"
            jitter = "5m"
            tz = "UTC"
            "#,
        )
        .await;
    h.run_for(&mut runner, 30 * DAY).await;

    let la = h.runs_of("la-daily");
    assert_eq!(la.len(), 30, "exactly once a day, the change included");
    let la_local: Vec<String> = la.iter().map(|t| local(*t, "America/Los_Angeles")).collect();
    assert_eq!(la_local[3], "2026-03-08 03:00", "02:30 does not exist that night: 03:00");
    assert!(
        la_local.iter().enumerate().all(|(i, t)| i == 3 || t.ends_with("02:30")),
        "{la_local:?}"
    );

    let london = h.runs_of("london-daily");
    assert_eq!(london.len(), 30);
    let london_local: Vec<String> = london.iter().map(|t| local(*t, "Europe/London")).collect();
    assert_eq!(london_local[24], "2026-03-29 02:00", "01:30 is in the gap: the first time after");
    assert!(london_local.iter().enumerate().all(|(i, t)| i == 24 || t.ends_with("01:30")));

    // 5 March 2026 is a Thursday: 30 days hold 22 weekdays.
    let weekdays = h.runs_of("weekdays");
    assert_eq!(weekdays.len(), 22);
    assert!(weekdays.iter().all(|t| local(*t, "Europe/London").ends_with("09:00")));

    // Every 30 minutes from the start, each within 5 minutes after its slot.
    let half = h.runs_of("half-hourly");
    assert_eq!(half.len(), 30 * 48, "one per slot, the last slot is the stop");
    for (n, t) in half.iter().enumerate().skip(1) {
        let slot =
            at("2026-03-05T00:00:00Z").checked_add(Duration::from_secs(1800 * n as u64)).unwrap();
        let late = t.duration_since(slot);
        assert!(!late.is_negative() && late <= jiff::SignedDuration::from_mins(5), "run {n}: {t}");
    }
}

#[tokio::test(start_paused = true)]
async fn thirty_days_across_the_autumn_changes_run_folded_times_once() {
    // Europe/London falls back on 25 October 2026, America/Los_Angeles on 1 November.
    let h = Harness::new("2026-10-20T00:00:00Z");
    let mut runner = h
        .runner(
            r#"
            [tasks.la]
            engine = "fake"
            cron = "30 1 * * *"
            tz = "America/Los_Angeles"

            [tasks.london]
            engine = "fake"
            cron = "30 1 * * *"
            tz = "Europe/London"
            "#,
        )
        .await;
    h.run_for(&mut runner, 30 * DAY).await;
    for (task, tz) in [("la", "America/Los_Angeles"), ("london", "Europe/London")] {
        let runs = h.runs_of(task);
        assert_eq!(runs.len(), 30, "{task}: 01:30 happens twice on the change, runs once");
        assert!(runs.iter().all(|t| local(*t, tz).ends_with("01:30")), "{task}");
    }
}

#[tokio::test(start_paused = true)]
async fn six_hours_of_downtime_catch_up_with_one_run() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let config = r#"
        [tasks.poll]
        engine = "fake"
        every = "15m"
        tz = "UTC"

        [tasks.no-catch-up]
        engine = "fake"
        every = "15m"
        catch_up = false
        tz = "UTC"
    "#;
    let mut runner = h.runner(config).await;
    h.run_for(&mut runner, Duration::from_secs(3600)).await;
    assert_eq!(h.runs_of("poll").len(), 5, "00:00 .. 01:00");
    drop(runner);

    h.clock.sleep(Duration::from_secs(6 * 3600)).await; // the runner is down
    let mut runner = h.runner(config).await;
    h.run_for(&mut runner, Duration::from_secs(60)).await;
    let poll = h.runs_of("poll");
    assert_eq!(poll.len(), 6, "one run for the 24 missed slots");
    assert_eq!(poll[5], at("2026-12-01T07:00:00Z"), "at start-up");
    let none = h.runs_of("no-catch-up");
    assert_eq!(none.len(), 5, "catch_up = false: nothing at start-up");

    h.run_for(&mut runner, Duration::from_secs(15 * 60)).await;
    assert_eq!(h.runs_of("poll")[6], at("2026-12-01T07:15:00Z"), "the grid goes on");
    assert_eq!(h.runs_of("no-catch-up")[5], at("2026-12-01T07:15:00Z"));
}

#[tokio::test(start_paused = true)]
async fn a_slot_that_comes_during_a_run_is_skipped() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner(
            "[tasks.slow]\nengine = \"fake\"\nevery = \"10m\"\ntz = \"UTC\"\nmode = { slow = 1500 }\n",
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(3600)).await;
    // 25-minute runs every 10 minutes: 00:00, 00:30 (00:10 and 00:20 skipped), 01:00.
    let runs = h.runs_of("slow");
    assert_eq!(
        runs,
        [at("2026-12-01T00:00:00Z"), at("2026-12-01T00:30:00Z"), at("2026-12-01T01:00:00Z")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_engine_changes_nothing_for_its_neighbour() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner(
            r#"
            [tasks.broken]
            engine = "fake"
            every = "10m"
            tz = "UTC"
            mode = "panic"

            [tasks.fine]
            engine = "fake"
            every = "10m"
            tz = "UTC"
            "#,
        )
        .await;
    h.run_for(&mut runner, DAY).await;
    assert_eq!(h.runs_of("fine").len(), 145, "every slot of the day");
    let broken = h.runs_of("broken");
    // Every run panics; runs go on, spaced out as the failures add up (10 s doubling, at most
    // an hour), never faster than the schedule.
    assert!(broken.len() > 24 && broken.len() < 145, "{}", broken.len());
    for w in broken.windows(2) {
        let gap = w[1].duration_since(w[0]);
        assert!(
            gap >= jiff::SignedDuration::from_mins(10)
                && gap <= jiff::SignedDuration::from_mins(70),
            "{gap:#}"
        );
    }
    let runs = runner.store().runs("broken", 1).await.unwrap();
    let end = runs[0].end.clone().unwrap();
    assert_eq!(end.outcome, RunOutcome::Failed);
    assert!(end.error.unwrap().contains("the engine panicked: engine bug"));
    let raised: Vec<_> =
        runner.alerts().into_iter().filter(|a| a.raised).map(|a| a.incident).collect();
    assert_eq!(
        raised,
        ["task:broken:failing", "task:broken:late"],
        "one alert for the failing streak (not one per run), one when it went stale"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_at_is_the_next_run_not_before() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner("[tasks.t]\nengine = \"fake\"\nevery = \"1h\"\ntz = \"UTC\"\nmode = { retry_later = 2400 }\n")
        .await;
    h.run_for(&mut runner, Duration::from_secs(2 * 3600)).await;
    assert_eq!(
        h.runs_of("t"),
        [
            at("2026-12-01T00:00:00Z"),
            at("2026-12-01T00:40:00Z"),
            at("2026-12-01T01:00:00Z"),
            at("2026-12-01T02:00:00Z")
        ],
        "the retry at 00:40 as asked, then the grid"
    );
}

#[tokio::test(start_paused = true)]
async fn revoked_credentials_alert_once_and_stop_the_task_until_reset() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let config =
        "[tasks.up]\nengine = \"fake\"\nevery = \"10m\"\ntz = \"UTC\"\nmode = \"revoked\"\n";
    let mut runner = h.runner(config).await;
    h.run_for(&mut runner, Duration::from_secs(6 * 3600)).await;
    assert_eq!(h.runs_of("up").len(), 1, "disabled after the first refusal");
    let alerts = runner.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].incident, "task:up:credentials");
    assert!(alerts[0].help.as_deref().unwrap().contains("unattended"), "says what to do");
    let state = runner.store().task_state("up").await.unwrap().unwrap();
    assert_eq!(state.state, TaskState::Disabled);
    assert!(state.reason.as_deref().unwrap().contains("re-authorization"));

    // A human resets it (another process writes the store): the runner picks it up.
    let mut reset = state.clone();
    reset.state = TaskState::Idle;
    reset.reason = Some("reset".into());
    runner.store().set_task_state("up", reset).await.unwrap();
    h.run_for(&mut runner, Duration::from_secs(60)).await;
    assert_eq!(h.runs_of("up").len(), 2, "runs again once reset");
}

#[tokio::test(start_paused = true)]
async fn a_late_task_alerts_once_and_recovers_once() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    // Fails runs 2..=7 (retried), then works: the heartbeat goes stale in between.
    let mut runner = h
        .runner(
            "[tasks.t]\nengine = \"fake\"\nevery = \"10m\"\nstale_after = \"30m\"\ntz = \"UTC\"\n\
             mode = { fail_on = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }\n",
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(4 * 3600)).await;
    let notes: Vec<(String, bool)> =
        runner.alerts().into_iter().map(|a| (a.incident, a.raised)).collect();
    let late: Vec<_> = notes.iter().filter(|(i, _)| i == "task:t:late").collect();
    assert_eq!(late.len(), 2, "raised once, recovered once: {notes:?}");
    assert!(late[0].1 && !late[1].1);
}

#[tokio::test(start_paused = true)]
async fn runs_that_skip_a_service_that_is_down_do_not_make_the_late_alert_flap() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner(
            "[tasks.t]\nengine = \"fake\"\nevery = \"10m\"\nstale_after = \"30m\"\ntz = \"UTC\"\n\
             mode = { skip_on = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }\n",
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(4 * 3600)).await;
    let late: Vec<bool> = runner
        .alerts()
        .into_iter()
        .filter(|a| a.incident == "task:t:late")
        .map(|a| a.raised)
        .collect();
    assert_eq!(late, [true, false], "raised once while the service was down, recovered once");
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_for_the_time_a_server_gave_is_not_late() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    // A daily quota spent at the first run: come back in 20 hours, past `stale_after`.
    let mut runner = h
        .runner(
            "[tasks.t]\nengine = \"fake\"\nevery = \"30m\"\nstale_after = \"2h\"\ntz = \"UTC\"\n\
             mode = { retry_later = 72000 }\n",
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(24 * 3600)).await;
    let late = runner.alerts().into_iter().filter(|a| a.incident == "task:t:late").count();
    let notes: Vec<_> = runner.alerts().into_iter().map(|a| (a.incident, a.raised, a.at)).collect();
    assert_eq!(late, 0, "waiting for a known time is not a silent death: {notes:?}");
    assert!(h.runs_of("t").len() > 2, "it ran again after the wait");
}

#[tokio::test(start_paused = true)]
async fn max_runtime_stops_a_hung_run_and_the_next_resumes_from_its_checkpoint() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner(
            "[tasks.c]\nengine = \"fake\"\nevery = \"1h\"\nmax_runtime = \"20m\"\ntz = \"UTC\"\nmode = \"checkpointed\"\n",
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(3 * 3600)).await;
    let runs = runner.store().runs("c", 10).await.unwrap();
    let outcomes: Vec<_> = runs.iter().rev().map(|r| r.end.as_ref().unwrap().outcome).collect();
    assert_eq!(
        outcomes,
        [RunOutcome::Succeeded, RunOutcome::Failed, RunOutcome::Succeeded, RunOutcome::Succeeded]
    );
    assert!(runs[2].end.as_ref().unwrap().error.as_deref().unwrap().contains("max_runtime"));
    let saved = runner.store().load::<u32>("c").await.unwrap().unwrap();
    assert_eq!(saved.value, 4, "each run counted on from the last saved checkpoint");
}

#[tokio::test(start_paused = true)]
async fn a_closed_window_defers_the_run_to_its_opening() {
    let h = Harness::new("2026-12-01T20:00:00Z");
    let mut runner = h
        .runner(
            r#"
            [windows.day]
            tz = "UTC"
            open = ["daily 09:00-22:00"]

            [tasks.publish]
            engine = "fake"
            every = "1h"
            tz = "UTC"
            window = "day"
            "#,
        )
        .await;
    h.run_for(&mut runner, Duration::from_secs(14 * 3600)).await;
    assert_eq!(
        h.runs_of("publish"),
        [
            at("2026-12-01T20:00:00Z"),
            at("2026-12-01T21:00:00Z"),
            at("2026-12-02T09:00:00Z"),
            at("2026-12-02T10:00:00Z")
        ],
        "22:00 to 08:00 wait for 09:00, then one run"
    );
}

/// The same seed gives the same run, to the millisecond (tokio's paused-time determinism test).
#[test]
fn the_same_seed_gives_the_same_run() {
    fn once(seed: u64) -> Vec<(String, Timestamp)> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async move {
                let h = Harness::new("2026-12-01T00:00:00Z");
                let config = h.config(
                    "[tasks.a]\nengine = \"fake\"\nevery = \"7m\"\njitter = \"3m\"\ntz = \"UTC\"\n\
                     [tasks.b]\nengine = \"fake\"\ncron = \"*/5 * * * *\"\njitter = \"2m\"\ntz = \"UTC\"\n",
                );
                let mut runner = Runner::builder(config)
                    .clock(h.clock)
                    .seed(seed)
                    .store(h.store().await)
                    .build()
                    .await
                    .unwrap();
                h.run_for(&mut runner, Duration::from_secs(6 * 3600)).await;
                h.log.lock().unwrap().clone()
            })
    }
    let first = once(3);
    assert!(first.len() > 100);
    assert_eq!(first, once(3));
    assert_ne!(first, once(4));
}

/// An alert raised while its webhook is down is delivered once it is back, exactly once.
#[tokio::test(start_paused = true)]
async fn an_alert_waits_in_the_store_until_its_webhook_is_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let h = Harness::new("2026-12-01T00:00:00Z");
    let back_at = at("2026-12-01T00:20:00Z");
    let (clock, posts, tries) =
        (h.clock, Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p, t) = (posts.clone(), tries.clone());
    let webhook = tower::service_fn(move |req: http::Request<unattended_client::RequestBody>| {
        let (p, t) = (p.clone(), t.clone());
        async move {
            t.fetch_add(1, Ordering::SeqCst);
            let status = if clock.wall() < back_at { 503 } else { 204 };
            if status == 204 {
                assert_eq!(req.uri().path(), "/hook");
                p.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(status)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
        }
    });
    let config = h.config(
        "[alerts]\nwebhook = [{ url = \"https://hooks.example.com/hook\" }]\n\
         [tasks.up]\nengine = \"fake\"\nevery = \"10m\"\ntz = \"UTC\"\nmode = \"revoked\"\n",
    );
    let mut runner = Runner::builder(config)
        .clock(h.clock)
        .seed(5)
        .store(h.store().await)
        .transport("alerts", unattended_runner::transport(webhook))
        .build()
        .await
        .unwrap();
    h.run_for(&mut runner, Duration::from_secs(2 * 3600)).await;
    assert_eq!(runner.alerts().len(), 1, "one incident");
    assert_eq!(posts.load(Ordering::SeqCst), 1, "delivered once, after the outage");
    assert!(tries.load(Ordering::SeqCst) > 1, "tried while the webhook was down");
    let pending = runner.store().pending_deliveries().await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(start_paused = true)]
async fn the_view_and_metrics_follow_the_runs() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let mut runner = h
        .runner(
            "[tasks.ok]\nengine = \"fake\"\nevery = \"10m\"\ntz = \"UTC\"\n\
             [tasks.broken]\nengine = \"fake\"\nevery = \"10m\"\ntz = \"UTC\"\nmode = \"revoked\"\n",
        )
        .await;
    let view = runner.view();
    h.run_for(&mut runner, Duration::from_secs(3600)).await;
    let tasks = view.tasks();
    let state = |name: &str| tasks.iter().find(|t| t.name == name).unwrap().status.state;
    assert_eq!((state("ok"), state("broken")), (TaskState::Succeeded, TaskState::Disabled));
    let text = view.metrics();
    assert!(text.contains("unattended_runs_total{task=\"ok\",outcome=\"succeeded\"} 7"), "{text}");
    assert!(text.contains("unattended_runs_total{task=\"broken\",outcome=\"failed\"} 1"), "{text}");
    assert!(text.contains("unattended_task_state{task=\"broken\",state=\"disabled\"} 1"), "{text}");
    assert!(text.contains("unattended_alerts_total 1"), "{text}");
    assert!(view.held().is_empty());
}

/// The watchdog tick (systemd's `WATCHDOG=1`) comes from the end of each monitor round, not
/// from a timer of its own: a round stuck (here its memory reading waits) stops the ticks, so
/// systemd restarts a runner whose loop hangs. Real time, and the runner on a runtime of its
/// own: the stuck round blocks one of its threads, as a hang would.
#[test]
fn a_stuck_monitor_round_stops_the_watchdog_ticks_until_it_returns() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    let h = Harness::new("2026-12-01T00:00:00Z");
    let clock = Clock::system();
    let ticks = Arc::new(AtomicUsize::new(0));
    let readings = Arc::new(AtomicUsize::new(0));
    // While `stuck`, a reading waits for the test's word (30 s at most, so that a failing test
    // still ends); any other reading made meanwhile returns.
    let stuck = Arc::new(AtomicBool::new(false));
    let (release, word) = mpsc::channel::<()>();
    let word = Arc::new(Mutex::new(word));
    let (counted, read, held) = (ticks.clone(), readings.clone(), stuck.clone());
    let runner_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let test_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut runner = runner_rt.block_on(async {
        let path = h.dir.path().join("state.db");
        let store = Store::open(path, StoreConfig::new(), clock).await.unwrap();
        Runner::builder(h.config(
            "[monitor]\ninterval = \"50ms\"\n\
             [tasks.ok]\nengine = \"fake\"\nevery = \"1h\"\ntz = \"UTC\"\n",
        ))
        .clock(clock)
        .store(store)
        .monitor_readings(
            move || {
                read.fetch_add(1, Ordering::SeqCst);
                if held.load(Ordering::SeqCst)
                    && let Ok(word) = word.try_lock()
                {
                    let _ = word.recv_timeout(Duration::from_secs(30));
                }
                Some(10 << 20)
            },
            |_| Some(10 << 30),
        )
        .on_watch(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .await
        .unwrap()
    });
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    let running = runner_rt.spawn(async move { runner.run(stopper).await });
    let wait_for = |what: &'static str, n: &Arc<AtomicUsize>, above: usize| {
        let n = n.clone();
        async move {
            let start = clock.now();
            while n.load(Ordering::SeqCst) <= above {
                assert!(
                    clock.now() - start < Duration::from_secs(20),
                    "gave up waiting for {what}"
                );
                clock.sleep(Duration::from_millis(10)).await;
            }
        }
    };
    test_rt.block_on(async {
        wait_for("three ticks", &ticks, 2).await;
        stuck.store(true, Ordering::SeqCst);
        let read_so_far = readings.load(Ordering::SeqCst);
        wait_for("a reading that waits", &readings, read_so_far).await;
        clock.sleep(Duration::from_millis(20)).await; // past the tick of a round just ending
        let before = ticks.load(Ordering::SeqCst);
        clock.sleep(Duration::from_millis(500)).await; // ten rounds' worth
        assert_eq!(ticks.load(Ordering::SeqCst), before, "no tick while the round is stuck");

        stuck.store(false, Ordering::SeqCst);
        release.send(()).unwrap();
        wait_for("ticks again", &ticks, before + 1).await;
    });
    stop.cancel();
    runner_rt.block_on(running).unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_runners_on_one_state_run_each_slot_once_and_never_together() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    let text = |name: &str| {
        format!(
            r#"
            [runner]
            name = "{name}"

            [tasks.every-ten]
            engine = "fake"
            every = "10m"
            mode = {{ slow = 120 }}

            [tasks.hourly]
            engine = "fake"
            every = "1h"
            jitter = "5m"
            "#
        )
    };
    let mut north = h.runner(&text("north")).await;
    let mut south = h.runner(&text("south")).await;
    tokio::join!(h.run_for(&mut north, DAY), h.run_for(&mut south, DAY));

    // The slot at the stop itself may start in one runner before its stop is seen.
    let end = at("2026-12-02T00:00:00Z");
    let ten: Vec<_> = h.runs_of("every-ten").into_iter().filter(|t| *t < end).collect();
    assert_eq!(ten.len(), 144, "one run per slot over both runners: {ten:?}");
    for pair in ten.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= jiff::SignedDuration::from_mins(10), "{pair:?}: two runs of one slot");
    }
    assert_eq!(h.runs_of("hourly").iter().filter(|t| **t < end).count(), 24);
    let store = h.store().await;
    let runs = store.runs("every-ten", 1000).await.unwrap();
    // The newest run was cut short by the stop; every other one succeeded.
    assert!(
        runs.iter()
            .skip(1)
            .all(|r| r.end.as_ref().is_some_and(|e| e.outcome == RunOutcome::Succeeded)),
        "{runs:?}"
    );
    let by: std::collections::BTreeSet<_> = runs.iter().filter_map(|r| r.runner.clone()).collect();
    assert!(by.iter().all(|n| n == "north" || n == "south"), "{by:?}");
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_stops_the_task_that_cannot_save_and_the_others_go_on() {
    let h = Harness::new("2026-12-01T00:00:00Z");
    // The store may grow by 256 KiB: a checkpoint of 1 MB does not fit, small writes do.
    let path = h.dir.path().join("state.db");
    drop(h.store().await);
    let size = std::fs::metadata(&path).unwrap().len();
    let config = StoreConfig::new().inline(true).max_bytes(Some(size + (256 << 10)));
    let store = Store::open(&path, config, h.clock).await.unwrap();
    let text = r#"
        [tasks.grows]
        engine = "fake"
        every = "10m"
        mode = { grows = 1000000 }

        [tasks.small]
        engine = "fake"
        every = "10m"
        "#;
    let mut runner = Runner::builder(h.config(text))
        .clock(h.clock)
        .seed(11)
        .store(store)
        .monitor_readings(|| Some(10 << 20), |_| Some(10 << 30))
        .build()
        .await
        .unwrap();
    h.run_for(&mut runner, Duration::from_secs(3590)).await;

    assert_eq!(h.runs_of("grows").len(), 2, "stopped after the save that did not fit");
    assert_eq!(h.runs_of("small").len(), 6, "the other task kept its schedule");
    let state = runner.store().task_state("grows").await.unwrap().unwrap();
    assert_eq!(state.state, TaskState::Disabled);
    assert!(state.reason.as_deref().unwrap().contains("full"), "{:?}", state.reason);
    let kept = runner.store().load::<String>("grows").await.unwrap().unwrap();
    assert_eq!((kept.value.as_str(), kept.version), ("first", 1), "the last checkpoint is intact");
    let alerts: Vec<_> = runner.alerts().into_iter().filter(|a| a.raised).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].incident, "task:grows:stopped");
}
