//! A raw HTTP/1.1 server on 127.0.0.1 answering each connection from a script: statuses with
//! headers, a hang, a TCP reset. For real-time socket tests and examples where wiremock cannot
//! misbehave enough.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Answer this status with these headers and body, then close.
    Answer {
        /// The status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
    /// Read the request and never answer (the connection stays open).
    Hang,
    /// Read the request and abort the connection with a TCP reset.
    Reset,
}

impl Reply {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Self {
        Self::Answer { status, headers: Vec::new(), body: String::new() }
    }

    /// `status` with `name: value`.
    pub fn with_header(status: u16, name: &str, value: &str) -> Self {
        Self::Answer {
            status,
            headers: vec![(name.to_owned(), value.to_owned())],
            body: String::new(),
        }
    }

    /// `200` with `body`.
    pub fn ok(body: &str) -> Self {
        Self::Answer { status: 200, headers: Vec::new(), body: body.to_owned() }
    }
}

/// A running scripted server.
#[derive(Clone, Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl ScriptedServer {
    /// Starts a server answering connection *n* with `script[n]`, and `then` after the script.
    ///
    /// # Errors
    ///
    /// No port on 127.0.0.1 could be bound.
    pub async fn start(script: Vec<Reply>, then: Reply) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let reply = script.get(n).cloned().unwrap_or_else(|| then.clone());
                tokio::spawn(serve(conn, reply));
            }
        });
        Ok(Self { addr, connections })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut conn: TcpStream, reply: Reply) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match reply {
        Reply::Answer { status, headers, body } => {
            let mut res = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
            for (name, value) in headers {
                res.push_str(&format!("{name}: {value}\r\n"));
            }
            res.push_str("connection: close\r\n\r\n");
            res.push_str(&body);
            let _ = conn.write_all(res.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
        Reply::Hang => {
            // Keep the connection open, unanswered, until the client gives up.
            while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Reply::Reset => {
            let _ = conn.set_zero_linger();
            drop(conn);
        }
    }
}
