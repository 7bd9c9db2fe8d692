//! Every file of each fuzz target's corpus (`fuzz/corpus/<target>/`), replayed through the
//! target's own function on stable: what the fuzzer found interesting stays tested.

use std::path::{Path, PathBuf};

use unattended_fuzz_targets::TARGETS;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

fn replay(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).expect("a target");
    for file in corpus(target) {
        let data = std::fs::read(&file).expect("a corpus file");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{target}: {} fails", file.display());
        }
    }
}

#[test]
fn every_target_has_a_test_here() {
    let tested = [
        "retry_after",
        "ratelimit",
        "x_ratelimit",
        "youtube_range",
        "config",
        "cron",
        "window",
        "front_matter",
        "robots",
        "oauth_answer",
    ];
    let targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(targets, tested);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for name in tested {
        assert!(dir.join(format!("{name}.rs")).is_file(), "fuzz/fuzz_targets/{name}.rs");
    }
}

#[test]
fn retry_after() {
    replay("retry_after");
}

#[test]
fn ratelimit() {
    replay("ratelimit");
}

#[test]
fn x_ratelimit() {
    replay("x_ratelimit");
}

#[test]
fn youtube_range() {
    replay("youtube_range");
}

#[test]
fn config() {
    replay("config");
}

#[test]
fn cron() {
    replay("cron");
}

#[test]
fn window() {
    replay("window");
}

#[test]
fn front_matter() {
    replay("front_matter");
}

#[test]
fn robots() {
    replay("robots");
}

#[test]
fn oauth_answer() {
    replay("oauth_answer");
}
