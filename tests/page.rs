//! The status page in a real browser: headless Chromium (from the distribution's packages;
//! `.ci/run` installs it) opens the page a running `unattended run --http` serves.
//!
//! Without Chromium the test says loudly that it skipped, unless `UNATTENDED_REQUIRE_CHROMIUM=1`
//! (set by `.ci/run` where it is installed): then it fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_unattended");

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].into_iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("UNATTENDED_REQUIRE_CHROMIUM").is_none(),
            "UNATTENDED_REQUIRE_CHROMIUM is set but no Chromium is on PATH"
        );
        eprintln!("!!! SKIPPED: no Chromium on PATH (install `chromium`; .ci/run does) !!!");
    }
    found
}

/// Chromium, headless, on `url` with `args`; `budget` of virtual time lets the page's timers
/// run (it stops only while a request is in flight). Its stdout.
fn browse(chromium: &Path, profile: &Path, url: &str, args: &[&str], budget: Duration) -> String {
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .args(["--disable-extensions", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "chromium failed on {url}");
    out
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// Serves `page` at `/` and, at `/status.json`, the answers in turn (the last one again
/// after that), on 127.0.0.1; counts the JSON requests.
fn scripted(page: String, answers: Vec<String>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let answers = Arc::new(Mutex::new(answers));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the head.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let (kind, body) = if line.starts_with("GET /status.json") {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answers = answers.lock().unwrap();
                ("application/json", answers[n.min(answers.len() - 1)].clone())
            } else if line.starts_with("GET / ") {
                ("text/html; charset=utf-8", page.clone())
            } else {
                ("text/plain", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, asked)
}

/// The card of `task` in the dumped DOM.
fn card<'a>(dom: &'a str, task: &str) -> &'a str {
    let start = dom.find(&format!("data-task=\"{task}\"")).unwrap_or_else(|| panic!("{dom}"));
    let rest = &dom[start..];
    let end = rest[1..].find("data-task=").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn the_page_shows_every_task_its_timeline_and_a_state_change_after_a_refresh() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // `tick` always succeeds; `flaky` fails once the test creates `broken`.
    std::fs::write(
        dir.path().join("unattended.toml"),
        "[tasks.tick]\nengine = \"command\"\nevery = \"1s\"\ntz = \"UTC\"\nprogram = \"true\"\n\n\
         [tasks.flaky]\nengine = \"command\"\nevery = \"1s\"\ntz = \"UTC\"\nprogram = \"sh\"\n\
         args = [\"-c\", \"[ ! -e broken ] || { echo 'the upstream said no' >&2; exit 3; }\"]\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--http", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(30, "runs of both tasks", || {
        let json = get(port, "/status.json");
        json.matches("\"outcome\":\"succeeded\"").count() >= 6
    });
    let url = format!("http://127.0.0.1:{port}/");
    let profile = dir.path().join("profile");
    let dom = browse(&chromium, &profile, &url, &["--dump-dom"], Duration::from_secs(3));
    let (tick, flaky) = (card(&dom, "tick"), card(&dom, "flaky"));
    assert!(tick.contains("data-state=\"succeeded\""), "{tick}");
    assert!(flaky.contains("data-state=\"succeeded\""), "{flaky}");
    assert!(tick.matches("data-outcome=\"succeeded\"").count() >= 2, "the timeline: {tick}");
    assert!(dom.contains("no alert yet"), "{dom}");

    // It breaks: after a refresh the page shows it failed, in the row and in the timeline.
    std::fs::write(dir.path().join("broken"), "").unwrap();
    wait_for(30, "a failed run of flaky", || {
        get(port, "/status.json").contains("the upstream said no")
    });
    let dom = browse(&chromium, &profile, &url, &["--dump-dom"], Duration::from_secs(3));
    let flaky = card(&dom, "flaky");
    assert!(
        flaky.contains("data-state=\"failed\"") || flaky.contains("data-state=\"cooldown\""),
        "{flaky}"
    );
    assert!(flaky.contains("data-outcome=\"failed\""), "{flaky}");
    assert!(flaky.contains("the upstream said no"), "{flaky}");
    assert!(card(&dom, "tick").contains("data-state=\"succeeded\""));

    // A phone-sized screenshot, for people to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        &profile,
        &url,
        &[&format!("--screenshot={}", shot.display()), "--window-size=412,900"],
        Duration::from_secs(3),
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot at {}", shot.display());
    eprintln!("screenshot: {}", shot.display());

    // The page refreshes itself, and shows what servers said as text, never as markup.
    let page = get(port, "/");
    let before = get(port, "/status.json");
    let mut after: serde_json::Value = serde_json::from_str(&before).unwrap();
    after["tasks"][0]["state"] = "disabled".into();
    after["tasks"][0]["reason"] = "<img src=x onerror=\"document.title='owned'\">".into();
    let (scripted_port, asked) = scripted(page, vec![before, after.to_string()]);
    let dom = browse(
        &chromium,
        &profile,
        &format!("http://127.0.0.1:{scripted_port}/"),
        &["--dump-dom"],
        Duration::from_secs(25),
    );
    assert!(asked.load(Ordering::SeqCst) >= 2, "the page asked again by itself");
    let first = card(&dom, after["tasks"][0]["name"].as_str().unwrap());
    assert!(first.contains("data-state=\"disabled\""), "{first}");
    assert!(first.contains("&lt;img src=x"), "shown as text: {first}");
    assert!(!dom.contains("<img src=\"x\""), "not as markup: {dom}");
    assert!(dom.contains("<title>unattended</title>"), "no script ran from the data");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
