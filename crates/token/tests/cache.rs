//! The token cache under a paused clock, against an in-process fake token endpoint.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use unattended_core::clock::add_saturating;
use unattended_core::{Clock, Disposition, HasDisposition};
use unattended_token::{
    AccessToken, CacheConfig, FetchError, FetchFuture, TokenCache, TokenError, TokenSource,
};

fn clock() -> Clock {
    Clock::starting_at("2026-11-28T10:00:00Z".parse().unwrap())
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    Token {
        lifetime: Duration,
    },
    /// A token that expired this long before it was given.
    Stale {
        ago: Duration,
    },
    Down,
    Revoked,
}

/// A token endpoint: answers from a script (then with one-hour tokens), takes 50 ms, counts calls.
#[derive(Clone)]
struct Endpoint {
    script: Arc<Mutex<VecDeque<Answer>>>,
    fallback: Answer,
    calls: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    clock: Clock,
}

impl Endpoint {
    fn new(script: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            fallback: Answer::Token { lifetime: Duration::from_secs(3600) },
            calls: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            clock: clock(),
        }
    }
    /// Always answers `answer`.
    fn always(answer: Answer) -> Self {
        Self { fallback: answer, ..Self::new([]) }
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    /// The most fetches that were ever in flight at once.
    fn most_in_flight(&self) -> usize {
        self.most_in_flight.load(Ordering::SeqCst)
    }
}

