//! The OAuth token endpoint's answer.

use std::convert::Infallible;
use std::error::Error as _;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Response, StatusCode};
use http_body_util::Full;
use unattended_core::Clock;
use unattended_token::{OAuth2Client, OAuth2Source, TokenSource as _};

use crate::now;

const CLIENT_ID: &str = "fuzz-client.apps.example";
const CLIENT_SECRET: &str = "fuzz-client-secret-0b5e";
const REFRESH_TOKEN: &str = "1//fuzz-refresh-token-77c1";

/// The statuses a token endpoint answers with, picked by the input's first byte.
const STATUSES: [u16; 7] = [200, 400, 401, 403, 429, 500, 503];

/// A token answer (the first byte picks the status, the rest is the body), through the
/// refresh-token grant: the fetch ends at once; a token's expiry is not before now; an error
/// names neither the client secret, the refresh token, nor any token the body holds.
pub fn oauth_answer(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let status =
        StatusCode::from_u16(STATUSES[usize::from(pick) % STATUSES.len()]).expect("a valid status");
    let body = Bytes::copy_from_slice(body);
    let answer = body.clone();
    let endpoint = tower::service_fn(move |_request: http::Request<Full<Bytes>>| {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(answer.clone()))
            .expect("a valid response");
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let client = OAuth2Client::new(CLIENT_ID, CLIENT_SECRET, "https://oauth2.example/token")
        .expect("a valid token URL");
    let source =
        OAuth2Source::refresh_token(client, REFRESH_TOKEN, endpoint, Clock::starting_at(now()));
    let fetched = source.fetch().now_or_never().expect("an answer in memory is read at once");
    match fetched {
        Ok(token) => {
            if let Some(expires_at) = token.expires_at() {
                assert!(expires_at >= now(), "a token that expired before it came");
            }
        }
        Err(e) => {
            let mut said = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                said.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            let said = format!("{said} {e:?}");
            let mut secrets = vec![CLIENT_SECRET.to_owned(), REFRESH_TOKEN.to_owned()];
            secrets.extend(tokens_in(&body));
            for secret in secrets {
                assert!(!said.contains(&secret), "the error shows {secret:?}: {said}");
            }
        }
    }
}

/// The token values a JSON answer holds, long enough that finding one elsewhere is no accident.
fn tokens_in(body: &[u8]) -> Vec<String> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return Vec::new();
    };
    ["access_token", "refresh_token", "id_token"]
        .iter()
        .filter_map(|key| fields.get(*key)?.as_str())
        .filter(|value| value.len() >= 8)
        .map(str::to_owned)
        .collect()
}
