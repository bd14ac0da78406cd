//! A Socket.IO client over raw Engine.IO long-polling (plain HTTP
//! requests), sending packets exactly as written: for what an ordinary
//! client library never sends, such as several packets in one request.

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::socket::WAIT;

/// Engine.IO's separator of the packets of one polling payload.
const SEPARATOR: char = '\u{1e}';

pub struct PollingSocket {
    http: reqwest::Client,
    /// The transport's URL, with its session id.
    url: String,
    /// Packets polled and not yet taken by [`PollingSocket::wait_for`].
    received: Vec<String>,
}

impl PollingSocket {
    /// Opens a polling transport at `base` and connects to the main
    /// namespace with `token`, waiting for the server's CONNECT answer.
    pub async fn connect(http: &reqwest::Client, base: &str, token: &str) -> PollingSocket {
        let mut socket = PollingSocket::open(http, base).await;
        socket
            .send(&[&format!("40{}", json!({ "token": token }))])
            .await;
        socket.wait_for("40").await;
        socket
    }

    /// Opens a polling transport at `base`, up to the Engine.IO open
    /// packet (no Socket.IO CONNECT yet).
    pub async fn open(http: &reqwest::Client, base: &str) -> PollingSocket {
        let open = http
            .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .expect("polling open")
            .text()
            .await
            .expect("open packet");
        let handshake: Value =
            serde_json::from_str(open.trim_start_matches('0')).expect("Engine.IO open packet");
        let sid = handshake["sid"].as_str().expect("sid");
        PollingSocket {
            http: http.clone(),
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
            received: Vec::new(),
        }
    }

    /// The transport's URL, with its session id.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `packets` in one request.
    pub async fn send(&self, packets: &[&str]) {
        let response = self
            .http
            .post(&self.url)
            .body(packets.join(&SEPARATOR.to_string()))
            .send()
            .await
            .expect("packets sent");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Polls until a packet that starts with `prefix` arrives, and takes
    /// it (packets polled meanwhile stay for later waits).
    pub async fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(index) = self.received.iter().position(|p| p.starts_with(prefix)) {
                return self.received.remove(index);
            }
            assert!(
                Instant::now() < deadline,
                "no packet {prefix}… within {WAIT:?}; polled {:?}",
                self.received
            );
            let body = tokio::time::timeout_at(deadline, self.poll())
                .await
                .unwrap_or_default();
            self.received.extend(
                body.split(SEPARATOR)
                    .filter(|packet| !packet.is_empty())
                    .map(str::to_owned),
            );
        }
    }

    async fn poll(&self) -> String {
        let (status, body) = self.poll_answer().await;
        assert!(status.is_success(), "poll: {status} {body}");
        body
    }

    /// One poll's status and body, whatever they are.
    pub async fn poll_answer(&self) -> (reqwest::StatusCode, String) {
        let response = self.http.get(&self.url).send().await.expect("poll");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }
}
