//! The reqwest-middleware adapter makes the same decisions as the client on the same faults
//! (loopback, real time, short waits).

use std::time::Duration;

use reqwest_middleware::ClientWithMiddleware;
use unattended_client::{Client, ServiceConfig};
use unattended_core::{Clock, ServiceKey};
use unattended_token::{Placement, StaticToken};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SETTINGS: &str =
    "[timeouts]\nattempt = \"500ms\"\n[retry]\nbase_delay = \"10ms\"\nmax_delay = \"50ms\"\n";

fn config(base: &str, extra: &str) -> ServiceConfig {
    ServiceConfig::from_toml(&format!("base_url = \"{base}\"\n{SETTINGS}{extra}")).unwrap()
}

fn both(base: &str, extra: &str) -> (Client, ClientWithMiddleware) {
    let client = Client::builder(config(base, extra)).seed(1).build().unwrap();
    let middleware = Client::builder(config(base, extra)).seed(1).build_middleware().unwrap();
    let reqwest =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
    (client, reqwest)
}

/// Mounts `script` (status, retry-after) then 200, on a fresh server.
async fn server(script: &[(u16, Option<&str>)]) -> MockServer {
    let server = MockServer::start().await;
    for (status, retry_after) in script {
        let mut res = ResponseTemplate::new(*status);
        if let Some(after) = retry_after {
            res = res.insert_header("retry-after", *after);
        }
        Mock::given(method("GET")).respond_with(res.clone()).up_to_n_times(1).mount(&server).await;
        Mock::given(method("POST")).respond_with(res).up_to_n_times(1).mount(&server).await;
    }
    let ok = ResponseTemplate::new(200).set_body_raw("{}", "application/json");
    Mock::given(method("GET")).respond_with(ok.clone()).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok).mount(&server).await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_burst_is_retried_alike() {
    let script = [(503, None), (502, None)];
    let (a, b) = (server(&script).await, server(&script).await);
    let (client, _) = both(&a.uri(), "");
    let (_, reqwest) = both(&b.uri(), "");
    assert_eq!(
        client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap().status(),
        200
    );
    assert_eq!(reqwest.get(format!("{}/x", b.uri())).send().await.unwrap().status(), 200);
    assert_eq!((requests(&a).await, requests(&b).await), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_out_alike() {
    let script = [(429, Some("1"))];
    let (a, b) = (server(&script).await, server(&script).await);
    let (client, _) = both(&a.uri(), "");
    let (_, reqwest) = both(&b.uri(), "");
    let clock = Clock::system();
    let start = clock.now();
    client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap();
    let tower_took = clock.now() - start;
    let start = clock.now();
    reqwest.get(format!("{}/x", b.uri())).send().await.unwrap();
    let reqwest_took = clock.now() - start;
    assert!(tower_took >= Duration::from_secs(1) && reqwest_took >= Duration::from_secs(1));
    assert_eq!((requests(&a).await, requests(&b).await), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_a_key_is_not_retried_by_either() {
    let script = [(503, None)];
    let (a, b) = (server(&script).await, server(&script).await);
    let (client, _) = both(&a.uri(), "");
    let (_, reqwest) = both(&b.uri(), "");
    let err = client.send(http::Request::post("/x").body(Vec::new()).unwrap()).await.unwrap_err();
    assert_eq!(err.attempts(), Some(1));
    let err = reqwest.post(format!("{}/x", b.uri())).send().await.unwrap_err();
    assert!(err.to_string().contains("not idempotent"), "{err}");
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_opens_both_breakers_after_the_same_calls() {
    let script = [(500, None); 5];
    let (a, b) = (server(&script).await, server(&script).await);
    let extra = "max_attempts = 1\n[breaker]\nmin_calls = 5";
    let (client, _) = both(&a.uri(), extra);
    let (_, reqwest) = both(&b.uri(), extra);
    for _ in 0..5 {
        let err =
            client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap_err();
        assert_eq!(err.status(), Some(http::StatusCode::INTERNAL_SERVER_ERROR));
        let err = reqwest.get(format!("{}/x", b.uri())).send().await.unwrap_err();
        assert!(err.to_string().contains("no attempts left"), "{err}");
    }
    let err = client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let err = reqwest.get(format!("{}/x", b.uri())).send().await.unwrap_err();
    assert!(err.to_string().contains("circuit open"), "{err}");
    assert_eq!((requests(&a).await, requests(&b).await), (5, 5));
}

/// Calls to two hosts in turn through one middleware: each host's breaker counts only its own
/// calls (the host called last is kept, never mistaken for the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_in_turn_keep_their_own_breakers() {
    let (failing, fine) = (server(&[(500, None); 5]).await, server(&[]).await);
    let extra = "max_attempts = 1\n[breaker]\nmin_calls = 5";
    let (_, reqwest) = both(&failing.uri(), extra);
    for _ in 0..5 {
        assert!(reqwest.get(format!("{}/x", failing.uri())).send().await.is_err());
        assert_eq!(reqwest.get(format!("{}/x", fine.uri())).send().await.unwrap().status(), 200);
    }
    let err = reqwest.get(format!("{}/x", failing.uri())).send().await.unwrap_err();
    assert!(err.to_string().contains("circuit open"), "{err}");
    assert_eq!(reqwest.get(format!("{}/y", fine.uri())).send().await.unwrap().status(), 200);
    assert_eq!((requests(&failing).await, requests(&fine).await), (5, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_renewed_once_by_both() {
    let script = [(401, None)];
    let (a, b) = (server(&script).await, server(&script).await);
    let build = |base: &str| {
        Client::builder(config(base, "")).token_source(StaticToken::new("k"), Placement::Bearer)
    };
    let client = build(&a.uri()).build().unwrap();
    let middleware = build(&b.uri()).build_middleware().unwrap();
    let reqwest =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
    assert_eq!(
        client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap().status(),
        200
    );
    assert_eq!(reqwest.get(format!("{}/x", b.uri())).send().await.unwrap().status(), 200);
    assert_eq!((requests(&a).await, requests(&b).await), (2, 2));
    let sent = b.received_requests().await.unwrap();
    assert_eq!(sent[1].headers.get("authorization").unwrap(), "Bearer k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_pause_stops_the_other_path() {
    let server = server(&[(429, Some("600"))]).await;
    let client = Client::builder(config(&server.uri(), "")).build().unwrap();
    let middleware =
        Client::builder(config(&server.uri(), "")).build_middleware().unwrap().sharing(&client);
    let reqwest =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
    let err = client.send(http::Request::get("/x").body(Vec::new()).unwrap()).await.unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    let err = reqwest.get(format!("{}/x", server.uri())).send().await.unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
    assert_eq!(requests(&server).await, 1, "the reqwest path met the pause without a request");
    let key: ServiceKey = ServiceKey::from_uri(&server.uri().parse().unwrap()).unwrap();
    assert!(client.pauses().paused_until(key.as_str(), Clock::system().wall()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_gate_refuses_writes_on_both() {
    let server = server(&[]).await;
    let gate = "[gate.write]\ntz = \"UTC\"\nopen = [\"daily 00:00-24:00\"]\nclosed = [\"2000-01-01T00:00/2100-01-01T00:00\"]";
    let (client, reqwest) = both(&server.uri(), gate);
    let err = client.send(http::Request::post("/x").body(Vec::new()).unwrap()).await.unwrap_err();
    assert!(err.is_outside_window(), "{err}");
    let err = reqwest.post(format!("{}/x", server.uri())).send().await.unwrap_err();
    assert!(err.to_string().contains("outside their time window"), "{err}");
    assert_eq!(requests(&server).await, 0);
}

/// The marks the layers read on a request are read by the adapter too, from the middleware's
/// extensions: an action class picks the gate's window, `Retryable` lets a `POST` be retried,
/// `NotIdempotent` keeps a request from being sent twice whatever its `Idempotency-Key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_marks_mean_the_same_to_both() {
    use unattended_gate::ActionClass;
    use unattended_retry::{NotIdempotent, Retryable};
    let gate = "[gate.publish]\ntz = \"UTC\"\nopen = [\"daily 00:00-24:00\"]\nclosed = [\"2000-01-01T00:00/2100-01-01T00:00\"]";
    let gated = server(&[]).await;
    let (client, reqwest) = both(&gated.uri(), gate);
    let mut publish = http::Request::get("/x").body(Vec::new()).unwrap();
    publish.extensions_mut().insert(ActionClass::new("publish"));
    assert!(client.send(publish).await.unwrap_err().is_outside_window());
    let url = format!("{}/x", gated.uri());
    let err = reqwest.get(&url).with_extension(ActionClass::new("publish")).send().await;
    assert!(err.unwrap_err().to_string().contains("outside their time window"));
    assert!(reqwest.get(&url).send().await.is_ok(), "a plain GET is a read");
    assert_eq!(requests(&gated).await, 1);

    let script = [(503, None)];
    let (a, b) = (server(&script).await, server(&script).await);
    let (client, _) = both(&a.uri(), "");
    let (_, reqwest) = both(&b.uri(), "");
    let mut post = http::Request::post("/x").body(Vec::new()).unwrap();
    post.extensions_mut().insert(Retryable);
    assert_eq!(client.send(post).await.unwrap().status(), 200);
    let res = reqwest.post(format!("{}/x", b.uri())).with_extension(Retryable).send().await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!((requests(&a).await, requests(&b).await), (2, 2), "retried by both");

    let (a, b) = (server(&script).await, server(&script).await);
    let (client, _) = both(&a.uri(), "");
    let (_, reqwest) = both(&b.uri(), "");
    let mut keyed =
        http::Request::post("/x").header("idempotency-key", "k-1").body(Vec::new()).unwrap();
    keyed.extensions_mut().insert(NotIdempotent);
    assert_eq!(client.send(keyed).await.unwrap_err().attempts(), Some(1));
    let keyed = reqwest.post(format!("{}/x", b.uri())).header("idempotency-key", "k-1");
    let err = keyed.with_extension(NotIdempotent).send().await;
    assert!(err.unwrap_err().to_string().contains("not idempotent"));
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1), "sent once by both");
}

/// A token in the query goes where the client puts it, encoded alike, and replaces one the URL
/// had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_query_is_placed_alike() {
    let (a, b) = (server(&[]).await, server(&[]).await);
    let build = |base: &str| {
        Client::builder(config(base, ""))
            .token_source(StaticToken::new("k 1/2"), Placement::query("key"))
    };
    let client = build(&a.uri()).build().unwrap();
    let middleware = build(&b.uri()).build_middleware().unwrap();
    let reqwest =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
    client.send(http::Request::get("/x?a=1&key=old").body(Vec::new()).unwrap()).await.unwrap();
    reqwest.get(format!("{}/x?a=1&key=old", b.uri())).send().await.unwrap();
    let (sent_a, sent_b) =
        (a.received_requests().await.unwrap(), b.received_requests().await.unwrap());
    assert_eq!(sent_a[0].url.query(), Some("a=1&key=k%201%2F2"));
    assert_eq!(sent_b[0].url.query(), sent_a[0].url.query());
}

#[test]
fn zero_timeouts_are_refused_by_the_middleware_too() {
    for field in ["connect", "attempt", "overall"] {
        let text = format!("[timeouts]\n{field} = \"0s\"");
        let config = ServiceConfig::from_toml(&text).unwrap();
        let err = unattended_client::ResilienceMiddleware::from_config(&config).unwrap_err();
        assert!(err.to_string().contains(&format!("timeouts.{field}")), "{err}");
    }
}

/// Through the adapter too, callers refused together with `Retry-After: 1` come back spread
/// over the second after it, not all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_refused_together_come_back_spread_through_the_adapter() {
    let clock = Clock::system();
    let start = clock.now();
    let server = MockServer::start().await;
    // Answers after 200 ms, so every caller is refused before any answer comes back: `429
    // Retry-After: 1` during the first second, then `200`.
    let answer = move |_: &wiremock::Request| {
        let res = if clock.now() - start < Duration::from_secs(1) {
            ResponseTemplate::new(429).insert_header("retry-after", "1")
        } else {
            ResponseTemplate::new(200).set_body_raw("{}", "application/json")
        };
        res.set_delay(Duration::from_millis(200))
    };
    Mock::given(method("GET")).respond_with(answer).mount(&server).await;
    let (_, reqwest) = both(&server.uri(), "budget = false\n");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (reqwest, url) = (reqwest.clone(), format!("{}/x", server.uri()));
        calls.spawn(async move {
            let res = reqwest.get(url).send().await;
            (res.map(|r| r.status()), clock.now())
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let (status, at) = joined.unwrap();
        assert_eq!(status.unwrap(), 200);
        done.push(at - start);
    }
    done.sort();
    assert!(done[0] >= Duration::from_secs(1), "never before the server's instant: {done:?}");
    assert!(done[31] - done[0] >= Duration::from_millis(500), "spread: {done:?}");
}

/// Behind a leaky bucket (nginx's `limit_req`, served on 127.0.0.1 in real time) the adapter
/// learns the host's pace as the client does: every call through, few 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_learn_the_pace_of_a_limited_host() {
    use unattended_testkit::leaky::{LeakyBucket, LimitReq};
    const CALLERS: usize = 8;
    const CALLS: usize = 20;
    for path in ["client", "reqwest"] {
        let api = LeakyBucket::new(Clock::system(), LimitReq::new(40.0, 5));
        let served = unattended_testkit::serve::serve(api.clone()).await.unwrap();
        let (client, reqwest) = both(&served.url(), "");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CALLERS {
            let (client, reqwest, url) = (client.clone(), reqwest.clone(), served.url());
            tasks.spawn(async move {
                let mut failed = 0;
                for _ in 0..CALLS {
                    let ok = if path == "client" {
                        client.get_json::<serde_json::Value>("/x").await.is_ok()
                    } else {
                        let res = reqwest.get(format!("{url}/x")).send().await;
                        res.is_ok_and(|r| r.status() == 200)
                    };
                    failed += usize::from(!ok);
                }
                failed
            });
        }
        let mut failed = 0;
        while let Some(done) = tasks.join_next().await {
            failed += done.unwrap();
        }
        let (_, refused) = api.counts();
        let per_call = refused as f64 / (CALLERS * CALLS) as f64;
        assert_eq!(failed, 0, "{path}: every call through");
        // Loose: a short run, its first burst of refusals included.
        assert!(per_call <= 0.15, "{path}: {per_call:.3} 429s per call");
    }
}

/// Fetches a fixed token after `delay`.
struct SlowToken {
    delay: Duration,
}

impl unattended_token::TokenSource for SlowToken {
    fn fetch(&self) -> unattended_token::FetchFuture<'_> {
        Box::pin(async move {
            Clock::system().sleep(self.delay).await;
            Ok(unattended_token::AccessToken::new("token", None))
        })
    }
}

/// The attempt timeout (500 ms here) counts from the send: a token fetch of 400 ms before it
/// leaves the 300 ms answer its whole limit, so the call is one request, not a timeout and a
/// retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_token_is_not_counted_in_the_attempt_timeout() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_millis(300));
    Mock::given(method("GET")).respond_with(slow).mount(&server).await;
    let middleware = Client::builder(config(&server.uri(), ""))
        .token_source(SlowToken { delay: Duration::from_millis(400) }, Placement::Bearer)
        .build_middleware()
        .unwrap();
    let reqwest =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware).build();
    let res = reqwest.get(format!("{}/x", server.uri())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(requests(&server).await, 1, "the first attempt was not cut short");
}
