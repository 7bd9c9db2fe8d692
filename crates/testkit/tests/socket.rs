//! The scripted socket server: a hang holds the connection open without a byte, a reset resets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use unattended_core::Clock;
use unattended_testkit::socket::{Reply, ScriptedServer};

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_hang_holds_the_connection_open_without_an_answer() {
    let server = ScriptedServer::start(vec![Reply::Hang], Reply::ok("ok")).await.unwrap();
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(GET).await.unwrap();
    let mut buf = [0u8; 64];
    let read = Clock::system().timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(read.is_err(), "no byte and no close within 300 ms: {read:?}");
}

#[tokio::test]
async fn a_reset_resets_and_the_script_then_answers() {
    let server = ScriptedServer::start(vec![Reply::Reset], Reply::ok("ok")).await.unwrap();
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(GET).await.unwrap();
    let mut buf = [0u8; 64];
    let err = conn.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);

    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(GET).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
    assert_eq!(server.connections(), 2);
}
