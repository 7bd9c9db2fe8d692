use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::{HeaderMap, Response, StatusCode};
use jiff::Timestamp;

use tower_http::classify::{ClassifiedResponse, ClassifyResponse, MakeClassifier};

use super::*;
use crate::{BreakerOpen, CredentialRenewed, HasDisposition, HostPaused, TokenError};

fn now() -> Timestamp {
    "2026-11-28T10:00:00Z".parse().unwrap()
}

fn class_of(status: u16, headers: &[(&'static str, &'static str)]) -> Result<(), FailureClass> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, v.parse().unwrap());
    }
    HttpClassifier::new().classify_status(StatusCode::from_u16(status).unwrap(), &map, now())
}

fn transient(status: u16) -> Result<(), FailureClass> {
    Err(FailureClass::Transient(TransientCause::Status(StatusCode::from_u16(status).unwrap())))
}

#[test]
fn default_status_table() {
    for ok in [100, 200, 201, 204, 301, 304, 399] {
        assert_eq!(class_of(ok, &[]), Ok(()), "{ok}");
    }
    for t in [408, 425, 429, 500, 502, 503, 504, 520, 524] {
        assert_eq!(class_of(t, &[]), transient(t), "{t}");
    }
    assert_eq!(class_of(401, &[]), Err(FailureClass::AuthExpired));
    for p in [400, 403, 404, 409, 410, 422, 501, 505, 599] {
        assert_eq!(
            class_of(p, &[]),
            Err(FailureClass::Permanent(StatusCode::from_u16(p).ok())),
            "{p}"
        );
    }
}

#[test]
fn pushback_makes_429_and_503_rate_limited() {
    let until: Timestamp = "2026-11-28T10:00:30Z".parse().unwrap();
    for status in [429, 503] {
        assert_eq!(
            class_of(status, &[("retry-after", "30")]),
            Err(FailureClass::RateLimited { until, status: StatusCode::from_u16(status).ok() })
        );
    }
    // A Retry-After on a 500 is not pushback by these rules.
    assert_eq!(class_of(500, &[("retry-after", "30")]), transient(500));
    // Malformed pushback falls back to a plain transient failure.
    assert_eq!(class_of(429, &[("retry-after", "later")]), transient(429));
}

#[derive(Debug)]
struct Wrapper(Box<dyn StdError + Send + Sync>);
impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client error")
    }
}
impl StdError for Wrapper {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

#[test]
fn errors_are_classed_through_their_source_chain() {
    let cases: Vec<(Box<dyn StdError + Send + Sync>, TransientCause)> = vec![
        (Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)), TransientCause::Connect),
        (Box::new(io::Error::from(io::ErrorKind::ConnectionReset)), TransientCause::Reset),
        (Box::new(io::Error::from(io::ErrorKind::BrokenPipe)), TransientCause::Reset),
        (Box::new(io::Error::from(io::ErrorKind::TimedOut)), TransientCause::Timeout),
        (Box::new(tower::timeout::error::Elapsed::new()), TransientCause::Timeout),
        (
            Box::new(Wrapper(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)))),
            TransientCause::Reset,
        ),
        (
            Box::new(Wrapper(Box::new(io::Error::other(Wrapper(Box::new(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            ))))))),
            TransientCause::Connect,
        ),
        (Box::new(io::Error::other("weird")), TransientCause::Other),
        (Box::from("something odd"), TransientCause::Other),
    ];
    for (err, expected) in cases {
        assert_eq!(classify_error_chain(&*err), FailureClass::Transient(expected), "{err}");
    }
}

