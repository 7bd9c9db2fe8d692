//! The authorization-code grant with PKCE against the Google OAuth mock, in-process under a
//! paused clock: the URL a human opens, the mock's consent redirect, the exchange.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use oauth2::url::Url;
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::fault::Fault;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};
use unattended_token::{Authorization, ExchangeError, OAuth2Client};

const AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const REDIRECT: &str = "http://127.0.0.1:49152/";
const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/gmail.modify",
];

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

fn client() -> OAuth2Client {
    OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.googleapis.com/token").unwrap()
}

fn start() -> Authorization {
    client()
        .authorize(AUTH_URL, REDIRECT, SCOPES, [("access_type", "offline"), ("prompt", "consent")])
        .unwrap()
}

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// What a browser does with the URL: asks the authorization endpoint, returns the redirect's
/// query (the human consents, unless the mock is told otherwise).
async fn browse(mock: &GoogleOAuth, url: &str) -> Vec<(String, String)> {
    let req = Request::get(url).body(Full::<Bytes>::default()).unwrap();
    let res = mock.authorize().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    query(&location)
}

#[test]
fn the_url_asks_for_a_code_with_pkce_s256_a_state_and_the_extra_parameters() {
    let a = start();
    let pairs = query(a.url());
    assert!(a.url().starts_with(AUTH_URL));
    assert_eq!(param(&pairs, "response_type"), Some("code"));
    assert_eq!(param(&pairs, "client_id"), Some(CLIENT_ID));
    assert_eq!(param(&pairs, "redirect_uri"), Some(REDIRECT));
    assert_eq!(param(&pairs, "scope"), Some(SCOPES.join(" ").as_str()));
    assert_eq!(param(&pairs, "code_challenge_method"), Some("S256"));
    assert_eq!(param(&pairs, "code_challenge").map(str::len), Some(43));
    assert_eq!(param(&pairs, "access_type"), Some("offline"));
    assert_eq!(param(&pairs, "prompt"), Some("consent"));
    assert_eq!(a.redirect_uri(), REDIRECT);
    assert!(param(&pairs, "client_secret").is_none(), "the secret is never in the URL");

    let state = param(&pairs, "state").unwrap();
    assert!(state.len() >= 22, "at least 128 random bits");
    assert!(a.state_matches(state));
    assert!(!a.state_matches(&format!("{state}x")));
    assert!(!a.state_matches(""));
    let other = start();
    assert!(!other.state_matches(state), "each request has its own state");
    assert_ne!(param(&query(other.url()), "code_challenge"), param(&pairs, "code_challenge"));
    assert!(!format!("{a:?}").contains(state), "Debug hides the state");

    assert!(client().authorize("not a url", REDIRECT, SCOPES, []).is_err());
    assert!(client().authorize(AUTH_URL, "127.0.0.1:80", SCOPES, []).is_err());
}

#[tokio::test(start_paused = true)]
async fn the_code_is_traded_for_a_refresh_token_the_endpoint_keeps() {
    let mock = GoogleOAuth::new(clock());
    let a = start();
    let answer = browse(&mock, a.url()).await;
    assert!(a.state_matches(param(&answer, "state").unwrap()));
    let code = param(&answer, "code").unwrap();
    let granted = client()
        .exchange_code::<Full<Bytes>>(a, code, mock.token_endpoint(), clock())
        .await
        .unwrap();

    let refresh = granted.refresh_token().expect("offline access with consent gives one");
    use secrecy::ExposeSecret as _;
    assert!(mock.holds_refresh_token(refresh.expose_secret()));
    assert_eq!(
        granted.access_token().expires_at(),
        Some(clock().wall() + Duration::from_secs(3599)),
        "expiry on the clock"
    );
    assert_eq!(granted.scopes().unwrap(), SCOPES);
    let shown = format!("{granted:?}");
    assert!(
        !shown.contains(refresh.expose_secret())
            && !shown.contains(granted.access_token().secret())
    );

    let calls = mock.token_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].credential.as_deref(), Some("authorization_code"));
}

#[tokio::test(start_paused = true)]
async fn a_code_bound_to_another_challenge_is_refused() {
    let mock = GoogleOAuth::new(clock());
    let ours = start();
    // The browser was sent to a URL with someone else's challenge (the code was meant for them).
    let theirs = start();
    let challenge =
        |a: &Authorization| param(&query(a.url()), "code_challenge").unwrap().to_owned();
    let url = ours.url().replace(&challenge(&ours), &challenge(&theirs));
    let answer = browse(&mock, &url).await;
    let code = param(&answer, "code").unwrap();
    let err = client()
        .exchange_code::<Full<Bytes>>(ours, code, mock.token_endpoint(), clock())
        .await
        .unwrap_err();
    assert!(matches!(&err, ExchangeError::Refused { code } if code == "invalid_grant"), "{err:?}");
    assert_eq!(err.refusal(), Some("invalid_grant"));
    assert_eq!(
        err.to_string(),
        "the token endpoint refused the authorization code (invalid_grant)"
    );
    assert!(!err.to_string().contains(code), "the code is not repeated");
}

#[tokio::test(start_paused = true)]
async fn refusals_keep_their_code_and_outages_are_unavailable() {
    let mock = GoogleOAuth::new(clock());
    // A code used twice.
    let a = start();
    let code = param(&browse(&mock, a.url()).await, "code").unwrap().to_owned();
    client().exchange_code::<Full<Bytes>>(a, &code, mock.token_endpoint(), clock()).await.unwrap();
    let again = start();
    let err = client()
        .exchange_code::<Full<Bytes>>(again, &code, mock.token_endpoint(), clock())
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some("invalid_grant"));

    // Another redirect URI than the one the code was issued for.
    let a = start();
    let code = param(&browse(&mock, a.url()).await, "code").unwrap().to_owned();
    let elsewhere = client().authorize(AUTH_URL, "http://127.0.0.1:49153/", SCOPES, []).unwrap();
    let err = client()
        .exchange_code::<Full<Bytes>>(elsewhere, &code, mock.token_endpoint(), clock())
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some("redirect_uri_mismatch"));

    // A wrong client secret.
    let a = start();
    let code = param(&browse(&mock, a.url()).await, "code").unwrap().to_owned();
    let wrong =
        OAuth2Client::new(CLIENT_ID, "nope", "https://oauth2.googleapis.com/token").unwrap();
    let err = wrong
        .exchange_code::<Full<Bytes>>(a, &code, mock.token_endpoint(), clock())
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some("invalid_client"));

    // The endpoint down: an HTML 503, a dropped connection.
    for fault in [Fault::Unavailable, Fault::Transport] {
        let a = start();
        let code = param(&browse(&mock, a.url()).await, "code").unwrap().to_owned();
        mock.fail_next([fault.clone()]);
        let err = client()
            .exchange_code::<Full<Bytes>>(a, &code, mock.token_endpoint(), clock())
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::Unavailable(_)), "{fault:?}: {err:?}");
        assert_eq!(err.refusal(), None);
    }
}
