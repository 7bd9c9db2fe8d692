//! `simulate` end to end, in-process under its paused clock.

use clap::Parser as _;
use unattended_demo::{SimulateArgs, engines, simulate};

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

fn args(line: &[&str]) -> SimulateArgs {
    Cli::parse_from(std::iter::once("simulate").chain(line.iter().copied())).args
}

#[test]
fn the_same_seed_gives_the_same_event_log_byte_for_byte_and_nothing_is_lost() {
    let a = args(&["--days", "2", "--seed", "5", "--layered-only"]);
    let first = simulate(&a, &engines()).unwrap();
    let second = simulate(&a, &engines()).unwrap();
    assert_eq!(first.events, second.events);
    assert_eq!(first.table, second.table);

    assert!(first.events.lines().count() > 200, "{}", first.events);
    assert!(first.events.contains("chaos the Google refresh token is revoked"));
    assert!(first.events.contains("needs re-authorization"), "{}", first.events);
    assert!(first.events.contains("alert closed task:"), "the task recovered after the fix");
    assert_eq!(first.defects, 0, "{}", first.table);
    assert!(first.table.contains("duplicated effects"), "{}", first.table);
    assert!(
        first.html.starts_with("<!doctype html>") && first.html.contains("class=\"run succeeded\"")
    );
}
