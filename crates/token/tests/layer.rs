//! The token layer and the OAuth2 source against the Google OAuth mock, under a paused clock.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use unattended_core::{BoxError, Clock, Disposition, HasDisposition};
use unattended_testkit::fault::{Fault, RetryAfter};
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth, TokenEndpoint};
use unattended_token::{
    CacheConfig, FileCredentialStore, OAuth2Client, OAuth2Source, Placement, StaticToken,
    TokenCache, TokenError, TokenLayer,
};

type Source = OAuth2Source<TokenEndpoint, Full<Bytes>>;

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

fn client() -> OAuth2Client {
    OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.googleapis.com/token").unwrap()
}

fn source(mock: &GoogleOAuth, refresh_token: String) -> Source {
    OAuth2Source::refresh_token(client(), refresh_token, mock.token_endpoint(), clock())
}

fn cache(mock: &GoogleOAuth) -> Arc<TokenCache<Source>> {
    Arc::new(TokenCache::new(source(mock, mock.grant()), clock()))
}

fn get() -> Request<Full<Bytes>> {
    Request::get("https://www.googleapis.com/youtube/v3/videos").body(Full::default()).unwrap()
}

fn token_error(err: &BoxError) -> &TokenError {
    err.downcast_ref::<TokenError>().unwrap_or_else(|| panic!("expected TokenError, got {err}"))
}

#[tokio::test(start_paused = true)]
async fn a_hundred_callers_with_an_expired_token_cause_one_fetch() {
    let mock = GoogleOAuth::new(clock());
    mock.latency(Duration::from_millis(200));
    let cache = cache(&mock);
    let svc = TokenLayer::new(cache.clone()).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    clock().sleep(Duration::from_secs(3600)).await; // the first token has expired
    let calls = (0..100).map(|_| svc.clone().oneshot(get()));
    let answers = futures_join(calls).await;
    assert!(answers.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)));
    assert_eq!(mock.token_calls().len(), 2, "one fetch at start, one for all 100");
    let api = mock.api_calls();
    assert_eq!(api.len(), 101);
    assert!(
        api.iter().all(|c| c.status == Some(StatusCode::OK)),
        "no request carried an expired token"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_about_to_expire_is_replaced_before_it_is_sent() {
    let mock = GoogleOAuth::new(clock());
    mock.token_lifetime(Duration::from_secs(3600));
    let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    // 4 minutes before expiry: within the 5-minute skew.
    clock().sleep(Duration::from_secs(3600 - 240)).await;
    svc.clone().oneshot(get()).await.unwrap();
    let api = mock.api_calls();
    assert_eq!(mock.token_calls().len(), 2);
    assert_ne!(api[0].credential, api[1].credential, "the old token was never sent again");
}

#[tokio::test(start_paused = true)]
async fn short_lived_tokens_scale_the_skew_down() {
    let mock = GoogleOAuth::new(clock());
    mock.token_lifetime(Duration::from_secs(60));
    let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
    for _ in 0..60 {
        let res = svc.clone().oneshot(get()).await.unwrap();
        assert_eq!(res.status(), 200);
        clock().sleep(Duration::from_secs(10)).await;
    }
    // 10 minutes of 60 s tokens refreshed ~5 s early: about 11 fetches, not one per request.
    let fetches = mock.token_calls().len();
    assert!((10..=13).contains(&fetches), "{fetches} fetches");
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_renewed_and_the_request_sent_once_more() {
    let mock = GoogleOAuth::new(clock());
    let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    mock.invalidate_access_tokens(); // the server dropped the token before its expiry
    let res = svc.clone().oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 200);
    let statuses: Vec<_> =
        mock.api_calls().iter().filter_map(|c| c.status.map(|s| s.as_u16())).collect();
    assert_eq!(statuses, [200, 401, 200]);
    assert_eq!(mock.token_calls().len(), 2);
}

/// An API that refuses every credential.
fn refusing_api() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let mut res = Response::new(Full::default());
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        Ok::<_, Infallible>(res)
    })
}

