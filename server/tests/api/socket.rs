//! A small Socket.IO test client over the real rust_socketio 0.6 async
//! client: connects with a token or a cookie on either transport, waits for
//! the `open` callback before anything is emitted (emitting earlier kills the
//! connection), forwards every event into a channel (callbacks run under the
//! client's lock, so they only forward) and offers bounded waits on it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::{Value, json};
use syncscript_protocol::SESSION_COOKIE;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

use syncscript_testkit::TestApp;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// The prefix rust_socketio puts before a refused handshake's reason.
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// Event name under which the `open` callback is forwarded (the server
/// never emits it).
pub const OPEN: &str = "open";
/// Event name under which the `close` callback is forwarded.
pub const CLOSE: &str = "close";
/// Event name under which the `error` callback is forwarded: the server's
/// `error` event `{code, message}` and the client's own errors (a refused
/// handshake) alike.
pub const ERROR: &str = "error";

type Callback =
    Box<dyn FnMut(Payload, Client) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// How to open a socket.
pub struct SocketBuilder {
    url: String,
    auth: Option<Value>,
    headers: Vec<(String, String)>,
    transport: TransportType,
    reconnect: bool,
}

impl SocketBuilder {
    pub fn new(app: &TestApp) -> SocketBuilder {
        SocketBuilder {
            url: app.base.clone(),
            auth: None,
            headers: Vec::new(),
            transport: TransportType::Websocket,
            reconnect: false,
        }
    }

    /// `auth: {token}` in the CONNECT packet.
    pub fn token(self, token: &str) -> SocketBuilder {
        self.auth(json!({ "token": token }))
    }

    /// Any `auth` payload.
    pub fn auth(mut self, auth: Value) -> SocketBuilder {
        self.auth = Some(auth);
        self
    }

    /// The session cookie in the handshake headers.
    pub fn cookie(self, token: &str) -> SocketBuilder {
        self.header("Cookie", &format!("{SESSION_COOKIE}={token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> SocketBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// HTTP long-polling instead of the websocket transport.
    pub fn polling(mut self) -> SocketBuilder {
        self.transport = TransportType::Polling;
        self
    }

    /// Reconnect by itself (also after a server-initiated disconnect), as a
    /// long-lived watcher would; `open` is forwarded again after each one.
    pub fn reconnecting(mut self) -> SocketBuilder {
        self.reconnect = true;
        self
    }

    /// Connects and waits until the server accepted the socket.
    pub async fn connect(self) -> TestSocket {
        match self.try_connect().await {
            Ok(socket) => socket,
            Err(reason) => panic!("socket refused: {reason}"),
        }
    }

    /// Connects; `Err` carries the refused handshake's `connect_error`
    /// payload (e.g. `{"message":"UNAUTHORIZED"}`).
    pub async fn try_connect(self) -> Result<TestSocket, Value> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut builder = ClientBuilder::new(self.url.as_str())
            .transport_type(self.transport)
            .reconnect(self.reconnect)
            .reconnect_on_disconnect(self.reconnect)
            .reconnect_delay(50, 200);
        if let Some(auth) = self.auth {
            builder = builder.auth(auth);
        }
        for (name, value) in self.headers {
            builder = builder.opening_header(name, value);
        }
        for name in [OPEN, CLOSE, ERROR] {
            builder = builder.on(name, forward(name, sender.clone()));
        }
        let any = sender.clone();
        builder = builder.on_any(move |event, payload, _| {
            any.send((event.to_string(), event_data(payload))).ok();
            Box::pin(async {})
        });
        let client = builder.connect().await.expect("Socket.IO transport opened");
        let mut socket = TestSocket {
            client,
            receiver,
            pending: VecDeque::new(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let (name, data) = socket
                .recv_until(deadline)
                .await
                .expect("neither open nor a connect error");
            match name.as_str() {
                OPEN => return Ok(socket),
                ERROR => {
                    if let Some(reason) = data
                        .as_str()
                        .and_then(|s| s.strip_prefix(CONNECT_ERROR_PREFIX))
                    {
                        return Err(serde_json::from_str(reason)
                            .unwrap_or_else(|_| Value::String(reason.into())));
                    }
                    socket.pending.push_back((name, data));
                }
                _ => socket.pending.push_back((name, data)),
            }
        }
    }
}

/// A callback that forwards its payload into the channel under `name`.
fn forward(name: &'static str, sender: mpsc::UnboundedSender<(String, Value)>) -> Callback {
    Box::new(move |payload, _| {
        sender.send((name.to_owned(), event_data(payload))).ok();
        Box::pin(async {})
    })
}

/// An event's data: its only argument, or all of them as an array.
fn event_data(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if values.len() == 1 => values.remove(0),
        Payload::Text(values) => Value::Array(values),
        #[allow(deprecated)]
        Payload::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Payload::Binary(bytes) => Value::String(format!("<{} binary bytes>", bytes.len())),
    }
}

/// Whether a refused handshake's reason is the contract's `UNAUTHORIZED`.
pub fn is_unauthorized(reason: &Value) -> bool {
    reason["message"] == "UNAUTHORIZED"
}

/// A connected socket and everything it received, in order.
pub struct TestSocket {
    client: Client,
    receiver: mpsc::UnboundedReceiver<(String, Value)>,
    /// Received but not yet consumed by a `next_event`.
    pending: VecDeque<(String, Value)>,
}

impl TestSocket {
    async fn recv_until(&mut self, deadline: Instant) -> Option<(String, Value)> {
        timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.receiver.recv(),
        )
        .await
        .ok()
        .flatten()
    }

    /// Moves whatever already arrived into `pending`.
    fn drain(&mut self) {
        while let Ok(event) = self.receiver.try_recv() {
            self.pending.push_back(event);
        }
    }

    /// Emits an event without an ack.
    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.expect("emit");
    }