impl TokenSource for Endpoint {
    fn fetch(&self) -> FetchFuture<'_> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = self.script.lock().unwrap().pop_front().unwrap_or(self.fallback);
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        Box::pin(async move {
            self.clock.sleep(Duration::from_millis(50)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match answer {
                Answer::Token { lifetime } => Ok(AccessToken::new(
                    format!("secret-token-{n}"),
                    Some(add_saturating(self.clock.wall(), lifetime)),
                )),
                Answer::Stale { ago } => Ok(AccessToken::new(
                    format!("secret-token-{n}"),
                    Some(unattended_core::clock::sub_saturating(self.clock.wall(), ago)),
                )),
                Answer::Down => Err(FetchError::Unavailable("503 from the token endpoint".into())),
                Answer::Revoked => Err(FetchError::Revoked { reason: "invalid_grant".into() }),
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_hundred_callers_cause_one_refresh() {
    let endpoint = Endpoint::new([]);
    let cache = Arc::new(TokenCache::new(endpoint.clone(), clock()));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let cache = cache.clone();
        callers.spawn(async move { cache.get().await.map(|t| t.secret().to_owned()) });
    }
    while let Some(token) = callers.join_next().await {
        assert_eq!(token.unwrap().unwrap(), "secret-token-1");
    }
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_token_near_its_end_is_replaced_before_use() {
    // One-hour tokens: the skew is min(5 min, 10% of 60 min) = 5 min, less up to a fifth.
    let endpoint = Endpoint::new([]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    assert_eq!(cache.get().await.unwrap().secret(), "secret-token-1");
    clock().sleep(Duration::from_secs(3600 - 310)).await;
    assert_eq!(cache.get().await.unwrap().secret(), "secret-token-1", "5 min 10 s left: kept");
    // 3 min 55 s left, inside the skew: the old token is never handed out again.
    clock().sleep(Duration::from_secs(75)).await;
    assert_eq!(cache.get().await.unwrap().secret(), "secret-token-2");
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_short_lifetime_scales_the_skew_down() {
    // 60 s tokens: a fixed 5 min skew would refresh on every call; 10% of 60 s is 6 s.
    let endpoint = Endpoint::new(vec![Answer::Token { lifetime: Duration::from_secs(60) }; 10]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    for _ in 0..53 {
        cache.get().await.unwrap();
        clock().sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(endpoint.calls(), 1, "no refresh storm");
    clock().sleep(Duration::from_secs(7)).await;
    cache.get().await.unwrap();
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_grant_stops_everything_until_reset() {
    let endpoint = Endpoint::new([Answer::Revoked]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    let err = cache.get().await.unwrap_err();
    assert!(matches!(&err, TokenError::Reauthorize { reason } if reason == "invalid_grant"));
    assert_eq!(err.disposition(), Disposition::Reauthorize);
    assert!(cache.get().await.is_err());
    assert_eq!(endpoint.calls(), 1, "not asked again");
    cache.reset_credentials();
    assert_eq!(cache.get().await.unwrap().secret(), "secret-token-2");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_outage_is_ridden_out_on_the_old_token() {
    let hour = Answer::Token { lifetime: Duration::from_secs(3600) };
    let endpoint = Endpoint::new([hour, Answer::Down, Answer::Down, Answer::Down, Answer::Down]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    cache.get().await.unwrap();
    // Into the refresh window (4–5 min before expiry), with the endpoint down: a call every second
    // for 100 s keeps working on the old token, and refreshes are spaced 30 s apart (4 tries).
    clock().sleep(Duration::from_secs(3600 - 240)).await;
    for _ in 0..100 {
        assert_eq!(cache.get().await.unwrap().secret(), "secret-token-1");
        clock().sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(endpoint.calls(), 5, "spaced refreshes, not one per request");
    // The endpoint is back (the script is spent): the next due refresh succeeds.
    clock().sleep(Duration::from_secs(30)).await;
    assert_ne!(cache.get().await.unwrap().secret(), "secret-token-1");
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_and_a_dead_endpoint_say_when_to_retry() {
    let endpoint = Endpoint::new([Answer::Down, Answer::Down]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    let err = cache.get().await.unwrap_err();
    let TokenError::RefreshFailed { retry_at, source } = &err else { panic!("{err:?}") };
    assert!(source.is_some());
    let expected: Timestamp = "2026-11-28T10:00:30.05Z".parse().unwrap();
    assert_eq!(*retry_at, expected);
    assert_eq!(err.disposition(), Disposition::RetryAt(expected));
    // Within the spacing, the endpoint is left alone.
    assert!(cache.get().await.is_err());
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn invalidating_a_refused_token_fetches_a_new_one() {
    let endpoint = Endpoint::new([]);
    let cache = TokenCache::new(endpoint.clone(), clock());
    let first = cache.get().await.unwrap();
    cache.invalidate(&first);
    let second = cache.get().await.unwrap();
    assert_ne!(first.secret(), second.secret());
    // Invalidating a token that is no longer current changes nothing.
    cache.invalidate(&first);
    assert_eq!(cache.get().await.unwrap().secret(), second.secret());
    assert_eq!(endpoint.calls(), 2);
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let token = AccessToken::new("secret-token-1", None);
    assert!(!format!("{token:?}").contains("secret-token"));
    let err = TokenError::Reauthorize { reason: "invalid_grant".into() };
    assert!(!format!("{err} {err:?}").contains("secret-token"));
}

#[tokio::test(start_paused = true)]
async fn the_retry_spacing_is_configurable() {
    let endpoint = Endpoint::new([Answer::Down, Answer::Down]);
    let config =
        CacheConfig::new().retry_spacing(Duration::from_secs(5)).max_skew(Duration::from_secs(60));
    let cache = TokenCache::with_config(endpoint.clone(), clock(), config);
    assert!(cache.get().await.is_err());
    clock().sleep(Duration::from_secs(4)).await;
    assert!(cache.get().await.is_err());
    assert_eq!(endpoint.calls(), 1);
    clock().sleep(Duration::from_secs(1)).await;
    assert!(cache.get().await.is_err());
    assert_eq!(endpoint.calls(), 2);
}

async fn hundred_callers<S: TokenSource>(cache: &Arc<TokenCache<S>>) -> Vec<String> {
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let cache = cache.clone();
        callers.spawn(async move { cache.get().await.map(|t| t.secret().to_owned()) });
    }
    let mut tokens = Vec::new();
    while let Some(token) = callers.join_next().await {
        tokens.push(token.unwrap().unwrap());
    }
    tokens
}

/// `expires_in: 0`: the token is due when it arrives. The callers waiting for it use it, the
/// next fetch comes one retry spacing later, and a hundred callers never cause more than one.
#[tokio::test(start_paused = true)]
async fn a_token_due_on_arrival_is_used_and_the_next_fetch_is_spaced() {
    for due in [
        Answer::Token { lifetime: Duration::ZERO },
        Answer::Stale { ago: Duration::from_secs(600) },
    ] {
        let endpoint = Endpoint::always(due);
        let cache = Arc::new(TokenCache::new(endpoint.clone(), clock()));
        let tokens = hundred_callers(&cache).await;
        assert!(tokens.iter().all(|t| t == "secret-token-1"), "{due:?}: {tokens:?}");
        assert_eq!(endpoint.calls(), 1, "{due:?}: one fetch for a hundred callers");
        // Within the retry spacing (30 s) the token is used as it is.
        for _ in 0..29 {
            clock().sleep(Duration::from_secs(1)).await;
            assert_eq!(cache.get().await.unwrap().secret(), "secret-token-1");
        }
        assert_eq!(endpoint.calls(), 1, "{due:?}: not one fetch per call");
        // Then one more fetch, single-flight again.
        clock().sleep(Duration::from_secs(1)).await;
        let tokens = hundred_callers(&cache).await;
        assert!(tokens.iter().all(|t| t == "secret-token-2"), "{due:?}: {tokens:?}");
        assert_eq!(endpoint.calls(), 2, "{due:?}");
        assert_eq!(endpoint.most_in_flight(), 1, "{due:?}");
    }
}

/// Even with no retry spacing, the callers that waited for a fetch take its token rather than
/// fetching one after another.
#[tokio::test(start_paused = true)]
async fn callers_waiting_for_a_fetch_take_its_token_whatever_its_expiry() {
    let endpoint = Endpoint::always(Answer::Token { lifetime: Duration::ZERO });
    let config = CacheConfig::new().retry_spacing(Duration::ZERO);
    let cache = Arc::new(TokenCache::with_config(endpoint.clone(), clock(), config));
    let tokens = hundred_callers(&cache).await;
    assert!(tokens.iter().all(|t| t == "secret-token-1"), "{tokens:?}");
    assert_eq!((endpoint.calls(), endpoint.most_in_flight()), (1, 1));
}

/// A server refusing a token that was due on arrival does not make the cache ask again before
/// the retry spacing.
#[tokio::test(start_paused = true)]
async fn a_refused_due_token_is_not_replaced_before_the_spacing() {
    let endpoint = Endpoint::always(Answer::Token { lifetime: Duration::ZERO });
    let cache = TokenCache::new(endpoint.clone(), clock());
    let token = cache.get().await.unwrap();
    cache.invalidate(&token);
    let err = cache.get().await.unwrap_err();
    assert!(matches!(err, TokenError::RefreshFailed { .. }), "{err:?}");
    assert_eq!(endpoint.calls(), 1);
    clock().sleep(Duration::from_secs(30)).await;
    assert_eq!(cache.get().await.unwrap().secret(), "secret-token-2");
}

/// The random part of the skew comes from the config's seed: the same seed refreshes at the same
/// instant, another seed at another.
#[tokio::test(start_paused = true)]
async fn a_seed_fixes_the_refresh_instant() {
    async fn refreshed_after(seed: u64) -> Duration {
        // 100 s tokens: refreshed 8 to 10 s before they expire.
        let endpoint = Endpoint::always(Answer::Token { lifetime: Duration::from_secs(100) });
        let config = CacheConfig::new().seed(Some(seed));
        let cache = Arc::new(TokenCache::with_config(endpoint.clone(), clock(), config));
        cache.get().await.unwrap();
        let start = clock().now();
        let _refresher = cache.spawn_refresher();
        clock().sleep(Duration::from_secs(89)).await;
        while endpoint.calls() < 2 {
            clock().sleep(Duration::from_millis(1)).await;
        }
        clock().now() - start
    }
    let first = refreshed_after(1).await;
    assert!((Duration::from_secs(90)..=Duration::from_secs(92)).contains(&first), "{first:?}");
    assert_eq!(refreshed_after(1).await, first);
    assert_ne!(refreshed_after(2).await, first);
}
