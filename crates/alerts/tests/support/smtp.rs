//! A tiny SMTP server on 127.0.0.1 that records what it is sent (plain text, no TLS).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Takes any credentials and every mail.
    Accept,
    /// Refuses every `AUTH` with `535`.
    RefuseAuth,
    /// Accepts connections and never says a word.
    Silent,
}

/// One connection as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub commands: Vec<String>,
    /// The decoded `AUTH PLAIN` answer (`\0user\0password`).
    pub auth: Option<String>,
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    /// The message, dot-unstuffed, lines joined with `\n`.
    pub data: Option<String>,
}

/// The server; stops when dropped.
#[derive(Debug)]
pub struct FakeSmtp {
    pub addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSmtp {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
        let log = sessions.clone();
        let task = tokio::spawn(async move {
            // Bounded: a test makes a few connections at most.
            for _ in 0..16 {
                let Ok((stream, _)) = listener.accept().await else { return };
                let log = log.clone();
                tokio::spawn(async move {
                    let session = serve(stream, behaviour).await;
                    log.lock().unwrap().push(session);
                });
            }
        });
        Self { addr, sessions, task }
    }

    /// The connections that ended.
    pub fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }

    /// The connections that ended, once `n` have (the client may hang up after its caller has
    /// its answer); waits up to 5 s.
    pub async fn ended(&self, n: usize) -> Vec<Session> {
        let clock = unattended_core::Clock::system();
        for _ in 0..500 {
            if self.sessions.lock().unwrap().len() >= n {
                break;
            }
            clock.sleep(std::time::Duration::from_millis(10)).await;
        }
        self.sessions()
    }
}

async fn serve(stream: TcpStream, behaviour: Behaviour) -> Session {
    let mut session = Session::default();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if behaviour == Behaviour::Silent {
        while let Ok(Some(_)) = lines.next_line().await {}
        return session;
    }
    let mut say = async |text: &str| write.write_all(text.as_bytes()).await.is_ok();
    if !say("220 fake.example ESMTP\r\n").await {
        return session;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        session.commands.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-fake.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_owned()
        } else if let Some(answer) = upper.strip_prefix("AUTH PLAIN ").map(|_| &line[11..]) {
            session.auth = Some(String::from_utf8_lossy(&base64(answer.trim())).into_owned());
            match behaviour {
                Behaviour::RefuseAuth => {
                    "535 5.7.8 authentication credentials invalid\r\n".to_owned()
                }
                _ => "235 2.7.0 accepted\r\n".to_owned(),
            }
        } else if upper.starts_with("MAIL FROM:") {
            session.mail_from = Some(line[10..].trim().to_owned());
            "250 ok\r\n".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            session.rcpt_to.push(line[8..].trim().to_owned());
            "250 ok\r\n".to_owned()
        } else if upper == "DATA" {
            if !say("354 go on\r\n").await {
                break;
            }
            let mut data = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push(l.strip_prefix('.').map_or(l.clone(), str::to_owned));
            }
            session.data = Some(data.join("\n"));
            "250 queued\r\n".to_owned()
        } else if upper == "QUIT" {
            let _ = say("221 bye\r\n").await;
            break;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 ok\r\n".to_owned()
        } else {
            "502 not implemented\r\n".to_owned()
        };
        if !say(&reply).await {
            break;
        }
    }
    session
}

/// Decodes standard base64 (what `AUTH PLAIN` sends).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut bits, mut acc) = (Vec::new(), 0_u32, 0_u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    out
}
