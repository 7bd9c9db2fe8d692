//! The breaker used by hand, outside a tower stack: `try_call` and `CallPermit`.

use std::time::Duration;

use unattended_breaker::{
    BreakerConfig, BreakerState, CircuitBreakerLayer, FailurePolicy, OpenDuration,
};
use unattended_core::{Clock, FailureClass, TransientCause};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

#[tokio::test(start_paused = true)]
async fn permits_count_outcomes_open_and_probe() {
    let config = BreakerConfig::standard()
        .policy(FailurePolicy::consecutive(3))
        .open_duration(OpenDuration::fixed(Duration::from_secs(30)));
    let handle = CircuitBreakerLayer::new(config).unwrap().clock(clock()).handle();
    let failed = FailureClass::Transient(TransientCause::Reset);
    // A 404 does not count against the service.
    handle.try_call("db").unwrap().finish(Some(&FailureClass::Permanent(None)));
    for _ in 0..3 {
        handle.try_call("db").unwrap().finish(Some(&failed));
    }
    let open = handle.try_call("db").unwrap_err();
    assert_eq!(open.retry_at, "2026-11-28T10:00:30Z".parse().unwrap());
    assert!(matches!(handle.state("db"), Some(BreakerState::Open { .. })));

    clock().sleep(Duration::from_secs(30)).await;
    let probe = handle.try_call("db").unwrap();
    assert!(handle.try_call("db").is_err(), "one probe at a time");
    drop(probe); // unanswered: the slot comes back
    handle.try_call("db").unwrap().finish(None);
    assert_eq!(handle.state("db"), Some(BreakerState::Closed));
}

/// A breaker kept from the handle is the live one: it sees what `try_call` by key counts, and
/// the other way round, through a reset too.
#[tokio::test(start_paused = true)]
async fn a_kept_breaker_is_the_one_the_handle_runs() {
    let config = BreakerConfig::standard().policy(FailurePolicy::consecutive(2));
    let handle = CircuitBreakerLayer::new(config).unwrap().clock(clock()).handle();
    let failed = FailureClass::Transient(TransientCause::Reset);
    let db = handle.breaker("db");
    assert_eq!(db.key().as_str(), "db");
    db.try_call().unwrap().finish(Some(&failed));
    handle.try_call("db").unwrap().finish(Some(&failed));
    assert!(db.try_call().is_err(), "opened by the two failures, counted in one breaker");
    handle.reset("db");
    db.try_call().unwrap().finish(None);
    assert_eq!(handle.state("db"), Some(BreakerState::Closed));
    assert!(handle.breaker("other").try_call().is_ok());
}
