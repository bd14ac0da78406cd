//! A TCP proxy in front of a test server that can lose an answer: it
//! forwards both directions as they come and, once armed with
//! [`LossyProxy::lose_answer_containing`], the next chunk from the server
//! that contains the given bytes is not forwarded: the proxy closes both
//! sides of that connection instead. The server has then carried the
//! request out, and the client sees its connection drop without an answer
//! (exactly what a retry with an idempotency key is for).
//!
//! It also keeps every byte the clients sent, so a test can read the
//! headers of each attempt (REST requests are plain HTTP/1.1).
//!
//! Used by the client, CLI and terminal client tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    /// The bytes whose next answer chunk is lost, while armed.
    armed: Option<Vec<u8>>,
    /// Answers lost so far.
    lost: usize,
    /// What the clients sent, in order, all connections together.
    sent: Vec<u8>,
}

/// The proxy; it stops when dropped.
pub struct LossyProxy {
    /// `http://127.0.0.1:PORT`: give this to the client instead of the
    /// server's URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        LossyProxy { url, state, accept }
    }

    /// Stops listening, and returns once the port is closed (a connection
    /// to it is then refused).
    pub async fn stop(mut self) {
        self.accept.abort();
        // The task drops its listener when it ends: awaiting the aborted
        // task is awaiting the port's close.
        (&mut self.accept).await.ok();
    }

    /// Loses the next answer chunk that contains `needle` (once).
    pub fn lose_answer_containing(&self, needle: &[u8]) {
        self.state.lock().unwrap().armed = Some(needle.to_vec());
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.state.lock().unwrap().lost
    }

    /// Everything the clients sent so far, as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.state.lock().unwrap().sent).into_owned()
    }

    /// The values of `header` in the requests sent so far, in order (header
    /// names compared without case).
    pub fn header_values(&self, header: &str) -> Vec<String> {
        let prefix = format!("{}:", header.to_ascii_lowercase());
        self.sent()
            .split("\r\n")
            .filter(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
            .collect()
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream, state: Arc<Mutex<State>>) {
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut up) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                state.lock().unwrap().sent.extend_from_slice(&up[..n]);
                if server.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut down) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let chunk = &down[..n];
                {
                    let mut state = state.lock().unwrap();
                    let hit = state
                        .armed
                        .as_deref()
                        .is_some_and(|needle| contains(chunk, needle));
                    if hit {
                        state.armed = None;
                        state.lost += 1;
                        // Dropping both streams closes the connection with
                        // the answer unsent.
                        return;
                    }
                }
                if client.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
