//! A raw Engine.IO v4 / Socket.IO v5 client over one WebSocket: packets
//! written by hand, pings answered by itself.

use super::*;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One frame put on the WebSocket.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// What the WebSocket gave next.
#[derive(Debug)]
pub(crate) enum Received {
    Text(String),
    Binary(usize),
    Closed(String),
    Silent,
}

/// A WebSocket to `/socket.io/` that speaks the packets by hand. It answers
/// the server's pings by itself.
pub(crate) struct RawSocket {
    pub(crate) ws: Ws,
    pub(crate) next_ack: u64,
}

impl RawSocket {
    /// The transport, up to the Engine.IO open packet (no Socket.IO
    /// CONNECT yet).
    pub(crate) async fn open(app: &TestApp) -> Result<RawSocket, String> {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let mut socket = RawSocket { ws, next_ack: 100 };
        match socket.recv(WAIT).await {
            Received::Text(open) if open.starts_with('0') => Ok(socket),
            other => Err(format!("no Engine.IO open packet: {other:?}")),
        }
    }

    /// The transport and the CONNECT of `/` with `token`, accepted.
    pub(crate) async fn connect(app: &TestApp, token: &str) -> Result<RawSocket, String> {
        let mut socket = RawSocket::open(app).await?;
        socket
            .send(&Frame::Text(format!("40{}", json!({ "token": token }))))
            .await?;
        match socket.recv(WAIT).await {
            Received::Text(connected) if connected.starts_with("40") => Ok(socket),
            other => Err(format!("CONNECT not accepted: {other:?}")),
        }
    }

    pub(crate) async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        let message = match frame {
            Frame::Text(text) => Message::text(text.clone()),
            Frame::Binary(bytes) => Message::binary(bytes.clone()),
        };
        self.ws
            .send(message)
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next frame within `within`; pings are answered, not returned.
    pub(crate) async fn recv(&mut self, within: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match next {
                Err(_) => return Received::Silent,
                Ok(None) => return Received::Closed("end of stream".into()),
                Ok(Some(Err(error))) => return Received::Closed(error.to_string()),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Received::Closed(format!("close frame {frame:?}"));
                }
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.ok();
                }
                Ok(Some(Ok(Message::Text(text)))) => return Received::Text(text.to_string()),
                Ok(Some(Ok(Message::Binary(bytes)))) => return Received::Binary(bytes.len()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Reads text packets until `pick` accepts one; what came before is in
    /// the error when none does.
    pub(crate) async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Text(text) => match pick(&text) {
                    Some(found) => return Ok(found),
                    None => seen.push(shorten(&text)),
                },
                Received::Binary(len) => seen.push(format!("<{len} binary bytes>")),
                Received::Closed(why) => {
                    return Err(format!("no {what}: closed ({why}) after {seen:?}"));
                }
                Received::Silent => {
                    return Err(format!("no {what} within {WAIT:?} after {seen:?}"));
                }
            }
        }
    }

    /// The ack with id `id`, its first argument.
    pub(crate) async fn ack(&mut self, id: u64) -> Result<Value, String> {
        self.until(&format!("ack {id}"), |text| parse_ack(text, id))
            .await
    }

    /// The next `error` event's payload.
    pub(crate) async fn error_event(&mut self) -> Result<Value, String> {
        self.until("error event", |text| {
            parse_event(text)
                .filter(|(name, _)| name == "error")
                .map(|(_, data)| data)
        })
        .await
    }

    /// Waits until the server closes the transport.
    pub(crate) async fn closed(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Closed(_) => return Ok(()),
                Received::Silent => {
                    return Err(format!("the connection stayed open; received {seen:?}"));
                }
                Received::Text(text) => seen.push(shorten(&text)),
                Received::Binary(len) => seen.push(format!("<{len} binary bytes>")),
            }
        }
    }

    /// A round trip: a command with an ack that the server does not know.
    /// Returns every text packet received before its answer (what the
    /// server sent before handling it).
    pub(crate) async fn round_trip(&mut self) -> Result<Vec<String>, String> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(&Frame::Text(format!("42{id}[\"test:sync\",{{}}]")))
            .await?;
        let mut before = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Text(text) if parse_ack(&text, id).is_some() => return Ok(before),
                Received::Text(text) => before.push(text),
                Received::Binary(len) => before.push(format!("<{len} binary bytes>")),
                other => {
                    return Err(format!(
                        "the connection no longer serves: {other:?} after {before:?}"
                    ));
                }
            }
        }
    }

    pub(crate) async fn close(mut self) {
        tokio::time::timeout(Duration::from_secs(1), self.ws.close(None))
            .await
            .ok();
    }
}

/// The first argument of an ACK packet `43<id>[…]`.
pub(crate) fn parse_ack(text: &str, id: u64) -> Option<Value> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if rest[..digits].parse::<u64>().ok()? != id {
        return None;
    }
    let args: Vec<Value> = serde_json::from_str(&rest[digits..]).ok()?;
    args.into_iter().next()
}

/// The name and first argument of an EVENT packet `42[name, data]`.
pub(crate) fn parse_event(text: &str) -> Option<(String, Value)> {
    let rest = text
        .strip_prefix("42")?
        .trim_start_matches(|c: char| c.is_ascii_digit());
    let args: Vec<Value> = serde_json::from_str(rest).ok()?;
    let mut args = args.into_iter();
    let name = args.next()?.as_str()?.to_owned();
    Some((name, args.next().unwrap_or(Value::Null)))
}