#[test]
fn class_predicates() {
    let connect = FailureClass::Transient(TransientCause::Connect);
    assert!(connect.is_retryable() && connect.nothing_sent());
    let reset = FailureClass::Transient(TransientCause::Reset);
    assert!(reset.is_retryable() && !reset.nothing_sent());
    assert!(connect.not_processed() && !reset.not_processed());
    let until = now();
    let throttled =
        FailureClass::RateLimited { until, status: Some(StatusCode::TOO_MANY_REQUESTS) };
    assert!(throttled.not_processed(), "a 429 was refused before any work");
    let busy = FailureClass::RateLimited { until, status: Some(StatusCode::SERVICE_UNAVAILABLE) };
    assert!(!busy.not_processed(), "a 503 may come after some work");
    assert!(FailureClass::RateLimited { until, status: None }.not_processed(), "a paused host");
    assert!(FailureClass::Unavailable { until }.not_processed(), "an open breaker");
    assert!(!FailureClass::AuthExpired.is_retryable());
    assert!(!FailureClass::Permanent(None).is_retryable());
    let limited =
        FailureClass::RateLimited { until: now(), status: Some(StatusCode::TOO_MANY_REQUESTS) };
    assert!(limited.is_retryable());
    assert_eq!(limited.not_before(), Some(now()));
    assert_eq!(limited.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(limited.to_string(), "rate limited (HTTP 429) until 2026-11-28T10:00:00Z");
    assert_eq!(reset.to_string(), "transient failure (connection reset)");
}

#[tokio::test(start_paused = true)]
async fn tower_http_face_reads_the_same_answer() {
    let clock = Clock::starting_at(now());
    let make = ClockedClassifier::new(clock);
    let req = http::Request::new(());
    let res = Response::builder().status(429).header("retry-after", "10").body(()).unwrap();
    match make.make_classifier(&req).classify_response(&res) {
        ClassifiedResponse::Ready(class) => assert_eq!(
            class,
            Err(FailureClass::RateLimited {
                until: "2026-11-28T10:00:10Z".parse().unwrap(),
                status: Some(StatusCode::TOO_MANY_REQUESTS),
            })
        ),
        ClassifiedResponse::RequiresEos(_) => panic!("never needs the end of stream"),
    }
    let boxed: Box<dyn StdError + Send + Sync> =
        Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
    assert_eq!(make.classify_error(&boxed), FailureClass::Transient(TransientCause::Reset));
    let elapsed = tower::timeout::error::Elapsed::new();
    assert_eq!(make.classify_error(&elapsed), FailureClass::Transient(TransientCause::Timeout));
    assert_eq!(make.classify_error(&"opaque"), FailureClass::Transient(TransientCause::Other));
}

/// A retry decision built from nothing but the tower-http classifier: the classes are enough to
/// drive a `tower::retry::Policy`.
mod usable_for_retries {
    use std::future::{Ready, ready};

    use tower::retry::Policy;
    use tower::{ServiceExt, service_fn};

    use super::*;

    #[derive(Clone)]
    struct RetryTransient {
        classifier: ClockedClassifier,
        left: usize,
    }

    impl Policy<u16, Response<()>, BoxError> for RetryTransient {
        type Future = Ready<()>;

        fn retry(
            &mut self,
            _: &mut u16,
            result: &mut Result<Response<()>, BoxError>,
        ) -> Option<Ready<()>> {
            let class = match result {
                Ok(res) => match self.classifier.classify_response(res) {
                    ClassifiedResponse::Ready(class) => class,
                    ClassifiedResponse::RequiresEos(_) => Ok(()),
                },
                Err(err) => Err(self.classifier.classify_error(err)),
            };
            match class {
                Err(class) if class.is_retryable() && self.left > 0 => {
                    self.left -= 1;
                    Some(ready(()))
                }
                _ => None,
            }
        }

        fn clone_request(&mut self, req: &u16) -> Option<u16> {
            Some(*req)
        }
    }

    use crate::BoxError;

    #[tokio::test(start_paused = true)]
    async fn a_policy_built_on_the_classifier_retries_what_it_should() {
        let clock = Clock::starting_at(now());
        let script = std::sync::Arc::new(std::sync::Mutex::new(vec![200u16, 503, 502]));
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let svc = {
            let (script, calls) = (script.clone(), calls.clone());
            service_fn(move |_: u16| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let status = script.lock().unwrap().pop().unwrap_or(200);
                async move { Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap()) }
            })
        };
        let policy = RetryTransient { classifier: ClockedClassifier::new(clock), left: 5 };
        let res = tower::retry::Retry::new(policy, svc).oneshot(0).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);

        // A permanent failure is not retried.
        *script.lock().unwrap() = vec![200, 404];
        let policy = RetryTransient { classifier: ClockedClassifier::new(clock), left: 5 };
        let res = tower::retry::Retry::new(
            policy,
            service_fn({
                let script = script.clone();
                move |_: u16| {
                    let status = script.lock().unwrap().pop().unwrap_or(200);
                    async move {
                        Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap())
                    }
                }
            }),
        )
        .oneshot(0)
        .await
        .unwrap();
        assert_eq!(res.status(), 404);
    }
}