#[tokio::test(start_paused = true)]
async fn a_new_token_refused_too_means_the_credentials_need_a_human() {
    let mock = GoogleOAuth::new(clock());
    let svc = TokenLayer::new(cache(&mock)).layer(refusing_api());
    let err = svc.clone().oneshot(get()).await.unwrap_err();
    assert!(matches!(token_error(&err), TokenError::Reauthorize { .. }), "{err}");
    assert_eq!(token_error(&err).disposition(), Disposition::Reauthorize);
    assert_eq!(mock.token_calls().len(), 2, "the first token, and one renewal");
    // The renewed token was never accepted: its refusal is final at once, with no new fetch.
    let err = svc.clone().oneshot(get()).await.unwrap_err();
    assert!(matches!(token_error(&err), TokenError::Reauthorize { .. }));
    assert_eq!(mock.token_calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_not_sent_twice() {
    let mock = GoogleOAuth::new(clock());
    let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
    let stream = |body: &'static [u8]| {
        Request::post("https://www.googleapis.com/upload")
            .body(Full::new(Bytes::from_static(body)).boxed())
            .unwrap()
    };
    svc.clone().oneshot(stream(b"a")).await.unwrap();
    mock.invalidate_access_tokens();
    let err = svc.clone().oneshot(stream(b"b")).await.unwrap_err();
    let TokenError::NotReplayed { retry_at } = token_error(&err) else { panic!("{err}") };
    assert_eq!(*retry_at, clock().wall(), "the caller may send it again at once");
    assert!(err.to_string().contains("stream"), "{err}");
    assert_eq!(mock.api_calls().len(), 2, "sent once");
    // The token was renewed: the next request goes through.
    assert_eq!(svc.clone().oneshot(stream(b"c")).await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn inside_a_retry_layer_the_retry_layer_replays_and_no_copy_is_kept() {
    let mock = GoogleOAuth::new(clock());
    let token = TokenLayer::new(cache(&mock)).replay_refused(false);
    let retry = unattended_retry::RetryLayer::new(unattended_retry::RetryConfig::standard())
        .unwrap()
        .clock(clock());
    let svc = retry.layer(token.layer(mock.api()));
    svc.clone().oneshot(get()).await.unwrap();
    mock.invalidate_access_tokens();
    // A POST without an idempotency key: a 401 proves nothing was done, so it is sent again.
    let post =
        Request::post("https://www.googleapis.com/x").body(Full::<Bytes>::default()).unwrap();
    let res = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(res.status(), 200);
    let statuses: Vec<_> =
        mock.api_calls().iter().filter_map(|c| c.status.map(|s| s.as_u16())).collect();
    assert_eq!(statuses, [200, 401, 200]);

    // Credentials refused for good: a typed error the retry layer does not retry.
    let svc =
        retry.layer(TokenLayer::new(cache(&mock)).replay_refused(false).layer(refusing_api()));
    let before = mock.token_calls().len();
    let err = svc.oneshot(get()).await.unwrap_err();
    assert!(matches!(token_error(&err), TokenError::Reauthorize { .. }), "{err}");
    assert_eq!(mock.token_calls().len() - before, 2);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_grant_needs_a_human_and_is_not_asked_again() {
    let mock = GoogleOAuth::new(clock());
    let cache = cache(&mock);
    let svc = TokenLayer::new(cache.clone()).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    mock.revoke_all();
    clock().sleep(Duration::from_secs(3600)).await;
    let err = svc.clone().oneshot(get()).await.unwrap_err();
    let TokenError::Reauthorize { reason } = token_error(&err) else { panic!("{err}") };
    assert!(reason.contains("invalid_grant"), "{reason}");
    let err = svc.clone().oneshot(get()).await.unwrap_err();
    assert_eq!(token_error(&err).disposition(), Disposition::Reauthorize);
    assert_eq!(mock.token_calls().len(), 2, "not asked again after invalid_grant");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_outage_is_ridden_out_on_the_old_token() {
    let mock = GoogleOAuth::new(clock());
    let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
    svc.clone().oneshot(get()).await.unwrap();
    mock.fail_while(Some(Fault::Unavailable));
    // From 10 minutes before expiry to 1 minute before: one request every 10 s.
    clock().sleep(Duration::from_secs(3599 - 600)).await;
    for _ in 0..54 {
        assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 200);
        clock().sleep(Duration::from_secs(10)).await;
    }
    let tries = mock.token_calls();
    let gaps: Vec<_> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_secs(30)), "spaced: {gaps:?}");
    assert!(tries.len() > 2 && tries.len() <= 12, "{} tries", tries.len());
    // The endpoint comes back: the next due refresh succeeds.
    mock.fail_while(None);
    clock().sleep(Duration::from_secs(30)).await;
    assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 200);
    assert!(mock.api_calls().iter().all(|c| c.status == Some(StatusCode::OK)));
}

#[tokio::test(start_paused = true)]
async fn endpoint_faults_are_unavailable_and_say_when_to_retry() {
    for fault in [
        Fault::Unavailable,
        Fault::RateLimited(Some(RetryAfter::Seconds(30))),
        Fault::MalformedJson,
    ] {
        let mock = GoogleOAuth::new(clock());
        mock.fail_next([fault.clone()]);
        let svc = TokenLayer::new(cache(&mock)).layer(mock.api());
        let err = svc.clone().oneshot(get()).await.unwrap_err();
        let TokenError::RefreshFailed { retry_at, .. } = token_error(&err) else {
            panic!("{fault:?}: {err}")
        };
        assert_eq!(*retry_at, clock().wall() + jiff::SignedDuration::from_secs(30));
        clock().sleep(Duration::from_secs(30)).await;
        assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 200, "{fault:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_saved_privately_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("youtube.refresh");
    let mock = GoogleOAuth::new(clock());
    mock.rotate_refresh_tokens(true);
    let first = mock.grant();
    let store = FileCredentialStore::new(&path);
    let src = source(&mock, first.clone()).with_store(store.clone()).unwrap();
    let cache = Arc::new(TokenCache::new(src, clock()));
    cache.get().await.unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.starts_with("1//refresh-") && saved != first, "the rotated token was saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(!dir.path().join("youtube.refresh.tmp").exists(), "no temporary file left");
    // A new process, configured with the (now retired) first token, starts from the saved one.
    let restarted = source(&mock, first).with_store(FileCredentialStore::new(&path)).unwrap();
    let cache = TokenCache::new(restarted, clock());
    cache.get().await.unwrap();
    assert_ne!(std::fs::read_to_string(&path).unwrap(), saved, "rotated again, saved again");
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_save_keeps_the_rotated_token_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("token");
    let mock = GoogleOAuth::new(clock());
    mock.rotate_refresh_tokens(true);
    let src = source(&mock, mock.grant()).with_store(FileCredentialStore::new(&path)).unwrap();
    let cache = TokenCache::new(src, clock());
    cache.get().await.unwrap();
    clock().sleep(Duration::from_secs(3600)).await;
    // The old refresh token is retired; the rotated one, kept in memory, still works.
    cache.get().await.unwrap();
    assert_eq!(mock.token_calls().iter().filter(|c| c.status == Some(StatusCode::OK)).count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_client_credentials_grant_works_and_a_wrong_client_needs_a_human() {
    let mock = GoogleOAuth::new(clock());
    let src: Source =
        OAuth2Source::client_credentials(client(), ["scope-a"], mock.token_endpoint(), clock());
    let svc = TokenLayer::new(Arc::new(TokenCache::new(src, clock()))).layer(mock.api());
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 200);
    let wrong =
        OAuth2Client::new(CLIENT_ID, "wrong", "https://oauth2.googleapis.com/token").unwrap();
    let src: Source =
        OAuth2Source::refresh_token(wrong, mock.grant(), mock.token_endpoint(), clock());
    let err = TokenCache::new(src, clock()).get().await.unwrap_err();
    assert!(
        matches!(&err, TokenError::Reauthorize { reason } if reason.contains("invalid_client"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_background_refresher_keeps_callers_from_waiting() {
    let mock = GoogleOAuth::new(clock());
    mock.latency(Duration::from_secs(1));
    let cache = cache(&mock);
    let _refresher = cache.spawn_refresher();
    let svc = TokenLayer::new(cache.clone()).layer(mock.api());
    clock().sleep(Duration::from_secs(2)).await; // the first fetch, in the background
    for _ in 0..30 {
        let start = clock().now();
        assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 200);
        assert_eq!(clock().now(), start, "no caller waited for a fetch");
        clock().sleep(Duration::from_secs(600)).await;
    }
    // Five hours of one-hour tokens: about one fetch an hour, all in the background.
    let fetches = mock.token_calls().len();
    assert!((5..=7).contains(&fetches), "{fetches} fetches");
}

#[tokio::test(start_paused = true)]
async fn the_refresher_stops_when_dropped_and_waits_out_a_revocation() {
    let mock = GoogleOAuth::new(clock());
    let cache = cache(&mock);
    let refresher = cache.spawn_refresher();
    clock().sleep(Duration::from_secs(1)).await;
    mock.revoke_all();
    clock().sleep(Duration::from_secs(5 * 3600)).await;
    assert_eq!(mock.token_calls().len(), 2, "one fetch, one invalid_grant, then nothing");
    assert!(cache.is_revoked());
    drop(refresher);
    cache.reset_credentials();
    clock().sleep(Duration::from_secs(3600)).await;
    assert_eq!(mock.token_calls().len(), 2, "a dropped refresher fetches nothing");
}

#[tokio::test(start_paused = true)]
async fn the_refresher_rides_out_an_outage_with_spaced_tries() {
    let mock = GoogleOAuth::new(clock());
    let cache = cache(&mock);
    let _refresher = cache.spawn_refresher();
    clock().sleep(Duration::from_secs(1)).await;
    mock.fail_while(Some(Fault::Unavailable));
    // Past the refresh point (~5 min before expiry), 3 minutes of outage.
    clock().sleep(Duration::from_secs(3599 - 300 + 180)).await;
    let tries = mock.token_calls();
    let gaps: Vec<_> = tries[1..].windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|g| *g == Duration::from_secs(30)), "{gaps:?}");
    assert!((5..=8).contains(&(tries.len() - 1)), "{} failed tries", tries.len() - 1);
    mock.fail_while(None);
    clock().sleep(Duration::from_secs(30)).await;
    let svc = TokenLayer::new(cache.clone()).layer(mock.api());
    let start = clock().now();
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 200);
    assert_eq!(clock().now(), start, "refreshed in the background once the endpoint came back");
}

#[tokio::test(start_paused = true)]
async fn api_keys_go_in_a_header_or_the_query() {
    let seen = |req: Request<Full<Bytes>>| async move {
        let header = req.headers().get("api-key").map(|v| {
            assert!(v.is_sensitive());
            v.to_str().unwrap().to_owned()
        });
        let text = format!("{:?} {}", header, req.uri());
        Ok::<_, Infallible>(Response::new(text))
    };
    let cache = Arc::new(TokenCache::new(StaticToken::new("k/1"), clock()));
    let header = TokenLayer::new(cache.clone())
        .placement(Placement::header("api-key".parse().unwrap()))
        .layer(tower::service_fn(seen));
    let res = header.oneshot(get()).await.unwrap();
    assert_eq!(res.body(), r#"Some("k/1") https://www.googleapis.com/youtube/v3/videos"#);
    let query =
        TokenLayer::new(cache).placement(Placement::query("key")).layer(tower::service_fn(seen));
    let res = query.oneshot(get()).await.unwrap();
    assert_eq!(res.body(), "None https://www.googleapis.com/youtube/v3/videos?key=k%2F1");
}

/// What the layer puts on a request, requests of other types get from the same cache and
/// placement: the same header (made once per token, sensitive), the same query.
#[tokio::test(start_paused = true)]
async fn the_placement_rules_give_other_requests_what_the_layer_puts() {
    let cache = Arc::new(TokenCache::new(StaticToken::new("k/1 2"), clock()));
    let token = cache.current().await.unwrap();
    assert_eq!(token.token().secret(), "k/1 2");
    let (name, value) = Placement::Bearer.header_for(&token).unwrap().unwrap();
    assert_eq!((name.as_str(), value.to_str().unwrap()), ("authorization", "Bearer k/1 2"));
    assert!(value.is_sensitive());
    let (_, again) =
        Placement::Bearer.header_for(&cache.current().await.unwrap()).unwrap().unwrap();
    assert_eq!(again.as_bytes().as_ptr(), value.as_bytes().as_ptr(), "made once per token");
    let (name, value) =
        Placement::header("api-key".parse().unwrap()).header_for(&token).unwrap().unwrap();
    assert_eq!((name.as_str(), value.to_str().unwrap()), ("api-key", "k/1 2"));
    assert!(Placement::query("key").header_for(&token).unwrap().is_none());
    assert!(Placement::Bearer.query_for(&token, Some("a=1")).is_none());
    let query = Placement::query("key").query_for(&token, Some("part=id&key=old&x=1"));
    assert_eq!(query.as_deref(), Some("part=id&x=1&key=k%2F1%202"));
    // The layer's query for the same request.
    let seen = |req: Request<Full<Bytes>>| async move {
        Ok::<_, Infallible>(Response::new(req.uri().query().unwrap_or("").to_owned()))
    };
    let layer =
        TokenLayer::new(cache).placement(Placement::query("key")).layer(tower::service_fn(seen));
    let req = Request::get("https://a.example/v?part=id&key=old&x=1").body(Full::default());
    assert_eq!(layer.oneshot(req.unwrap()).await.unwrap().body(), query.as_deref().unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_token_no_header_can_carry_is_a_typed_error() {
    let cache = Arc::new(TokenCache::new(StaticToken::new("bad\nkey"), clock()));
    let svc = TokenLayer::new(cache).layer(tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let err = svc.oneshot(get()).await.unwrap_err();
    assert_eq!(token_error(&err).disposition(), Disposition::Stop);
    assert!(!err.to_string().contains("bad"), "the token is not repeated: {err}");
}

#[tokio::test(start_paused = true)]
async fn the_retry_spacing_applies_through_the_layer() {
    let mock = GoogleOAuth::new(clock());
    mock.fail_while(Some(Fault::Unavailable));
    let config = CacheConfig::new().retry_spacing(Duration::from_secs(5));
    let cache = Arc::new(TokenCache::with_config(source(&mock, mock.grant()), clock(), config));
    let svc = TokenLayer::new(cache).layer(mock.api());
    for _ in 0..10 {
        let _ = svc.clone().oneshot(get()).await;
        clock().sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(mock.token_calls().len(), 2, "at 0 s and at 5 s");
}

/// A token endpoint that answers `200` with `body`.
fn answering(
    body: &'static str,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |_: Request<Full<Bytes>>| async move {
        let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        res.headers_mut().insert("content-type", "application/json".parse().unwrap());
        Ok::<_, Infallible>(res)
    })
}

/// Some providers send `expires_in` as a string or with a fraction: such answers are tokens.
#[tokio::test(start_paused = true)]
async fn expires_in_as_a_string_or_a_fraction_is_read() {
    let now = clock().wall();
    let at = |secs: f64| unattended_core::clock::add_saturating(now, Duration::from_secs_f64(secs));
    for (body, expires) in [
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#, Some(at(3600.0))),
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":"3600"}"#, Some(at(3600.0))),
        (r#"{"access_token":"t","token_type":"bearer","expires_in":" 3599.5 "}"#, Some(at(3599.5))),
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":59.25}"#, Some(at(59.25))),
        // Negative: due now (the cache's rule for due tokens applies).
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":-5}"#, Some(now)),
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":"-5"}"#, Some(now)),
        (r#"{"access_token":"t","token_type":"Bearer","expires_in":null}"#, None),
        (r#"{"access_token":"t","token_type":"Bearer"}"#, None),
        (
            r#"{"access_token":"t","token_type":"Bearer","expires_in":1e30}"#,
            Some(jiff::Timestamp::MAX),
        ),
    ] {
        let src = OAuth2Source::<_, Full<Bytes>>::client_credentials(
            client(),
            ["scope-a"],
            answering(body),
            clock(),
        );
        let token = unattended_token::TokenSource::fetch(&src)
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!((token.secret(), token.expires_at()), ("t", expires), "{body}");
    }
    for body in [
        r#"{"access_token":"t","token_type":"Bearer","expires_in":"soon"}"#,
        r#"{"access_token":"t","token_type":"Bearer","expires_in":"NaN"}"#,
        r#"{"access_token":"t","token_type":"Bearer","expires_in":true}"#,
    ] {
        let src = OAuth2Source::<_, Full<Bytes>>::client_credentials(
            client(),
            ["scope-a"],
            answering(body),
            clock(),
        );
        let err = unattended_token::TokenSource::fetch(&src).await.unwrap_err();
        assert!(err.to_string().contains("unavailable"), "{body}: {err}");
    }
}

/// Runs futures concurrently on this task (no extra dependency for a join).
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(|f| Box::pin(f)).collect();
    let mut slots: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, handle) in slots.iter_mut().zip(handles.iter_mut()) {
            if let Some(fut) = handle {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => {
                        *slot = Some(out);
                        *handle = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    slots.into_iter().map(|s| s.expect("every future finished")).collect()
}
