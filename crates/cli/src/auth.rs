//! `unattended auth CREDENTIAL`: a human consents once, in a browser; the refresh token is saved
//! in the store, and the tasks its refusal disabled run again.
//!
//! The OAuth 2.0 flow for installed applications (RFC 8252, Google's "OAuth 2.0 for Mobile &
//! Desktop Apps"): a listener on a free port of 127.0.0.1 is the redirect URI; the authorization
//! URL (PKCE `S256`, a random `state`, `access_type=offline` and `prompt=consent` so that Google
//! gives a refresh token every time) is printed, and opened in a browser only when asked; the
//! answer comes back to the listener (or is pasted, when the browser is on another machine), its
//! state is checked, and its code traded at the token endpoint. Nothing secret is printed: not
//! the code, not a token, not the client secret.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use unattended_client::{Body, Client, RequestBody, ServiceConfig};
use unattended_core::Clock;
use unattended_runner::{EngineKinds, OAuthSettings, RunnerConfig};
use unattended_store::{StateStore, Store, StoreConfig, TaskState};
use unattended_token::{Authorization, CredentialStore as _, ExchangeError, OAuth2Client};

use crate::logging::{self, LogFormat, Sink};
use crate::{CliError, Code};

/// What `unattended help auth` teaches.
pub(crate) const EXAMPLE: &str = "\
The services that use a credential name it in their oauth table:

    [services.youtube]
    base_url = \"https://www.googleapis.com\"
    [services.youtube.oauth]
    credential = \"google\"                  # the default
    client_id_env = \"GOOGLE_CLIENT_ID\"      # a Desktop app client of the Google Cloud console
    client_secret_env = \"GOOGLE_CLIENT_SECRET\"
    scopes = [\"https://www.googleapis.com/auth/youtube.upload\"]

`unattended auth google` asks for the scopes of every service using `google`,
prints an address to open in a browser, and waits for the browser to come back
to http://127.0.0.1:PORT/. On another machine (over SSH), either forward the
port first and give it:

    ssh -L 8765:127.0.0.1:8765 server     # then, on the server:
    unattended auth google --port 8765

or open the address on your own machine and, when its last page fails to load,
paste that page's address (it holds the answer) into the terminal.

The refresh token is saved in the store ([state] path); tasks disabled because
the old one was refused are made idle, and a running `unattended run` picks
them up at its next monitor round. When a refresh token is refused later (the
access revoked, unused for 6 months, or 7 days old for an app whose consent
screen is still in Testing: publish it), `unattended status` names the command
to run again. Nothing secret is printed: not the code, a token or the secret.

Exit codes: 0 saved; 1 the token endpoint could not be reached (try again);
2 a mistake in the command line, the config or the environment; 3 nothing was
authorized (consent refused, no answer in time, an answer meant for another
request, or the code refused by the token endpoint).";

/// Arguments of `auth`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The credential to authorize: the `credential` of `[services.NAME.oauth]` tables.
    #[arg(default_value = "google")]
    credential: String,
    /// How long to wait for the browser to come back, such as `90s` or `10m`.
    #[arg(long, default_value = "5m", value_parser = positive_duration)]
    timeout: Duration,
    /// The port to listen on at 127.0.0.1 (default: a free one); give one to forward it over
    /// SSH.
    #[arg(long)]
    port: Option<u16>,
    /// Also open the address in a browser: `$BROWSER`, else the desktop's opener (`open` on
    /// macOS, `xdg-open` in a graphical session). Never needed: the address is printed anyway.
    #[arg(long)]
    open: bool,
}

/// A duration of more than zero (`--timeout 0s` could never be met).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match unattended_client::duration::parse(text)? {
        d if d.is_zero() => {
            Err(format!("{text:?} is zero: give the browser some time, such as 5m"))
        }
        d => Ok(d),
    }
}

/// Google's parameters for a refresh token on every consent.
const OFFLINE: [(&str, &str); 2] = [("access_type", "offline"), ("prompt", "consent")];

