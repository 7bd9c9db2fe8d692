//! `unattended auth` as a person runs it: the built binary, the Google OAuth mock on 127.0.0.1,
//! and a test browser that follows the printed address to the mock, which sends it back to the
//! command's loopback listener. Real time, short.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use unattended::Clock;
use unattended::store::{StateStore, Store, StoreConfig, TaskState, TaskStatus};
use unattended::token::CredentialStore as _;
use unattended_testkit::fault::Fault;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_testkit::serve::{Served, serve};

const BIN: &str = env!("CARGO_BIN_EXE_unattended");
const GMAIL: &str = "https://www.googleapis.com/auth/gmail.modify";
const UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";

/// A task of the email engine on the `mail` service (Gmail through the credential `google`).
const MAILBOX: &str = "[tasks.mailbox]\nengine = \"email\"\nevery = \"5m\"\ntz = \"UTC\"\n\
services = { gmail = \"mail\" }\n[[tasks.mailbox.rules]]\nname = \"star\"\nadd_labels = [\"STARRED\"]\n\n";

/// A config whose credential `google` is shared by two services (three scopes between them, one
/// twice), a credential `work` for another, and tasks on each.
struct Setup {
    dir: tempfile::TempDir,
    mock: GoogleOAuth,
    _served: (Served, Served),
}

async fn setup() -> Setup {
    let mock = GoogleOAuth::new(Clock::system());
    let authorize = serve(mock.authorize()).await.unwrap();
    let token = serve(mock.token_endpoint()).await.unwrap();
    let oauth = |credential: &str, scopes: &str| {
        format!(
            "credential = \"{credential}\"\nclient_id_env = \"TEST_GOOGLE_ID\"\n\
             client_secret_env = \"TEST_GOOGLE_SECRET\"\nauth_url = \"{}/o/oauth2/v2/auth\"\n\
             token_url = \"{}/token\"\nscopes = [{scopes}]\n",
            authorize.url(),
            token.url()
        )
    };
    let task = |name: &str, service: &str| {
        format!(
            "[tasks.{name}]\nengine = \"scrape\"\nevery = \"1h\"\ntz = \"UTC\"\n\
             user_agent = \"test/1.0 (t@example.com)\"\npages = [\"https://example.com/\"]\n\
             fields = {{ title = \"h1\" }}\nservices = {{ web = \"{service}\" }}\n\n"
        )
    };
    let config = format!(
        "[services.mail]\nbase_url = \"https://gmail.googleapis.com\"\n[services.mail.oauth]\n{}\n\
         [services.tube]\nbase_url = \"https://www.googleapis.com\"\n[services.tube.oauth]\n{}\n\
         [services.drive]\n[services.drive.oauth]\n{}\n{}{}{}{MAILBOX}",
        oauth("google", &format!("\"{GMAIL}\"")),
        oauth("google", &format!("\"{UPLOAD}\", \"{GMAIL}\"")),
        oauth("work", "\"https://www.googleapis.com/auth/drive\""),
        task("inbox", "mail"),
        task("uploads", "tube"),
        task("files", "drive"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unattended.toml"), config).unwrap();
    Setup { dir, mock, _served: (authorize, token) }
}

async fn store(dir: &Path) -> Store {
    Store::open(dir.join("unattended.db"), StoreConfig::new(), Clock::system()).await.unwrap()
}

async fn disable(store: &Store, task: &str, reason: &str) {
    let mut status = TaskStatus::new(TaskState::Disabled, Clock::system().wall());
    status.reason = Some(reason.to_owned());
    status.failures = 1;
    store.set_task_state(task, status).await.unwrap();
}

async fn state(store: &Store, task: &str) -> TaskState {
    store.task_state(task).await.unwrap().unwrap().state
}

/// The command, running.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: std::thread::JoinHandle<String>,
}

fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .arg("auth")
        .args(args)
        .current_dir(dir)
        .env("TEST_GOOGLE_ID", CLIENT_ID)
        .env("TEST_GOOGLE_SECRET", CLIENT_SECRET)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::unbounded_channel();
    let stdout = Arc::new(Mutex::new(String::new()));
    let all = stdout.clone();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            all.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    Running { stdin: child.stdin.take(), child, lines, stdout, stderr }
}

