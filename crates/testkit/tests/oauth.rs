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