/// How long the listener waits after a failed `accept` before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long the browser's last page may take to be written after the answer is known.
const PAGE_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn run(
    config: &Path,
    format: LogFormat,
    kinds: &EngineKinds,
    args: Args,
) -> Result<Code, CliError> {
    logging::init(format, Sink::Stderr, "warn");
    let config = crate::load(config, kinds)?;
    let plan = Plan::new(&config, &args.credential)?;
    let name = args.credential.as_str();
    let client_id = env(&plan.oauth.client_id_env, "id", name)?;
    let secret = env(&plan.oauth.client_secret_env, "secret", name)?;
    let client = OAuth2Client::new(client_id, secret, &plan.oauth.token_url).map_err(|e| {
        CliError::new(format!("token_url of credential {name:?} is not a URL: {e}"), Code::Usage)
    })?;
    let clock = Clock::system();
    let store = crate::open_store(&config, StoreConfig::new(), clock).await?;

    let port = args.port.unwrap_or(0);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.map_err(|e| {
        CliError::new(format!("cannot listen on 127.0.0.1:{port}: {e}"), Code::Usage)
            .help("choose another `--port`, or leave it out for a free one")
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let redirect = format!("http://127.0.0.1:{port}/");
    let authorization =
        client.authorize(&plan.oauth.auth_url, &redirect, &plan.scopes, OFFLINE).map_err(|e| {
            CliError::new(format!("auth_url of credential {name:?} is not a URL: {e}"), Code::Usage)
        })?;

    let (arrivals, mut arrived) = mpsc::channel(8);
    let server = tokio::spawn(serve(listener, arrivals.clone(), clock));
    let _server = AbortOnDrop(server);
    read_pasted(arrivals);
    println!(
        "To authorize credential `{name}` ({}), open this address in a browser and allow access:\n\n{}\n\n\
         Waiting up to {} for the browser to come back to {redirect}\n{}",
        plan.services.join(", "),
        authorization.url(),
        show(args.timeout),
        over_ssh(port, args.port.is_some()),
    );
    if args.open {
        match open_browser(authorization.url()) {
            Ok(program) => eprintln!("opened the address with {program}"),
            Err(why) => eprintln!("warning: no browser opened ({why}); open the address by hand"),
        }
    }

    let arrival = wait(&mut arrived, clock, args.timeout, &redirect, name).await?;
    let done = complete(&arrival.answer, authorization, &client, &plan, &store, name, clock).await;
    let verdict = match &done {
        Ok(_) => (
            StatusCode::OK,
            format!("Authorized: the refresh token of {name} is saved. You can close this tab."),
        ),
        Err(e) => {
            (StatusCode::BAD_REQUEST, format!("Not authorized: {}. See the terminal.", e.message))
        }
    };
    arrival.answer_page(verdict, clock).await;
    let missing = done?;

    println!("saved the refresh token of `{name}` in {}", config.state.describe());
    if !missing.is_empty() {
        eprintln!(
            "warning: not granted: {}; what needs them will fail until `unattended auth {name}` \
             is run again and they are allowed",
            missing.join(", ")
        );
    }
    for task in reenable(&store, &plan.tasks, clock).await? {
        println!("{task}: disabled → idle; it runs at the runner's next round");
    }
    Ok(Code::Ok)
}

/// From the answer to a saved refresh token: the state checked, the code exchanged, the token
/// saved. Returns the scopes asked for but not granted.
async fn complete(
    answer: &Answer,
    authorization: Authorization,
    client: &OAuth2Client,
    plan: &Plan,
    store: &Store,
    name: &str,
    clock: Clock,
) -> Result<Vec<String>, CliError> {
    if !answer.state.as_deref().is_some_and(|s| authorization.state_matches(s)) {
        return Err(CliError::new(
            "the answer is not for this request: its state does not match (an old tab, or a \
             forged redirect)",
            Code::NeedsHuman,
        )
        .help(format!(
            "nothing was saved; run `unattended auth {name}` again and use only the address it prints"
        )));
    }
    let code = match &answer.outcome {
        Outcome::Code(code) => code,
        Outcome::Error(error) => return Err(refused(error, name)),
    };
    let http = Client::builder(ServiceConfig::default())
        .clock(clock)
        .build()
        .map_err(|e| CliError::from_error(&e, Code::Usage))?;
    let granted = client
        .exchange_code::<RequestBody>(authorization, code, TokenHttp(http), clock)
        .await
        .map_err(|e| exchange_failed(&e, name, &plan.oauth.token_url))?;
    let Some(refresh) = granted.refresh_token() else {
        return Err(CliError::new("the token endpoint gave no refresh token", Code::NeedsHuman)
            .help(format!(
                "remove the app's access (for Google: https://myaccount.google.com/permissions), \
                 then run `unattended auth {name}` again"
            )));
    };
    store.credential(name).save(refresh).map_err(|e| {
        CliError::from_error(&e, Code::NeedsHuman)
            .help("check the `[state] path` file and its disk (space, permissions)")
    })?;
    // Google's consent screen lets the human leave scopes out.
    let granted = granted.scopes().unwrap_or(&plan.scopes);
    Ok(plan.scopes.iter().filter(|s| !granted.contains(s)).cloned().collect())
}

/// What the config says about one credential.
struct Plan {
    /// The first service's settings (the others must agree on client and endpoints).
    oauth: OAuthSettings,
    /// The services using it.
    services: Vec<String>,
    /// Every scope they list, in order, once.
    scopes: Vec<String>,
    /// The tasks using one of them.
    tasks: Vec<String>,
}

impl Plan {
    fn new(config: &RunnerConfig, credential: &str) -> Result<Self, CliError> {
        let using: Vec<(&String, &OAuthSettings)> = config
            .services
            .iter()
            .filter_map(|(name, s)| s.oauth.as_ref().map(|o| (name, o)))
            .filter(|(_, o)| o.credential == credential)
            .collect();
        let Some((first_name, first)) = using.first().copied() else {
            let known: BTreeSet<&str> = config
                .services
                .values()
                .filter_map(|s| s.oauth.as_ref().map(|o| o.credential.as_str()))
                .collect();
            let help = if known.is_empty() {
                "give the services that need it an `[services.NAME.oauth]` table (`unattended help auth` shows one)".to_owned()
            } else {
                format!("the credentials are: {}", known.into_iter().collect::<Vec<_>>().join(", "))
            };
            return Err(CliError::new(
                format!("no service uses the credential {credential:?}"),
                Code::Usage,
            )
            .help(help));
        };
        let mut scopes = Vec::new();
        for (name, oauth) in &using {
            let differs = [
                ("client_id_env", oauth.client_id_env != first.client_id_env),
                ("client_secret_env", oauth.client_secret_env != first.client_secret_env),
                ("auth_url", oauth.auth_url != first.auth_url),
                ("token_url", oauth.token_url != first.token_url),
            ];
            if let Some((field, _)) = differs.iter().find(|(_, d)| *d) {
                return Err(CliError::new(
                    format!(
                        "services {first_name} and {name} share the credential {credential:?} but not its {field}"
                    ),
                    Code::Usage,
                )
                .help(format!("give them the same {field}: one credential is one OAuth client")));
            }
            for scope in &oauth.scopes {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
        let services: Vec<String> = using.iter().map(|(n, _)| (*n).clone()).collect();
        if scopes.is_empty() {
            return Err(CliError::new(
                format!(
                    "no scopes to ask for: the services using credential {credential:?} ({}) list none",
                    services.join(", ")
                ),
                Code::Usage,
            )
            .help(format!("list them in `scopes = [...]` of `[services.{first_name}.oauth]`")));
        }
        let tasks = config
            .tasks
            .iter()
            .filter(|t| t.services.values().any(|s| services.contains(s)))
            .map(|t| t.name.clone())
            .collect();
        Ok(Self { oauth: first.clone(), services, scopes, tasks })
    }
}

fn env(var: &str, what: &str, credential: &str) -> Result<String, CliError> {
    std::env::var(var).map_err(|_| {
        CliError::new(
            format!("{var} is not set (the client {what} of credential {credential:?})"),
            Code::Usage,
        )
        .help(format!(
            "set {var} to the client {what} of a Desktop app OAuth client (for Google: Cloud \
             console, APIs & Services, Credentials)"
        ))
    })
}

/// Makes idle the tasks (of `tasks`) disabled because their credentials were refused.
async fn reenable(store: &Store, tasks: &[String], clock: Clock) -> Result<Vec<String>, CliError> {
    let mut done = Vec::new();
    for task in tasks {
        let Some(mut status) = store.task_state(task).await? else { continue };
        let refused =
            status.reason.as_deref().is_some_and(|r| r.starts_with("needs re-authorization"));
        if status.state != TaskState::Disabled || !refused {
            continue;
        }
        let now = clock.wall();
        crate::reset::make_idle(&mut status, now, format!("re-authorized by a human at {now}"));
        store.set_task_state(task, status).await?;
        done.push(task.clone());
    }
    Ok(done)
}

/// What came back from the authorization server, by the browser or pasted.
#[derive(Debug)]
struct Answer {
    state: Option<String>,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    /// The code to trade (a secret: never printed).
    Code(String),
    /// The error code (RFC 6749 §4.1.2.1), such as `access_denied`.
    Error(String),
}

impl Answer {
    /// From a redirect's query; `None` if it holds neither a code nor an error.
    fn from_query(query: &str) -> Option<Self> {
        let (mut state, mut code, mut error) = (None, None, None);
        for (key, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            match &*key {
                "state" => state = Some(value.into_owned()),
                "code" => code = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                _ => {}
            }
        }
        // An error wins: a redirect carrying both is not a grant.
        let outcome = match (error, code) {
            (Some(error), _) => Outcome::Error(error),
            (None, Some(code)) if !code.is_empty() => Outcome::Code(code),
            _ => return None,
        };
        Some(Self { state, outcome })
    }

    /// From a line pasted into the terminal: the address the browser ended on, or its query.
    fn from_pasted(line: &str) -> Option<Self> {
        match url::Url::parse(line) {
            Ok(url) => Self::from_query(url.query()?),
            Err(_) => Self::from_query(line),
        }
    }
}

/// An answer, and where its page goes (a browser waiting on the listener; nothing if pasted).
struct Arrival {
    answer: Answer,
    page: Option<oneshot::Sender<(StatusCode, String)>>,
    /// Completes once the connection that brought it is closed (its page written).
    written: Option<oneshot::Receiver<()>>,
}

impl Arrival {
    /// Gives the browser its last page and waits (briefly) until it is written.
    async fn answer_page(self, verdict: (StatusCode, String), clock: Clock) {
        if let Some(page) = self.page {
            let _ = page.send(verdict);
        }
        if let Some(written) = self.written {
            let _ = clock.timeout(PAGE_GRACE, written).await;
        }
    }
}

/// Waits for the first usable answer, or the end of `timeout`.
async fn wait(
    arrived: &mut mpsc::Receiver<Arrival>,
    clock: Clock,
    timeout: Duration,
    redirect: &str,
    name: &str,
) -> Result<Arrival, CliError> {
    match clock.timeout(timeout, arrived.recv()).await {
        Ok(Some(arrival)) => Ok(arrival),
        Ok(None) => Err(CliError::new("the loopback listener stopped", Code::NeedsHuman)
            .help(format!("run `unattended auth {name}` again"))),
        Err(_) => Err(CliError::new(
            format!("no answer came back to {redirect} within {}", show(timeout)),
            Code::NeedsHuman,
        )
        .help(format!(
            "run `unattended auth {name}` again (`--timeout` for longer) and open the address it \
             prints; from another machine, forward the port or paste the address the browser \
             ends on (`unattended help auth`)"
        ))),
    }
}

/// The redirect said no.
fn refused(error: &str, name: &str) -> CliError {
    let error = plain(error);
    if error == "access_denied" {
        return CliError::new(
            "consent was refused: the answer was access_denied",
            Code::NeedsHuman,
        )
        .help(format!(
            "run `unattended auth {name}` again and allow access to the scopes asked for"
        ));
    }
    CliError::new(format!("the authorization server answered {error}"), Code::NeedsHuman)
        .help(format!("check the OAuth client and the scopes of credential {name:?} in the config"))
}

/// The exchange failed.
fn exchange_failed(e: &ExchangeError, name: &str, token_url: &str) -> CliError {
    let err = CliError::from_error(e, Code::NeedsHuman);
    let again = format!("run `unattended auth {name}` again");
    match e.refusal() {
        Some("invalid_grant") => err.help(format!(
            "the code was used already, expired, or does not match this request's PKCE verifier \
             (an answer meant for another program?); {again}"
        )),
        Some("invalid_client" | "unauthorized_client") => err.help(format!(
            "check the client id and secret of credential {name:?} (their environment variables)"
        )),
        Some("redirect_uri_mismatch") => err.help(format!(
            "the OAuth client must accept loopback redirects (for Google, a Desktop app client); {again}"
        )),
        Some(_) => err.help(again),
        None => {
            let mut err = CliError::from_error(e, Code::TaskFailed);
            err = err.help(format!("check the network path to {token_url}, then {again}"));
            err
        }
    }
}

/// An error code as it may be shown: its plain characters, at most 64.
fn plain(text: &str) -> String {
    let shown: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    if shown.is_empty() { "an unreadable error".to_owned() } else { shown }
}

/// How to answer from a browser on another machine.
fn over_ssh(port: u16, fixed: bool) -> String {
    if fixed {
        format!(
            "(over SSH, the browser reaches it through `ssh -L {port}:127.0.0.1:{port} HOST`;\n\
             or paste here the address of the page the browser ends on)."
        )
    } else {
        "(over SSH: paste here the address of the page the browser ends on, which does not load;\n\
         or run again with `--port N` after `ssh -L N:127.0.0.1:N HOST`)."
            .to_owned()
    }
}

fn show(d: Duration) -> String {
    jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |d| format!("{d:#}"))
}

/// Answers the browser on the listener until the process ends: `/` with a code or an error
/// becomes an [`Arrival`] whose verdict is the page; anything else gets `404` or `400`.
async fn serve(listener: TcpListener, arrivals: mpsc::Sender<Arrival>, clock: Clock) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait a little rather than spin.
            clock.sleep(ACCEPT_PAUSE).await;
            continue;
        };
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let (closed, written) = oneshot::channel::<()>();
            let written = Arc::new(Mutex::new(Some(written)));
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (arrivals, written) = (arrivals.clone(), written.clone());
                async move { Ok::<_, Infallible>(browser(&req, &arrivals, &written).await) }
            });
            // One request per connection, so a closed connection means a written page.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(closed);
        });
    }
}

