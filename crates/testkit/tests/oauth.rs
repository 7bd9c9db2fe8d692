//! The Google OAuth mock's protocol: grants, every error body, expiry on the clock, rotation.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use unattended_core::Clock;
use unattended_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, GoogleOAuth};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

async fn token(mock: &GoogleOAuth, form: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::post("https://oauth2.googleapis.com/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    let res = mock.token_endpoint().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn api(mock: &GoogleOAuth, bearer: Option<&str>) -> (StatusCode, Option<String>) {
    let mut req = Request::get("https://www.googleapis.com/youtube/v3/channels");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = mock.api().oneshot(req.body(()).unwrap()).await.unwrap();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (res.status(), challenge)
}

fn form(grant: &str, refresh: &str) -> String {
    format!(
        "grant_type={grant}&refresh_token={refresh}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    )
}

#[tokio::test(start_paused = true)]
async fn grants_errors_expiry_and_rotation() {
    let mock = GoogleOAuth::new(clock());
    let refresh = mock.grant();
    let (status, body) = token(&mock, &form("refresh_token", &refresh)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["expires_in"].as_u64(), body["token_type"].as_str()),
        (Some(3599), Some("Bearer"))
    );
    assert!(body.get("refresh_token").is_none(), "no new refresh token unless rotating");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api(&mock, Some(&access)).await.0, StatusCode::OK);

    // Expired on the clock: 401 with the invalid_token challenge; no token: realm only.
    clock().sleep(Duration::from_secs(3600)).await;
    let (status, challenge) = api(&mock, Some(&access)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
    let (_, challenge) = api(&mock, None).await;
    assert_eq!(challenge.unwrap(), r#"Bearer realm="https://accounts.google.com/""#);

    let (status, body) = token(&mock, &form("password", &refresh)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let wrong =
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=x&client_secret=y");
    let (status, body) = token(&mock, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    mock.revoke_all();
    let (status, body) = token(&mock, &form("refresh_token", &refresh)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(body["error_description"], "Token has been expired or revoked.");

    mock.rotate_refresh_tokens(true);
    let fresh = mock.grant();
    let (_, body) = token(&mock, &form("refresh_token", &fresh)).await;
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, fresh);
    assert_eq!(
        token(&mock, &form("refresh_token", &fresh)).await.0,
        StatusCode::BAD_REQUEST,
        "the old one is retired"
    );
    assert_eq!(token(&mock, &form("refresh_token", &rotated)).await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn another_client_can_be_accepted_instead() {
    let mock = GoogleOAuth::new(clock());
    let refresh = mock.grant();
    mock.accept_client("ours.apps.googleusercontent.com", "s3cret");
    let (status, body) = token(&mock, &form("refresh_token", &refresh)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let ours = format!(
        "grant_type=refresh_token&refresh_token={refresh}&client_id=ours.apps.googleusercontent.com&client_secret=s3cret"
    );
    assert_eq!(token(&mock, &ours).await.0, StatusCode::OK);
}

// ===== the authorization endpoint and the authorization_code grant =====

/// RFC 7636 Appendix B: this verifier's S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:49152/";

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The consent screen's query: our client, the loopback redirect, an S256 challenge, offline.
fn consent_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope={}&state=st-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(REDIRECT),
        enc(
            "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/gmail.modify"
        ),
    )
}

/// The authorization endpoint's answer: status, `Location` (if any) and its query parameters.
async fn authorize(
    mock: &GoogleOAuth,
    query: &str,
) -> (StatusCode, Option<String>, Vec<(String, String)>) {
    let req = Request::get(format!("https://accounts.google.com/o/oauth2/v2/auth?{query}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = mock.authorize().oneshot(req).await.unwrap();
    let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let params = location
        .as_deref()
        .and_then(|l| l.split_once('?'))
        .map(|(_, q)| {
            q.split('&')
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    (res.status(), location, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn exchange(code: &str, verifier: Option<&str>, redirect: &str) -> String {
    let mut form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}",
        enc(code),
        enc(redirect)
    );
    if let Some(v) = verifier {
        form.push_str(&format!("&code_verifier={v}"));
    }
    form
}

async fn code(mock: &GoogleOAuth, extra: &str) -> String {
    let (status, _, params) = authorize(mock, &consent_query(extra)).await;
    assert_eq!(status, StatusCode::FOUND);
    param(&params, "code").unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn consent_redirects_with_a_code_that_gives_a_refresh_token_once() {
    let mock = GoogleOAuth::new(clock());
    let (status, location, params) =
        authorize(&mock, &consent_query("&access_type=offline&prompt=consent")).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(location.unwrap().starts_with("http://127.0.0.1:49152/?"));
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(
        param(&params, "scope"),
        Some(
            "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/gmail.modify"
        )
    );
    let code = param(&params, "code").unwrap().to_owned();
    assert!(code.starts_with("4/"), "{code}");

    let (status, body) = token(&mock, &exchange(&code, Some(VERIFIER), REDIRECT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["scope"].as_str().unwrap().contains("gmail.modify"));
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(mock.holds_refresh_token(refresh));
    let (status, _) = token(&mock, &form("refresh_token", refresh)).await;
    assert_eq!(status, StatusCode::OK, "the refresh token works");

    // Single use.
    let (status, body) = token(&mock, &exchange(&code, Some(VERIFIER), REDIRECT)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(body["error_description"], "Bad Request");
    assert_eq!(mock.log().count(&http::Method::GET, "/o/oauth2/v2/auth"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_verifier_the_redirect_uri_and_the_codes_lifetime_are_checked() {
    let mock = GoogleOAuth::new(clock());
    let wrong = "x".repeat(43);
    let c = code(&mock, "&access_type=offline").await;
    let (status, body) = token(&mock, &exchange(&c, Some(&wrong), REDIRECT)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(body["error_description"], "Invalid code verifier.");
    let (_, body) = token(&mock, &exchange(&c, Some(VERIFIER), REDIRECT)).await;
    assert_eq!(body["error_description"], "Bad Request", "a code is tried once, right or wrong");

    let c = code(&mock, "").await;
    let (_, body) = token(&mock, &exchange(&c, None, REDIRECT)).await;
    assert_eq!(body["error_description"], "Missing code verifier.");
    // The challenge itself is not the verifier.
    let c = code(&mock, "").await;
    let (_, body) = token(&mock, &exchange(&c, Some(CHALLENGE), REDIRECT)).await;
    assert_eq!(body["error_description"], "Invalid code verifier.");

    let c = code(&mock, "").await;
    let (status, body) =
        token(&mock, &exchange(&c, Some(VERIFIER), "http://127.0.0.1:49153/")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("redirect_uri_mismatch"))
    );

    let c = code(&mock, "").await;
    clock().sleep(Duration::from_secs(599)).await;
    let (status, body) = token(&mock, &exchange(&c, Some(VERIFIER), REDIRECT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "no offline access asked for");
    mock.code_lifetime(Duration::from_secs(30));
    let c = code(&mock, "").await;
    clock().sleep(Duration::from_secs(30)).await;
    let (_, body) = token(&mock, &exchange(&c, Some(VERIFIER), REDIRECT)).await;
    assert_eq!(body["error"], "invalid_grant", "expired on the clock");

    // Another client's code.
    let c = code(&mock, "").await;
    mock.accept_client("ours.apps.googleusercontent.com", "s3cret");
    let theirs = exchange(&c, Some(VERIFIER), REDIRECT)
        .replace(CLIENT_ID, "ours.apps.googleusercontent.com")
        .replace(CLIENT_SECRET, "s3cret");
    let (_, body) = token(&mock, &theirs).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_comes_at_the_first_offline_consent_or_when_consent_is_prompted() {
    let mock = GoogleOAuth::new(clock());
    let refresh_of = |extra: &'static str| {
        let mock = mock.clone();
        async move {
            let c = code(&mock, extra).await;
            let (status, body) = token(&mock, &exchange(&c, Some(VERIFIER), REDIRECT)).await;
            assert_eq!(status, StatusCode::OK);
            body.get("refresh_token").is_some()
        }
    };
    assert!(!refresh_of("").await, "online access: none");
    assert!(refresh_of("&access_type=offline").await, "the first offline consent");
    assert!(!refresh_of("&access_type=offline").await, "already consented: none");
    assert!(refresh_of("&access_type=offline&prompt=consent").await, "consent shown again");
    assert!(refresh_of("&access_type=offline&prompt=select_account%20consent").await);

    // Scopes unchecked on the consent screen are not granted.
    mock.decline_scopes(&["https://www.googleapis.com/auth/gmail.modify"]);
    let (_, _, params) = authorize(&mock, &consent_query("")).await;
    assert_eq!(param(&params, "scope"), Some("https://www.googleapis.com/auth/youtube.upload"));
    let c = param(&params, "code").unwrap();
    let (_, body) = token(&mock, &exchange(c, Some(VERIFIER), REDIRECT)).await;
    assert_eq!(body["scope"], "https://www.googleapis.com/auth/youtube.upload");
}

#[tokio::test(start_paused = true)]
async fn refusals_redirect_with_access_denied_and_bad_requests_get_an_error_page() {
    let mock = GoogleOAuth::new(clock());
    mock.deny_consent(true);
    let (status, _, params) = authorize(&mock, &consent_query("")).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "code"), None);
    mock.deny_consent(false);

    let cases = [
        (consent_query("").replace(CLIENT_ID, "nobody"), StatusCode::UNAUTHORIZED),
        (
            consent_query("").replace(&enc(REDIRECT), &enc("https://example.com/cb")),
            StatusCode::BAD_REQUEST,
        ),
        (
            consent_query("").replace(&enc(REDIRECT), &enc("http://127.0.0.1/")),
            StatusCode::BAD_REQUEST,
        ),
        (
            consent_query("").replace("response_type=code", "response_type=token"),
            StatusCode::BAD_REQUEST,
        ),
        (consent_query("").replace("scope=", "scopes="), StatusCode::BAD_REQUEST),
        (consent_query("").replace("method=S256", "method=S512"), StatusCode::BAD_REQUEST),
    ];
    for (query, expected) in cases {
        let (status, location, _) = authorize(&mock, &query).await;
        assert_eq!((status, location), (expected, None), "{query}");
    }
    // [::1] and localhost are loopback too.
    for host in ["http://[::1]:8080/", "http://localhost:8080"] {
        let query = consent_query("").replace(&enc(REDIRECT), &enc(host));
        let (status, location, _) = authorize(&mock, &query).await;
        assert_eq!(status, StatusCode::FOUND, "{host}");
        assert!(location.unwrap().starts_with(host));
    }
}

#[tokio::test(start_paused = true)]
async fn the_authorization_endpoint_takes_faults() {
    use unattended_testkit::fault::{Fault, Route, Trigger};
    let mock = GoogleOAuth::new(clock());
    mock.fault(Route::any("/o/oauth2"), Trigger::Nth(1, 1), Fault::Unavailable);
    let (status, location, _) = authorize(&mock, &consent_query("")).await;
    assert_eq!((status, location), (StatusCode::SERVICE_UNAVAILABLE, None));
    assert_eq!(authorize(&mock, &consent_query("")).await.0, StatusCode::FOUND);
    let log = mock.log().all();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].fault, Some("unavailable"));
    assert_eq!(log[1].status, Some(StatusCode::FOUND));
}
