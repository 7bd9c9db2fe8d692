//! `unattended demo`, the README's first command, as a newcomer runs it (shortened): real
//! sockets on 127.0.0.1, real time, the whole fault catalogue, and the audit's verdict.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_unattended");

#[test]
fn the_demo_heals_itself_and_its_audit_finds_nothing_lost_or_done_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = Command::new(BIN)
        .args(["demo", "--duration", "15s", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("audit: nothing lost, nothing done twice."), "{stdout}");
    for row in ["runs of uploads", "fault answered: rate_limited", "audit: videos uploaded"] {
        assert!(stdout.contains(row), "{row}:\n{stdout}");
    }
    // Not a terminal: the view is plain lines, one per change of a task.
    assert!(stderr.lines().any(|l| l.contains("uploads")), "{stderr}");
    // The store stays, and `status` reads it.
    let config = state.join("layered/unattended.toml");
    let status = Command::new(BIN).arg("status").arg("-c").arg(&config).output().unwrap();
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("uploads") && shown.contains("mail"), "{shown}");
}
