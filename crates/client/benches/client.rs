//! What the layers cost per call, and the client's loopback throughput next to bare hyper-util.
//!
//! `cargo bench -p unattended-client`.
//! - `stack/*`: the five layers (gate, retry with budget, rate limit, breaker, token) composed
//!   with `ServiceBuilder` around a no-op transport, polled by hand: valid token, open gate,
//!   closed breaker; `stack/alone: *` each layer by itself, to see where the cost goes.
//!   `client/*` adds what the `Client` adds (tracing, redirects, decompression, `User-Agent`,
//!   attempt timeout, the per-thread stack).
//! - `overhead/*`: the bare service, the five layers and the client, measured in turn within
//!   every iteration (batches of 64 calls), so that a change in the machine's load between
//!   measurement windows weighs on all three alike; what the layers and the client add per call
//!   is printed at the end.
//! - `reqwest/*`: one GET through a `reqwest-middleware` client whose last middleware answers
//!   at once (no socket), alone, behind reqwest-retry, and behind our middleware (default
//!   config, then with a bearer token), in turn within every iteration as above; what each
//!   middleware adds per call, and that as a ratio of what reqwest-retry adds, is printed.
//! - `loopback/*`: rounds of 32 concurrent GETs against a local hyper server, each body parsed
//!   as JSON, for the client, a bare hyper-util client on the same transport settings, and
//!   reqwest with reqwest-retry or with our middleware. Rounds of all four alternate within each
//!   measurement, and the ratios to bare hyper-util over every round are printed at the end.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{ServiceBuilder, service_fn};
use unattended_breaker::CircuitBreakerLayer;
use unattended_client::{Client, ServiceConfig};
use unattended_core::Clock;
use unattended_gate::{GateLayer, WhenClosed, WindowCalendar};
use unattended_ratelimit::RateLimitLayer;
use unattended_retry::RetryLayer;
use unattended_testkit::drive::call_once;
use unattended_token::{StaticToken, TokenCache, TokenLayer};

fn ok(_: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    ready(Ok(Response::new(Full::default())))
}

fn request() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1/items")
        .header("accept", "application/json")
        .body(Full::default())
        .unwrap()
}