#[test]
fn a_paused_host_is_rate_limited_until_the_pause_ends() {
    let err: Box<dyn StdError + Send + Sync> =
        Box::new(Wrapper(Box::new(HostPaused::new("https://a.example:443".into(), now()))));
    assert_eq!(
        classify_error_chain(&*err),
        FailureClass::RateLimited { until: now(), status: None }
    );
    let paused = HostPaused::new("https://a.example:443".into(), now());
    assert_eq!(crate::HasDisposition::disposition(&paused), crate::Disposition::RetryAt(now()));
    assert_eq!(
        paused.to_string(),
        "requests to https://a.example:443 are paused until 2026-11-28T10:00:00Z because the \
         server asked for fewer requests; retry after 2026-11-28T10:00:00Z"
    );
}

#[test]
fn an_open_breaker_is_unavailable_and_not_retryable() {
    let open = BreakerOpen::new("https://a.example:443".into(), now());
    let err: Box<dyn StdError + Send + Sync> = Box::new(Wrapper(Box::new(open.clone())));
    let class = classify_error_chain(&*err);
    assert_eq!(class, FailureClass::Unavailable { until: now() });
    assert!(!class.is_retryable());
    assert_eq!(class.not_before(), Some(now()));
    assert_eq!(
        crate::HasDisposition::disposition(&open),
        crate::Disposition::Skip("https://a.example:443".into())
    );
    assert_eq!(
        open.to_string(),
        "circuit open for https://a.example:443 after repeated failures; retry after 2026-11-28T10:00:00Z"
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_is_renewed_only_when_the_token_layer_says_so() {
    let clock = Clock::starting_at(now());
    let classifier = HttpClassifier::new();
    let refused = Response::builder().status(401).body(()).unwrap();
    assert_eq!(classifier.classify_response(&refused, &clock), Err(FailureClass::AuthExpired));
    let mut renewed = Response::builder().status(401).body(()).unwrap();
    renewed.extensions_mut().insert(CredentialRenewed);
    let class = classifier.classify_response(&renewed, &clock).unwrap_err();
    assert_eq!(class, FailureClass::CredentialRenewed);
    assert!(!class.is_retryable(), "the retry layer replays it by its own rule, once");
    assert_eq!(class.status(), Some(StatusCode::UNAUTHORIZED));
    // The mark means nothing on another status.
    let mut ok = Response::builder().status(200).body(()).unwrap();
    ok.extensions_mut().insert(CredentialRenewed);
    assert_eq!(classifier.classify_response(&ok, &clock), Ok(()));
    // The same rule from the parts of a response of another type.
    let parts = |res: &Response<()>| {
        classifier.classify_parts(res.status(), res.headers(), res.extensions(), &clock)
    };
    assert_eq!(parts(&renewed), Err(FailureClass::CredentialRenewed));
    assert_eq!(parts(&refused), Err(FailureClass::AuthExpired));
    let throttled = Response::builder().status(429).header("retry-after", "30").body(()).unwrap();
    assert_eq!(parts(&throttled), classifier.classify_response(&throttled, &clock));
    assert_eq!(
        parts(&throttled).unwrap_err().not_before(),
        Some("2026-11-28T10:00:30Z".parse().unwrap())
    );
}

#[test]
fn token_errors_are_classed_for_what_they_mean() {
    let revoked = TokenError::Reauthorize { reason: "invalid_grant".into() };
    assert_eq!(classify_error_chain(&Wrapper(Box::new(revoked))), FailureClass::AuthExpired);
    let retry_at: Timestamp = "2026-11-28T10:00:30Z".parse().unwrap();
    let down = TokenError::RefreshFailed { retry_at, source: None };
    assert_eq!(classify_error_chain(&down), FailureClass::Unavailable { until: retry_at });
    assert_eq!(down.disposition(), crate::Disposition::RetryAt(retry_at));
    let streaming = TokenError::NotReplayed { retry_at };
    assert_eq!(classify_error_chain(&streaming), FailureClass::CredentialRenewed);
    assert_eq!(
        TokenError::Reauthorize { reason: "x".into() }.disposition(),
        crate::Disposition::Reauthorize
    );
}
