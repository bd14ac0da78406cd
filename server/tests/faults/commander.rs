//! A bare rust_socketio client that sends commands and waits for their acks
//! as long as the test wants (the client library gives up after 5 s), to
//! see what the server answers and when.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::PATIENCE;

/// A connected socket.
pub struct Commander {
    client: Client,
}

/// The answer to one command: its ack body and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub ack: Option<Value>,
    pub took: Duration,
}

impl Commander {
    /// Connects with `token` over WebSocket and waits until the server has
    /// accepted the socket (emitting before that kills the connection).
    pub async fn connect(url: &str, token: &str) -> Commander {
        let opened = Arc::new(Notify::new());
        let on_open = opened.clone();
        let client = ClientBuilder::new(url)
            .namespace("/")
            .auth(serde_json::json!({ "token": token }))
            .transport_type(TransportType::Websocket)
            .reconnect(false)
            .on(Event::Connect, move |_, _| {
                on_open.notify_one();
                Box::pin(async {})
            })
            .connect()
            .await
            .expect("socket connects");
        tokio::time::timeout(PATIENCE, opened.notified())
            .await
            .expect("the server accepts the socket");
        Commander { client }
    }

    /// Sends `event` with `payload` and waits at most `patience` for its
    /// ack (`ack: None` when none came).
    pub async fn command(&self, event: &str, payload: Value, patience: Duration) -> Answer {
        let (answer, mut answered) = mpsc::unbounded_channel();
        let started = Instant::now();
        self.client
            .emit_with_ack(event, payload, patience, move |payload, _| {
                let _ = answer.send(ack_value(payload));
                Box::pin(async {})
            })
            .await
            .expect("command sent");
        let ack = tokio::time::timeout(patience, answered.recv())
            .await
            .ok()
            .flatten();
        Answer {
            ack,
            took: started.elapsed(),
        }
    }

    pub async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

/// An ack's body: rust_socketio hands it over one array level deeper.
fn ack_value(payload: Payload) -> Value {
    let first = match payload {
        Payload::Text(values) => values.into_iter().next().unwrap_or(Value::Null),
        #[allow(deprecated)]
        Payload::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Payload::Binary(_) => Value::Null,
    };
    match first {
        Value::Array(values) => values.into_iter().next().unwrap_or(Value::Null),
        other => other,
    }
}