impl Running {
    /// The authorization address the command printed.
    async fn url(&mut self) -> String {
        let find = async {
            while let Some(line) = self.lines.recv().await {
                if line.starts_with("http") && line.contains("/o/oauth2/v2/auth?") {
                    return line;
                }
            }
            panic!("the command ended without printing the address");
        };
        Clock::system().timeout(Duration::from_secs(30), find).await.expect("no address printed")
    }

    /// Waits for the end: exit code, standard output, standard error.
    async fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        let mut child = self.child;
        let waited = tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            (status, child)
        });
        let (status, _) = Clock::system()
            .timeout(Duration::from_secs(60), waited)
            .await
            .expect("the command did not end")
            .unwrap();
        let stderr = self.stderr.join().unwrap();
        // The reader thread has seen the end of standard output once the process is gone.
        let stdout = self.stdout.lock().unwrap().clone();
        (status.code(), stdout, stderr)
    }
}

fn browser() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A GET: status, `Location`, body.
async fn get(url: &str) -> (StatusCode, Option<String>, String) {
    let res = browser().get(url.parse().unwrap()).await.unwrap();
    let status = res.status();
    let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, location, String::from_utf8_lossy(&body).into_owned())
}

/// What the browser does: the address to the mock (the human consents, or not), then the
/// redirect (changed by `tamper`) to the command's listener; the last page.
async fn follow(url: &str, tamper: impl FnOnce(String) -> String) -> (StatusCode, String) {
    let (status, location, body) = get(url).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let location = tamper(location.unwrap());
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let (status, _, body) = get(&location).await;
    (status, body)
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// No secret in what the command printed (the mock's tokens and codes have these shapes).
fn assert_no_secret(text: &str) {
    assert!(!text.contains(CLIENT_SECRET), "the client secret was printed: {text}");
    assert!(
        !text.contains("1//refresh-") && !text.contains("ya29."),
        "a token was printed: {text}"
    );
    assert!(
        !text.contains("4/0code-") && !text.contains("4%2F0code-"),
        "the code was printed: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_saves_the_refresh_token_and_reenables_the_tasks_it_disabled() {
    let s = setup().await;
    {
        let store = store(s.dir.path()).await;
        disable(&store, "inbox", "needs re-authorization: the credentials were refused").await;
        disable(&store, "uploads", "stopped: the disk is full").await;
        disable(&store, "files", "needs re-authorization: the credentials were refused").await;
    }
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    assert_eq!(param(&url, "scope"), format!("{GMAIL} {UPLOAD}"), "both services' scopes, once");
    assert_eq!(param(&url, "access_type"), "offline");
    assert_eq!(param(&url, "prompt"), "consent");
    assert_eq!(param(&url, "code_challenge_method"), "S256");
    assert!(param(&url, "redirect_uri").starts_with("http://127.0.0.1:"));
    let (status, page) = follow(&url, |l| l).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Authorized"), "{page}");

    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("saved the refresh token of `google`"), "{out}");
    assert!(out.contains("inbox: disabled → idle"), "{out}");
    assert!(!out.contains("uploads:") && !out.contains("files:"), "{out}");
    assert_no_secret(&format!("{out}{err}"));

    let store = store(s.dir.path()).await;
    let saved = store.credential("google").load().unwrap().expect("saved");
    use secrecy::ExposeSecret as _;
    assert!(s.mock.holds_refresh_token(saved.expose_secret()), "a refresh token the endpoint took");
    assert!(store.credential("work").load().unwrap().is_none());
    assert_eq!(state(&store, "inbox").await, TaskState::Idle);
    let inbox = store.task_state("inbox").await.unwrap().unwrap();
    assert_eq!(inbox.failures, 0);
    assert!(inbox.next_run.is_some(), "due at once");
    assert_eq!(state(&store, "uploads").await, TaskState::Disabled, "stopped for another reason");
    assert_eq!(state(&store, "files").await, TaskState::Disabled, "another credential");
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_left_out_on_the_consent_screen_are_warned_of() {
    let s = setup().await;
    s.mock.decline_scopes(&[UPLOAD]);
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    assert_eq!(follow(&url, |l| l).await.0, StatusCode::OK);
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains(&format!("warning: not granted: {UPLOAD};")), "{err}");
    assert!(!err.contains(GMAIL), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_consent_is_exit_3_and_saves_nothing() {
    let s = setup().await;
    disable(&store(s.dir.path()).await, "inbox", "needs re-authorization: refused").await;
    s.mock.deny_consent(true);
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    let (status, page) = follow(&url, |l| l).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Not authorized: consent was refused"), "{page}");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("error: consent was refused: the answer was access_denied"), "{err}");
    assert!(err.contains("help: run `unattended auth google` again and allow access"), "{err}");
    assert!(s.mock.token_calls().is_empty(), "nothing to exchange");
    let store = store(s.dir.path()).await;
    assert!(store.credential("google").load().unwrap().is_none());
    assert_eq!(state(&store, "inbox").await, TaskState::Disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_with_another_state_is_not_exchanged() {
    let s = setup().await;
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    let state = param(&url, "state");
    let (status, page) = follow(&url, |l| l.replace(&state, "forged-state")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("state does not match"), "{page}");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("error: the answer is not for this request: its state does not match"));
    assert!(err.contains("help: nothing was saved"), "{err}");
    assert!(s.mock.token_calls().is_empty(), "the code was not sent anywhere");
    assert_no_secret(&format!("{out}{err}"));
    assert!(store(s.dir.path()).await.credential("google").load().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_issued_for_another_challenge_is_refused_by_the_token_endpoint() {
    let s = setup().await;
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    // The browser was given someone else's challenge: the code is bound to their verifier.
    let challenge = param(&url, "code_challenge");
    let theirs = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let (status, page) = follow(&url.replace(&challenge, theirs), |l| l).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains("error: the token endpoint refused the authorization code (invalid_grant)"),
        "{err}"
    );
    assert!(err.contains("PKCE verifier"), "{err}");
    let calls = s.mock.token_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, Some(StatusCode::BAD_REQUEST));
    assert_no_secret(&format!("{out}{err}"));
    assert!(store(s.dir.path()).await.credential("google").load().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_in_time_is_exit_3_with_what_to_do() {
    let s = setup().await;
    let mut run = start(s.dir.path(), &["--timeout", "1s"], &[]);
    let url = run.url().await;
    let port = param(&url, "redirect_uri");
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains(&format!("error: no answer came back to {port} within 1s")), "{err}");
    assert!(err.contains("help: run `unattended auth google` again (`--timeout` for longer)"));
    assert!(out.contains("ssh -L"), "the SSH way is told: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_that_is_down_is_exit_1() {
    let s = setup().await;
    s.mock.fail_while(Some(Fault::Unavailable));
    let mut run = start(s.dir.path(), &[], &[]);
    let url = run.url().await;
    let (status, _) = follow(&url, |l| l).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("error: the token endpoint could not be reached"), "{err}");
    assert!(err.contains("help: check the network path to http://127.0.0.1:"), "{err}");
    assert!(store(s.dir.path()).await.credential("google").load().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_address_the_browser_ended_on_can_be_pasted() {
    let s = setup().await;
    let mut run = start(s.dir.path(), &["google"], &[]);
    let url = run.url().await;
    // A browser on another machine: the redirect to 127.0.0.1 does not load there; the human
    // copies its address into the terminal (after a wrong paste).
    let (status, location, _) = get(&url).await;
    assert_eq!(status, StatusCode::FOUND);
    let stdin = run.stdin.as_mut().unwrap();
    writeln!(stdin, "not an answer").unwrap();
    writeln!(stdin, "{}", location.unwrap()).unwrap();
    stdin.flush().unwrap();
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("that is not the address the browser ended on"), "{err}");
    assert!(!err.contains("not an answer"), "a pasted line is not repeated");
    assert!(store(s.dir.path()).await.credential("google").load().unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn open_starts_the_browser_given() {
    let s = setup().await;
    let opened = s.dir.path().join("opened.txt");
    let script = s.dir.path().join("browser.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display())).unwrap();
    let browser = format!("sh {}", script.display());
    let mut run = start(s.dir.path(), &["--open"], &[("BROWSER", &browser)]);
    let printed = run.url().await;
    let read = async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&opened)
                && text.ends_with('\n')
            {
                return text.trim().to_owned();
            }
            Clock::system().sleep(Duration::from_millis(50)).await;
        }
    };
    let url = Clock::system().timeout(Duration::from_secs(20), read).await.expect("not opened");
    assert_eq!(url, printed, "the browser got the printed address");
    assert_eq!(follow(&url, |l| l).await.0, StatusCode::OK);
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("opened the address with sh"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_mistakes_are_exit_2() {
    let s = setup().await;
    let (code, _, err) = start(s.dir.path(), &["personal"], &[]).finish().await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("error: no service uses the credential \"personal\""), "{err}");
    assert!(err.contains("help: the credentials are: google, work"), "{err}");

    let out = Command::new(BIN)
        .args(["auth", "work"])
        .current_dir(s.dir.path())
        .env_remove("TEST_GOOGLE_ID")
        .env("TEST_GOOGLE_SECRET", CLIENT_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: TEST_GOOGLE_ID is not set (the client id of credential \"work\")")
    );
    assert!(err.contains("help: set TEST_GOOGLE_ID"), "{err}");
}

/// The command `unattended ARGS` to its end (with the client's variables): code, stdout, stderr.
async fn unattended(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("TEST_GOOGLE_ID", CLIENT_ID)
        .env("TEST_GOOGLE_SECRET", CLIENT_SECRET)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Consents in the browser; the command saves the token.
async fn authorize(dir: &Path) -> String {
    let mut run = start(dir, &[], &[]);
    let url = run.url().await;
    assert_eq!(follow(&url, |l| l).await.0, StatusCode::OK);
    let (code, out, err) = run.finish().await;
    assert_eq!(code, Some(0), "{out}{err}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_in_the_night_is_named_by_status_and_renewed_by_auth() {
    let s = setup().await;
    let dir = s.dir.path();
    authorize(dir).await;
    // The user revokes the app's access; the next run's refresh is refused.
    s.mock.revoke_all();
    let (code, out, err) = unattended(dir, &["once", "mailbox"]).await;
    assert_eq!(code, Some(3), "{out}{err}");

    let (code, out, err) = unattended(dir, &["status"]).await;
    assert_eq!(code, Some(3), "a human is needed: {out}{err}");
    let row = out.lines().find(|l| l.starts_with("mailbox")).unwrap_or_default();
    assert!(row.contains("needs re-authorization: run `unattended auth google`; "), "{out}");
    assert!(out.contains("help: run `unattended auth google`: "), "{out}");
    assert_no_secret(&format!("{out}{err}"));

    let out = authorize(dir).await;
    assert!(out.contains("mailbox: disabled → idle"), "{out}");
    let (code, out, err) = unattended(dir, &["status"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out.lines().find(|l| l.starts_with("mailbox")).unwrap_or_default();
    assert!(row.contains(" idle "), "{out}");
    let saved = store(dir).await.credential("google").load().unwrap().unwrap();
    use secrecy::ExposeSecret as _;
    assert!(s.mock.holds_refresh_token(saved.expose_secret()), "the new grant is saved");
}