fn bare_get() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1/items").body(Full::default()).unwrap()
}

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("stack");
    let mut bare = service_fn(ok);
    group.bench_function("bare service_fn", |b| {
        b.iter_batched(request, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    group.bench_function("bare service_fn, GET without headers", |b| {
        b.iter_batched(bare_get, |req| call_once(&mut bare, req), BatchSize::SmallInput)
    });
    let clock = Clock::system();
    let always = WindowCalendar::always();
    let cache = Arc::new(TokenCache::new(StaticToken::new("token"), clock));
    let mut five = ServiceBuilder::new()
        .layer(GateLayer::new().class("write", always.clone(), WhenClosed::Reject).clock(clock))
        .layer(
            RetryLayer::new(unattended_retry::RetryConfig::standard().attempt_timeout(None))
                .unwrap()
                .clock(clock),
        )
        .layer(RateLimitLayer::new().clock(clock))
        .layer(CircuitBreakerLayer::standard().clock(clock))
        .layer(TokenLayer::new(cache.clone()).replay_refused(false))
        .service(service_fn(ok));
    group.bench_function("five layers", |b| {
        b.iter_batched(request, |req| call_once(&mut five, req), BatchSize::SmallInput)
    });
    // What `Client::get_json` hands the layers: no header yet (the User-Agent is set inside).
    group.bench_function("five layers, GET without headers", |b| {
        b.iter_batched(bare_get, |req| call_once(&mut five, req), BatchSize::SmallInput)
    });
    // Each layer alone, to see where the five layers' cost goes.
    macro_rules! alone {
        ($name:literal, $layer:expr) => {{
            let mut svc = ServiceBuilder::new().layer($layer).service(service_fn(ok));
            group.bench_function(concat!("alone: ", $name), |b| {
                b.iter_batched(request, |req| call_once(&mut svc, req), BatchSize::SmallInput)
            });
        }};
    }
    alone!("gate", GateLayer::new().class("write", always, WhenClosed::Reject).clock(clock));
    alone!(
        "retry",
        RetryLayer::new(unattended_retry::RetryConfig::standard().attempt_timeout(None))
            .unwrap()
            .clock(clock)
    );
    alone!("ratelimit", RateLimitLayer::new().clock(clock));
    alone!("breaker", CircuitBreakerLayer::standard().clock(clock));
    alone!("token", TokenLayer::new(cache).replay_refused(false));
    group.bench_function("copy_request", |b| {
        b.iter_batched_ref(request, |req| unattended_core::copy_request(req), BatchSize::SmallInput)
    });
    group.finish();

    // The whole client (tracing, redirects, decompression, User-Agent, attempt timeout, the
    // boxed stack cloned per call) around the same no-op transport.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();
    let config = ServiceConfig::from_toml("base_url = \"https://api.example.com\"").unwrap();
    let client = Client::builder(config).build_with(service_fn(ok)).unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut group = c.benchmark_group("client");
    group.bench_function("send, no-op transport", |b| {
        b.iter_batched(
            request,
            |req| match std::pin::pin!(client.send(req)).as_mut().poll(&mut cx) {
                std::task::Poll::Ready(Ok(res)) => res,
                _ => panic!("the no-op path completes at the first poll"),
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The bare service, the five layers and the client in turn within every iteration: what the
    // layers and the client add per call, however the machine's load moves.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let timed = |n: u32, mut call: Box<dyn FnMut(Request<Full<Bytes>>) + '_>| {
        let reqs: Vec<_> = (0..n).map(|_| request()).collect();
        let clock = Clock::system();
        let start = clock.now();
        reqs.into_iter().for_each(&mut call);
        clock.now() - start
    };
    let contenders: Vec<(&str, Batch<'_>)> = vec![
        (
            "bare service_fn",
            Box::new(|n| {
                timed(n, Box::new(|req| drop(std::hint::black_box(call_once(&mut bare, req)))))
            }),
        ),
        (
            "five layers",
            Box::new(|n| {
                timed(n, Box::new(|req| drop(std::hint::black_box(call_once(&mut five, req)))))
            }),
        ),
        (
            "client, no-op transport",
            Box::new(|n| {
                timed(
                    n,
                    Box::new(|req| match std::pin::pin!(client.send(req)).as_mut().poll(&mut cx) {
                        std::task::Poll::Ready(Ok(res)) => drop(std::hint::black_box(res)),
                        _ => panic!("the no-op path completes at the first poll"),
                    }),
                )
            }),
        ),
    ];
    interleaved(c, "overhead", contenders, "");
}

/// Answers every request at once: the end of a middleware chain without a socket.
struct Answer;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Answer {
    async fn handle(
        &self,
        _: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Ok(reqwest::Response::from(Response::new("")))
    }
}

fn adapter(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.enter();
    let chain = |first: Option<Arc<dyn reqwest_middleware::Middleware>>| {
        let mut builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
        if let Some(first) = first {
            builder = builder.with_arc(first);
        }
        builder.with(Answer).build()
    };
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(3);
    let ours =
        |builder: unattended_client::ClientBuilder| -> Arc<dyn reqwest_middleware::Middleware> {
            Arc::new(builder.build_middleware().unwrap())
        };
    let config = ServiceConfig::default;
    let contenders = [
        ("alone", chain(None)),
        (
            "reqwest-retry",
            chain(Some(Arc::new(reqwest_retry::RetryTransientMiddleware::new_with_policy(policy)))),
        ),
        ("unattended middleware", chain(Some(ours(Client::builder(config()))))),
        (
            "unattended middleware, bearer token",
            chain(Some(ours(
                Client::builder(config())
                    .token_source(StaticToken::new("token"), unattended_token::Placement::Bearer),
            ))),
        ),
    ];
    let calls: Vec<(&str, Batch<'_>)> = contenders
        .iter()
        .map(|(name, client)| {
            let batch: Batch<'_> = Box::new(move |n| {
                let reqs: Vec<_> = (0..n)
                    .map(|_| client.get("https://api.example.com/v1/items").build().unwrap())
                    .collect();
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let clock = Clock::system();
                let start = clock.now();
                for req in reqs {
                    match std::pin::pin!(client.execute(req)).as_mut().poll(&mut cx) {
                        std::task::Poll::Ready(Ok(res)) => drop(std::hint::black_box(res)),
                        _ => panic!("the no-op path completes at the first poll"),
                    }
                }
                clock.now() - start
            });
            (*name, batch)
        })
        .collect();
    interleaved(c, "reqwest", calls, "reqwest-retry");
}

/// Times a batch of `n` calls (their requests made beforehand).
type Batch<'a> = Box<dyn FnMut(u32) -> Duration + 'a>;

/// Calls per batch: enough that reading the clock twice is lost in them.
const BATCH: u32 = 64;

/// Measures the contenders in turn within every iteration, so a machine whose load changes
/// between measurement windows (a shared two-core runner) weighs on all of them alike; then
/// prints what each adds per call over the first, over every batch of every window, and that as
/// a ratio of what `reference` adds.
fn interleaved(
    c: &mut Criterion,
    group: &str,
    mut contenders: Vec<(&str, Batch<'_>)>,
    reference: &str,
) {
    let names: Vec<&str> = contenders.iter().map(|(name, _)| *name).collect();
    let totals = std::cell::RefCell::new(vec![Duration::ZERO; names.len()]);
    let calls = std::cell::Cell::new(0u64);
    let contenders = std::cell::RefCell::new(&mut contenders);
    let mut g = c.benchmark_group(group);
    for (me, name) in names.iter().enumerate() {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut contenders = contenders.borrow_mut();
                let mut totals = totals.borrow_mut();
                let mut mine = Duration::ZERO;
                for _ in 0..iters {
                    for (who, (_, batch)) in contenders.iter_mut().enumerate() {
                        let took = batch(BATCH);
                        totals[who] += took;
                        if who == me {
                            mine += took;
                        }
                    }
                }
                calls.set(calls.get() + iters * u64::from(BATCH));
                mine / BATCH
            })
        });
    }
    g.finish();
    let (totals, calls) = (totals.into_inner(), calls.get().max(1) as f64);
    let per_call = |i: usize| totals[i].as_secs_f64() * 1e9 / calls;
    let added = |i: usize| per_call(i) - per_call(0);
    let reference = names.iter().position(|n| *n == reference).unwrap_or(0);
    println!("{group}: per call over every batch of every window, and added over {:?}:", names[0]);
    for (i, name) in names.iter().enumerate() {
        let ratio = match reference {
            0 => String::new(),
            r => format!("  ({:.2}x {:?})", added(i) / added(r), names[r]),
        };
        println!("  {name:<40} {:>8.0} ns  +{:>6.0} ns{ratio}", per_call(i), added(i));
    }
}

fn loopback(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"{\"ok\":true}",
                        ))))
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(conn), svc).await;
                });
            }
        });
        addr
    });
    let url: Arc<str> = format!("http://{addr}/v1/items").into();

    // The transport settings the client uses (TCP_NODELAY, as reqwest too), without the layers.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let bare: HyperClient<_, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(3);
    let retrying = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(policy))
        .build();
    let ours = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            unattended_client::ResilienceMiddleware::from_config(&ServiceConfig::default())
                .unwrap(),
        )
        .build();
    let text = format!("base_url = \"http://{addr}\"");
    let client = rt.block_on(async {
        Client::builder(ServiceConfig::from_toml(&text).unwrap()).build().unwrap()
    });

    // One round: CONCURRENCY GETs at once, each body read and parsed as JSON.
    let contenders: Vec<(&str, Round)> = vec![
        ("bare hyper-util", {
            let url = url.clone();
            Box::new(move || {
                let (bare, url) = (bare.clone(), url.clone());
                Box::pin(concurrently(move || {
                    let bare = bare.clone();
                    let req = Request::get(&*url).body(Full::default()).unwrap();
                    async move {
                        let res = bare.request(req).await.unwrap();
                        let body = res.into_body().collect().await.unwrap().to_bytes();
                        let _: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    }
                }))
            })
        }),
        ("reqwest + reqwest-retry", reqwest_round(retrying, url.clone())),
        ("reqwest + unattended middleware", reqwest_round(ours, url)),
        ("unattended client", {
            Box::new(move || {
                let client = client.clone();
                Box::pin(concurrently(move || {
                    let client = client.clone();
                    async move {
                        let _: serde_json::Value = client.get_json("/v1/items").await.unwrap();
                    }
                }))
            })
        }),
    ];

    // Each measurement runs a round of every contender in turn and reports its own, so all of
    // them see the same machine: a loopback run shares two cores with the server, and on this
    // kind of machine a contender's figure moves by up to 1.7 times between measurement windows.
    // The ratios printed at the end come from the sum of every round of every window, which
    // those swings affect alike.
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(CONCURRENCY));
    group.measurement_time(Duration::from_secs(5));
    let clock = Clock::system();
    let warm_up = std::sync::Once::new();
    let totals = std::cell::RefCell::new(vec![Duration::ZERO; contenders.len()]);
    for (me, (name, _)) in contenders.iter().enumerate() {
        group.bench_function(format!("{name}, {CONCURRENCY} concurrent"), |b| {
            // Every pool connected and every code path warm before the first measurement.
            warm_up.call_once(|| {
                for _ in 0..500 {
                    for (_, round) in &contenders {
                        rt.block_on(round());
                    }
                }
            });
            b.iter_custom(|iters| {
                let mut totals = totals.borrow_mut();
                let mut mine = Duration::ZERO;
                for _ in 0..iters {
                    for (who, (_, round)) in contenders.iter().enumerate() {
                        let start = clock.now();
                        rt.block_on(round());
                        let took = clock.now() - start;
                        totals[who] += took;
                        if who == me {
                            mine += took;
                        }
                    }
                }
                mine
            })
        });
    }
    group.finish();
    let totals = totals.into_inner();
    if totals[0] > Duration::ZERO {
        println!("loopback throughput over every round, as a ratio to bare hyper-util:");
        for ((name, _), total) in contenders.iter().zip(&totals) {
            println!("  {name:<34} {:.3}", totals[0].as_secs_f64() / total.as_secs_f64());
        }
    }
}

const CONCURRENCY: u64 = 32;

/// Makes the future of one round of a contender.
type Round = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Runs `CONCURRENCY` calls made by `call` at once, each in its own task.
async fn concurrently<F, Fut>(call: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let calls: Vec<_> = (0..CONCURRENCY).map(|_| tokio::spawn(call())).collect();
    for call in calls {
        call.await.unwrap();
    }
}

/// A round of GETs of `url` through a reqwest-middleware client, their JSON read.
fn reqwest_round(client: reqwest_middleware::ClientWithMiddleware, url: Arc<str>) -> Round {
    Box::new(move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(concurrently(move || {
            let request = client.get(&*url);
            async move {
                let _: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            }
        }))
    })
}

criterion_group!(benches, per_call, adapter, loopback);
criterion_main!(benches);