async fn browser(
    req: &Request<Incoming>,
    arrivals: &mpsc::Sender<Arrival>,
    written: &Mutex<Option<oneshot::Receiver<()>>>,
) -> Response<Full<Bytes>> {
    if req.uri().path() != "/" {
        return page(StatusCode::NOT_FOUND, "Not found.");
    }
    let Some(answer) = req.uri().query().and_then(Answer::from_query) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This address waits for the answer of the authorization server; open the address the terminal shows.",
        );
    };
    let (tx, rx) = oneshot::channel();
    let written = written.lock().unwrap_or_else(PoisonError::into_inner).take();
    if arrivals.send(Arrival { answer, page: Some(tx), written }).await.is_err() {
        return page(StatusCode::GONE, "This authorization is over; see the terminal.");
    }
    match rx.await {
        Ok((status, text)) => page(status, &text),
        // Another answer came first.
        Err(_) => page(StatusCode::CONFLICT, "Another answer came first; see the terminal."),
    }
}

fn page(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>unattended auth</title></head>\
         <body><p>{escaped}</p></body></html>\n"
    );
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page says whether a secret was received: not for any cache.
    res.headers_mut()
        .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    res
}

/// Reads lines pasted into the terminal as answers, on a thread of its own (standard input
/// blocks), until end of input or the end of the process.
fn read_pasted(arrivals: mpsc::Sender<Arrival>) {
    let _ = std::thread::Builder::new().name("paste".into()).spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match Answer::from_pasted(line) {
                Some(answer) => {
                    let arrival = Arrival { answer, page: None, written: None };
                    if arrivals.blocking_send(arrival).is_err() {
                        break;
                    }
                }
                // The line may hold a secret: it is not repeated.
                None => eprintln!(
                    "that is not the address the browser ended on (it has no code and no error); \
                     paste the whole address"
                ),
            }
        }
    });
}

