//! Over real sockets on 127.0.0.1, in real time: Gmail, Google's token endpoint and a webhook
//! receiver served by the testkit, the runner on its default HTTP transport.

mod support;

use support::World;
use unattended_core::Clock;
use unattended_runner::Runner;
use unattended_store::RunOutcome;
use unattended_testkit::serve::{Served, serve};

struct Sockets {
    _gmail: Served,
    _token: Served,
    hooks: Option<Served>,
    text: String,
}

async fn sockets(w: &World) -> Sockets {
    let gmail = serve(w.gmail.clone()).await.unwrap();
    let token = serve(w.oauth.token_endpoint()).await.unwrap();
    let hooks = serve(w.hooks.clone()).await.unwrap();
    let text = format!(
        r#"
[services.gmail]
base_url = "{gmail}"
[services.gmail.oauth]
token_url = "{token}/token"
client_id_env = "{id}"
client_secret_env = "{secret}"

[tasks.mail]
engine = "email"
every = "5m"
tz = "UTC"

[[tasks.mail.rules]]
name = "all"
add_labels = ["STARRED"]
webhook = "{hooks}/mail"
jsonl = "mail.jsonl"
"#,
        gmail = gmail.url(),
        token = token.url(),
        hooks = hooks.url(),
        id = support::CLIENT_ID_ENV,
        secret = support::CLIENT_SECRET_ENV,
    );
    Sockets { _gmail: gmail, _token: token, hooks: Some(hooks), text }
}

async fn runner(w: &World, text: &str) -> Runner {
    Runner::builder(w.config(text))
        .clock(w.clock)
        .seed(3)
        .store(w.store().await)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn new_mail_is_labelled_posted_and_written_once_over_sockets() {
    let w = World::with_clock(Clock::system(), 41);
    let s = sockets(&w).await;
    let mut runner = runner(&w, &s.text).await;
    assert_eq!(World::once(&mut runner).await.end.outcome, RunOutcome::Succeeded);
    let new: Vec<String> =
        (0..3).map(|n| w.gmail.deliver("a@example.com", &n.to_string())).collect();
    let end = World::once(&mut runner).await.end;
    assert_eq!(end.outcome, RunOutcome::Succeeded, "{end:?}");
    World::once(&mut runner).await;
    assert!(new.iter().all(|id| w.modified(id) == 1));
    assert_eq!(support::ids(&w.hooks.arrived()), new);
    assert_eq!(w.jsonl_lines("mail.jsonl").len(), 3);
    assert_eq!(w.oauth.token_calls().len(), 1, "one token for every call");
}

#[tokio::test]
async fn a_webhook_whose_port_is_closed_is_delivered_once_it_listens_again() {
    let w = World::with_clock(Clock::system(), 42);
    let mut s = sockets(&w).await;
    let mut runner = runner(&w, &s.text).await;
    World::once(&mut runner).await;
    let id = w.gmail.deliver("a@example.com", "x");
    let port = s.hooks.as_ref().unwrap().addr();
    s.hooks = None; // the receiver is gone: connections are refused
    let first = World::once(&mut runner).await.end;
    assert_eq!(first.outcome, RunOutcome::Degraded, "{first:?}");
    assert!(w.hooks.arrived().is_empty());

    // It comes back on the same port.
    let listener = tokio::net::TcpListener::bind(port).await.unwrap();
    let hooks = w.hooks.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(hooks.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    let mut delivered = false;
    for _ in 0..20 {
        // The breaker may hold the host a few seconds after the refusals.
        World::once(&mut runner).await;
        if !w.hooks.accepted().is_empty() {
            delivered = true;
            break;
        }
        w.clock.sleep(std::time::Duration::from_millis(500)).await;
    }
    server.abort();
    assert!(delivered, "delivered once the receiver listened");
    assert_eq!(w.hooks.accepted(), [format!("mail/{id}/all/webhook")]);
    assert_eq!(w.modified(&id), 1);
}