    /// Emits with an ack and waits (bounded) for it; returns its first
    /// argument (acks arrive one array level deeper than events).
    pub async fn emit_with_ack(&self, event: &str, data: Value) -> Value {
        let (sender, receiver) = oneshot::channel();
        let sender = Arc::new(Mutex::new(Some(sender)));
        self.client
            .emit_with_ack(event, data, WAIT, move |payload, _| {
                if let Some(sender) = sender.lock().ok().and_then(|mut s| s.take()) {
                    sender.send(payload).ok();
                }
                Box::pin(async {})
            })
            .await
            .expect("emit with ack");
        let payload = timeout(WAIT, receiver)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event} within {WAIT:?}"))
            .expect("ack callback dropped");
        match event_data(payload) {
            Value::Array(mut args) if args.len() == 1 => args.remove(0),
            other => other,
        }
    }

    /// `vault:join` with an ack; returns the ack.
    pub async fn join(&self, payload: Value) -> Value {
        self.emit_with_ack("vault:join", payload).await
    }

    /// Joins `vault_id`, asserting success, and consumes the `vault:joined`
    /// signal; returns the ack.
    pub async fn join_ok(&mut self, vault_id: &str) -> Value {
        let ack = self.join(json!(vault_id)).await;
        assert_eq!(ack["ok"], true, "join {vault_id}: {ack}");
        self.next_event("vault:joined", WAIT).await;
        ack
    }

    /// The next event called `name` (events of other names stay pending for
    /// later calls); panics after `within`.
    pub async fn next_event(&mut self, name: &str, within: Duration) -> Value {
        if let Some(index) = self.pending.iter().position(|(n, _)| n == name) {
            return self
                .pending
                .remove(index)
                .map(|(_, data)| data)
                .unwrap_or_default();
        }
        let deadline = Instant::now() + within;
        loop {
            match self.recv_until(deadline).await {
                Some((n, data)) if n == name => return data,
                Some(other) => self.pending.push_back(other),
                None => panic!(
                    "no {name:?} event within {within:?}; received meanwhile: {:?}",
                    self.pending
                ),
            }
        }
    }

    /// Every event received up to and including the next `marker` event,
    /// in order (consumed).
    pub async fn events_until(&mut self, marker: &str, within: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + within;
        let mut seen: Vec<(String, Value)> = Vec::new();
        loop {
            let next = match self.pending.pop_front() {
                Some(event) => event,
                None => match self.recv_until(deadline).await {
                    Some(event) => event,
                    None => panic!("no {marker:?} event within {within:?}; received: {seen:?}"),
                },
            };
            let done = next.0 == marker;
            seen.push(next);
            if done {
                return seen;
            }
        }
    }

    /// A round trip to the server: once its ack is back, everything the
    /// server sent to this socket before handling it has been received.
    pub async fn sync(&mut self) {
        let ack = self.emit_with_ack("test:sync", json!({})).await;
        assert_eq!(
            ack["ok"], false,
            "the server does not know test:sync: {ack}"
        );
        self.drain();
    }

    /// Asserts that no `name` event was received so far (call after
    /// [`TestSocket::sync`] or after a later marker event).
    pub fn assert_no_event(&mut self, name: &str) {
        self.drain();
        let found: Vec<_> = self.pending.iter().filter(|(n, _)| n == name).collect();
        assert!(found.is_empty(), "unexpected {name:?} event(s): {found:?}");
    }

    /// Asserts (bounded) that no `name` event arrives within `within`.
    /// Prefer [`TestSocket::sync`] + [`TestSocket::assert_no_event`]; this is
    /// for what has no marker (a socket that must stay silent).
    pub async fn expect_no_event(&mut self, name: &str, within: Duration) {
        self.assert_no_event(name);
        let deadline = Instant::now() + within;
        while let Some(event) = self.recv_until(deadline).await {
            assert_ne!(event.0, name, "unexpected {name:?} event: {event:?}");
            self.pending.push_back(event);
        }
    }

    /// Every pending event called `name`, consumed.
    pub fn take_all(&mut self, name: &str) -> Vec<Value> {
        self.drain();
        let (taken, kept): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(n, _)| n == name);
        self.pending = kept.into();
        taken.into_iter().map(|(_, data)| data).collect()
    }

    /// Every pending event whose name passes `keep`, in arrival order
    /// (consumed).
    pub fn take_matching(&mut self, keep: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
        self.drain();
        let (taken, kept): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(n, _)| keep(n));
        self.pending = kept.into();
        taken
    }

    /// Disconnects from our side.
    pub async fn disconnect(&self) {
        self.client.disconnect().await.ok();
    }
}

impl Drop for TestSocket {
    fn drop(&mut self) {
        // The client's polling task outlives this handle: stop it.
        let client = self.client.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                client.disconnect().await.ok();
            });
        }
    }
}
