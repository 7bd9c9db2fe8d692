//! The `unattended` binary as a person runs it: real processes, real signals, real time (short).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use unattended::store::{RunOutcome, StateStore, Store, StoreConfig};

mod support;
use support::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_unattended");

fn unattended(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env("RUST_LOG", "info").output().unwrap()
}

fn spawn_run(dir: &Path) -> Child {
    Command::new(BIN)
        .args(["run", "--log-format", "json"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// A task that counts its runs in its checkpoint and logs each count; the first run 2 hangs
/// for 20 s.
fn counting_config(dir: &Path) -> PathBuf {
    let script = dir.join("count.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nn=$(cat \"$UNATTENDED_CHECKPOINT\")\n[ \"$n\" = null ] && n=0\nn=$((n+1))\n\
         echo $n >> runs.log\necho $n > \"$UNATTENDED_CHECKPOINT\"\n[ $n -eq 2 ] && [ ! -e hung ] && touch hung && sleep 20\nexit 0\n",
    )
    .unwrap();
    let config = dir.join("unattended.toml");
    std::fs::write(
        &config,
        format!(
            "[runner]\nshutdown_grace = \"5s\"\n\n[tasks.count]\nengine = \"command\"\nevery = \"1s\"\n\
             tz = \"UTC\"\nprogram = \"sh\"\nargs = [{:?}]\n",
            script.display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_broken_config_is_exit_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[tasks.a]\nengine = \"command\"\nevry = \"15m\"\nprogram = \"true\"\n",
    )
    .unwrap();
    for cmd in ["check", "run", "status"] {
        let out = unattended(dir.path(), &[cmd]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("error: ") && err.contains("unattended.toml:3:1"), "{cmd}: {err}");
        assert!(err.contains("evry") && err.contains("help: "), "{cmd}: {err}");
    }
    let out = unattended(dir.path(), &["--config", "missing.toml", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unattended help run"));
}

#[test]
fn check_prints_each_tasks_next_runs_in_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[tasks.nightly]\nengine = \"command\"\ncron = \"30 2 * * *\"\ntz = \"America/Los_Angeles\"\nprogram = \"true\"\n",
    )
    .unwrap();
    let out = unattended(dir.path(), &["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches("  next: ").count(), 5, "{text}");
    assert!(
        text.lines().filter(|l| l.contains("next: ")).all(|l| l.contains(" 02:30:00 P")),
        "{text}"
    );
}

#[test]
fn sigkill_mid_run_resumes_from_the_checkpoint_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    counting_config(dir.path());
    let log = dir.path().join("runs.log");

    let mut first = spawn_run(dir.path());
    wait_for(20, "run 2 to start", || lines(&log).len() >= 2);
    signal(&first, "-KILL");
    first.wait().unwrap();

    // Run 2 was cut short before it could save: the next start resumes from count 1.
    let mut second = spawn_run(dir.path());
    wait_for(20, "the resumed runs", || lines(&log).len() >= 4);
    signal(&second, "-TERM");
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    let counts = lines(&log);
    assert_eq!(&counts[..4], ["1", "2", "2", "3"], "run 2 again, from the last checkpoint");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Store::open(
            dir.path().join("unattended.db"),
            StoreConfig::new(),
            unattended::Clock::system(),
        )
        .await
        .unwrap();
        let runs = store.runs("count", 100).await.unwrap();
        let abandoned = runs
            .iter()
            .filter(|r| r.end.as_ref().is_some_and(|e| e.outcome == RunOutcome::Abandoned))
            .count();
        assert!(abandoned >= 1, "the killed run is recorded as abandoned: {runs:?}");
        assert!(runs.iter().all(|r| r.end.is_some()), "nothing left unfinished after SIGTERM");
        let saved = store.load::<u64>("count").await.unwrap().unwrap();
        assert!(saved.value >= 3, "checkpoints kept: {}", saved.value);
    });

    let out = unattended(dir.path(), &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tasks"][0]["name"], "count");
    assert!(report["tasks"][0]["last_success"].is_string(), "{report}");
    let table = unattended(dir.path(), &["status"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("count (command)"));
}

#[test]
fn once_runs_a_task_and_says_how_it_went_in_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[tasks.ok]\nengine = \"command\"\nevery = \"1h\"\ntz = \"UTC\"\nprogram = \"true\"\n\n\
         [tasks.flaky]\nengine = \"command\"\nevery = \"1h\"\ntz = \"UTC\"\nprogram = \"sh\"\nargs = [\"-c\", \"echo busy >&2; exit 75\"]\n\n\
         [tasks.revoked]\nengine = \"command\"\nevery = \"1h\"\ntz = \"UTC\"\nprogram = \"sh\"\nargs = [\"-c\", \"exit 77\"]\n",
    )
    .unwrap();
    assert_eq!(unattended(dir.path(), &["once", "ok"]).status.code(), Some(0));
    let flaky = unattended(dir.path(), &["once", "flaky"]);
    assert_eq!(flaky.status.code(), Some(1));
    let err = String::from_utf8_lossy(&flaky.stderr);
    assert!(err.contains("busy") && err.contains("retry at"), "{err}");
    let revoked = unattended(dir.path(), &["once", "revoked"]);
    assert_eq!(revoked.status.code(), Some(3), "{}", String::from_utf8_lossy(&revoked.stderr));
    let status = unattended(dir.path(), &["status"]);
    assert_eq!(status.status.code(), Some(3), "a human is needed");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("task:revoked:credentials") && shown.contains("help: "), "{shown}");
    let reset = unattended(dir.path(), &["reset", "revoked"]);
    assert!(String::from_utf8_lossy(&reset.stdout).contains("disabled → idle"));
    assert_eq!(unattended(dir.path(), &["once", "nope"]).status.code(), Some(2));
}

/// `GET path` on 127.0.0.1:`port` with these extra header lines: the whole answer as text.
fn get(port: u16, path: &str, headers: &str) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_status_page_and_its_json_are_served_and_a_token_guards_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[runner]\nhttp_token_env = \"PAGE_TOKEN\"\n\
         [tasks.tick]\nengine = \"command\"\nevery = \"1s\"\ntz = \"UTC\"\nprogram = \"true\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--http", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env("PAGE_TOKEN", "a-long-enough-page-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bearer = "Authorization: Bearer a-long-enough-page-token\r\n";
    let mut json = String::new();
    wait_for(20, "two runs in /status.json", || {
        json = get(port, "/status.json", bearer);
        json.matches("\"outcome\":\"succeeded\"").count() >= 3
    });
    assert!(json.starts_with("HTTP/1.1 200"), "{json}");
    let body: serde_json::Value =
        serde_json::from_str(json.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let task = &body["tasks"][0];
    assert_eq!(task["name"], "tick");
    assert!(task["recent_runs"].as_array().unwrap().len() >= 2, "{task}");
    assert!(body["recent_alerts"].is_array() && body["open_breakers"].is_array(), "{body}");

    let page = get(port, "/", bearer);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("content-security-policy: default-src 'none'"), "{page}");
    assert!(page.contains("fetch(\"status.json\""), "the page draws itself from /status.json");
    assert!(!page.contains("http://") && !page.contains("https://"), "nothing from elsewhere");
    assert!(get(port, "/metrics", bearer).contains("unattended_runs_total"));

    for refused in ["", "Authorization: Bearer wrong-token-of-some-length\r\n"] {
        let answer = get(port, "/status.json", refused);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(answer.contains("www-authenticate: Basic realm=\"unattended\""), "{answer}");
        assert!(!answer.contains("\"tasks\""), "{answer}");
    }
    // A browser sends the token as Basic auth's password.
    let basic = "Authorization: Basic dXNlcjphLWxvbmctZW5vdWdoLXBhZ2UtdG9rZW4=\r\n";
    assert!(get(port, "/status.json", basic).starts_with("HTTP/1.1 200"));
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_page_off_loopback_without_a_token_is_refused_before_anything_listens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[tasks.tick]\nengine = \"command\"\nevery = \"1h\"\nprogram = \"true\"\n",
    )
    .unwrap();
    let out = unattended(dir.path(), &["run", "--http", "0.0.0.0:9464"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a loopback address") && err.contains("http_token_env"), "{err}");
    // Named but not set, or too short: refused too, saying which variable.
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[runner]\nhttp_token_env = \"PAGE_TOKEN_UNSET\"\n\
         [tasks.tick]\nengine = \"command\"\nevery = \"1h\"\nprogram = \"true\"\n",
    )
    .unwrap();
    let out = unattended(dir.path(), &["run", "--http", "0.0.0.0:9464"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("PAGE_TOKEN_UNSET, which is not set"), "{err}");
}

#[test]
fn metrics_are_served_while_the_runner_runs_and_systemd_hears_ready() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixDatagram;

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("unattended.toml"),
        format!(
            "[runner]\nmetrics = \"127.0.0.1:{port}\"\n[monitor]\ninterval = \"1s\"\n\
             [tasks.tick]\nengine = \"command\"\nevery = \"1s\"\ntz = \"UTC\"\nprogram = \"true\"\n"
        ),
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut child = Command::new(BIN)
        .args(["run"])
        .current_dir(dir.path())
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    while !said.iter().any(|s: &String| s == "WATCHDOG=1") {
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).expect("a notification within 20 s");
        said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(said[0], "READY=1", "{said:?}");
    let mut body = String::new();
    wait_for(20, "two runs in the metrics", || {
        body.clear();
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let _ = s.read_to_string(&mut body);
        body.contains("unattended_runs_total{task=\"tick\",outcome=\"succeeded\"} 2")
            || body.contains("outcome=\"succeeded\"} 3")
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_first_config_of_help_run_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8(unattended(dir.path(), &["help", "run"]).stdout).unwrap();
    let start = help.find("A first config").unwrap();
    let end = help.find("Then:").unwrap();
    let config: String = help[start..end]
        .lines()
        .skip(1)
        .filter_map(|l| l.strip_prefix("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(config.contains("[tasks."), "{help}");
    std::fs::write(dir.path().join("unattended.toml"), &config).unwrap();
    let out = unattended(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{config}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_systemd_unit_verifies_and_gives_the_watchdog_room() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/unattended.service"))
            .unwrap();
    for key in [
        "Type=notify",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=unattended",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key} in the unit");
    }
    // More than twice the monitor's default interval (30 s), which pings it.
    let watchdog: u64 =
        unit.lines().find_map(|l| l.strip_prefix("WatchdogSec=")).unwrap().parse().unwrap();
    assert!(watchdog > 60, "WatchdogSec={watchdog}");
    // Its command line is one the binary takes.
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut help = args.clone();
    help.push("--help");
    let out = unattended(dir.path(), &help);
    assert!(out.status.success(), "{exec}: {}", String::from_utf8_lossy(&out.stderr));

    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("!!! SKIPPED: systemd-analyze verify (no systemd-analyze on this machine) !!!");
        return;
    };
    // `verify` wants ExecStart's program to exist: point it at the built binary.
    let local = unit.replace("/usr/local/bin/unattended", BIN);
    let path = dir.path().join("unattended.service");
    std::fs::write(&path, local).unwrap();
    let out = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = said.lines().filter(|l| l.contains("unattended.service")).collect();
    assert!(out.status.success() && complaints.is_empty(), "{said}");
}

#[test]
fn once_on_a_terminal_draws_the_tasks_progress_as_a_bar_then_clears_it() {
    use unattended_testkit::website::{Robots, Website};
    let Some(script) =
        ["/usr/bin/script", "/bin/script"].into_iter().find(|p| Path::new(p).exists())
    else {
        eprintln!("!!! SKIPPED: no `script` (util-linux) to give the command a terminal !!!");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = unattended::core::Clock::system();
    let site = Website::new(clock, Robots::Text("User-agent: *\nCrawl-delay: 1\n".into()), 1);
    for i in 0..4 {
        site.page(&format!("/p{i}"), &format!("<span class=\"price\">£{i}</span>"));
    }
    let served = rt.block_on(unattended_testkit::serve::serve(site)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages: Vec<String> = (0..4).map(|i| format!("\"{}/p{i}\"", served.url())).collect();
    std::fs::write(
        dir.path().join("unattended.toml"),
        format!(
            "[tasks.watch]\nengine = \"scrape\"\nevery = \"1h\"\n\
             user_agent = \"pricewatch/1.0 (+https://example.com/bot)\"\npages = [{}]\n\
             [tasks.watch.fields]\nprice = \".price\"\n[tasks.watch.report]\njsonl = \"changes.jsonl\"\n",
            pages.join(", ")
        ),
    )
    .unwrap();
    // `script` runs the command on a pseudo-terminal and copies what it shows.
    let out = Command::new(script)
        .args(["-qec", &format!("{BIN} once watch"), "/dev/null"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("\r[") && shown.contains("%  ") && shown.contains("change(s) so far"),
        "{shown:?}"
    );
    let last_bar = shown.rfind("\r[").unwrap();
    let cleared = shown.rfind("\r\x1b[K").unwrap();
    assert!(cleared > last_bar, "the bar is cleared at the end: {shown:?}");
    assert!(shown[cleared..].contains("watch: succeeded"), "{shown:?}");
}