/// Starts a browser on `url`: `$BROWSER` (a `:`-separated list, `%s` for the address), else the
/// desktop's opener. Returns the program started.
fn open_browser(url: &str) -> Result<String, String> {
    let candidates: Vec<String> = match std::env::var("BROWSER") {
        Ok(list) if !list.trim().is_empty() => list.split(':').map(str::to_owned).collect(),
        _ if cfg!(target_os = "macos") => vec!["open".to_owned()],
        _ if std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some() =>
        {
            vec!["xdg-open".to_owned()]
        }
        _ => return Err("no $BROWSER and no graphical session".to_owned()),
    };
    for candidate in candidates {
        let mut words = candidate.split_whitespace().map(|w| w.replace("%s", url));
        let Some(program) = words.next() else { continue };
        let mut args: Vec<String> = words.collect();
        if !candidate.contains("%s") {
            args.push(url.to_owned());
        }
        let spawned = tokio::process::Command::new(&program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            // Reaped in the background; the browser may outlive the command.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            return Ok(program);
        }
    }
    Err("the browser could not be started".to_owned())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The resilient client as the token request's HTTP service.
#[derive(Clone, Debug)]
struct TokenHttp(Client);

impl tower_service::Service<Request<RequestBody>> for TokenHttp {
    type Response = Response<Body>;
    type Error = unattended_client::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_a_query_or_a_pasted_address() {
        let a = Answer::from_query("state=s1&code=4%2F0code-1&scope=a%20b").unwrap();
        assert_eq!(a.state.as_deref(), Some("s1"));
        assert!(matches!(a.outcome, Outcome::Code(ref c) if c == "4/0code-1"));
        let a = Answer::from_query("?error=access_denied&state=s1").unwrap();
        assert!(matches!(a.outcome, Outcome::Error(ref e) if e == "access_denied"));
        let a = Answer::from_query("code=x&error=access_denied").unwrap();
        assert!(matches!(a.outcome, Outcome::Error(_)), "an error wins over a code");
        assert!(Answer::from_query("").is_none());
        assert!(Answer::from_query("code=").is_none());
        assert!(Answer::from_query("scope=a").is_none());

        let a = Answer::from_pasted("http://127.0.0.1:8765/?state=s1&code=4%2Fabc").unwrap();
        assert!(matches!(a.outcome, Outcome::Code(ref c) if c == "4/abc"));
        assert!(Answer::from_pasted("state=s1&code=abc").is_some());
        assert!(Answer::from_pasted("http://127.0.0.1:8765/").is_none());
        assert!(Answer::from_pasted("hello").is_none());
    }

    #[test]
    fn the_timeout_is_more_than_zero() {
        assert_eq!(positive_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(positive_duration("0s").unwrap_err().contains("is zero"));
        assert!(positive_duration("-1m").is_err());
        assert!(positive_duration("soon").is_err());
    }

    #[test]
    fn error_codes_are_shown_plain() {
        assert_eq!(plain("access_denied"), "access_denied");
        assert_eq!(plain("<script>x</script>"), "scriptxscript");
        assert_eq!(plain("\n\n"), "an unreadable error");
        assert_eq!(plain(&"a".repeat(100)).len(), 64);
    }
}
