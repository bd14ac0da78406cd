//! A lean Socket.IO v4 client over one WebSocket (Engine.IO v4, no
//! long-polling): only the packets the bench needs. It opens the connection
//! with `auth: {token}`, answers the server's pings, emits events with an
//! ack id, and decodes what the server sends in place, borrowing from the
//! frame, so that a delivered event costs no allocation beyond the frame.
//!
//! The packets are decoded here with serde_json rather than with
//! `socketioxide-parser-common`: that parser is written for the server side
//! (it cannot read a CONNECT_ERROR packet, which only servers send) and
//! takes its input as an owned `Str`, which would mean copying every
//! received frame.

use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use syncscript_protocol::{ErrorDetail, names, signals};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Read buffer of one connection: a few events' worth. Tungstenite's
/// default (128 KiB) would take more than a gigabyte for 10,000 sockets,
/// and it zeroes the buffer's free space before every read.
const READ_BUFFER: usize = 4 * 1024;

/// How long closing a connection may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The WebSocket failed (refused, reset, closed mid-frame…).
    #[error("{0}")]
    Transport(#[from] tungstenite::Error),
    /// The server refused the Socket.IO connection (CONNECT_ERROR); the
    /// message is the server's, e.g. `UNAUTHORIZED`.
    #[error("connection refused: {0}")]
    Refused(String),
    /// The server ended the connection.
    #[error("the server closed the connection")]
    Closed,
    /// A packet this client does not expect at this point.
    #[error("unexpected packet {0:?}")]
    Unexpected(String),
    /// A packet's JSON could not be read or written.
    #[error("malformed packet: {0}")]
    Json(#[from] serde_json::Error),
}

/// One Socket.IO connection to the `/` namespace.
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
}

/// The handshake's `auth` payload.
#[derive(Serialize)]
struct Auth<'a> {
    token: &'a str,
}

impl Connection {
    /// Connects to `url` (`ws://…/socket.io/?EIO=4&transport=websocket`)
    /// and completes the Socket.IO handshake with `token`.
    pub async fn open(url: &str, token: &str) -> Result<Connection, WireError> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0);
        // Nagle off: small frames must not wait for an ack (see PITFALLS).
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        let mut connection = Connection { ws, next_ack: 0 };
        let open = connection.recv().await?;
        if !matches!(decode(&open)?, Packet::Open) {
            return Err(WireError::Unexpected(text_of(&open).to_owned()));
        }
        let connect = format!("40{}", serde_json::to_string(&Auth { token })?);
        connection.send(connect).await?;
        loop {
            let message = connection.recv().await?;
            match decode(&message)? {
                Packet::Connected => return Ok(connection),
                Packet::ConnectError(message) => return Err(WireError::Refused(message)),
                Packet::Ping => connection.pong().await?,
                Packet::Noop => {}
                _ => return Err(WireError::Unexpected(text_of(&message).to_owned())),
            }
        }
    }

    /// The next message; a closed connection is an error.
    pub async fn recv(&mut self) -> Result<Message, WireError> {
        match self.ws.next().await {
            Some(Ok(Message::Close(_))) | None => Err(WireError::Closed),
            Some(Ok(message)) => Ok(message),
            Some(Err(error)) => Err(error.into()),
        }
    }

    /// Answers an Engine.IO ping.
    pub async fn pong(&mut self) -> Result<(), WireError> {
        self.send("3".to_owned()).await
    }

    /// Emits `event` with `payload` and asks for an ack; returns its id.
    pub async fn emit<T: Serialize>(&mut self, event: &str, payload: &T) -> Result<u64, WireError> {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = format!("42{id}{}", serde_json::to_string(&(event, payload))?);
        self.send(packet).await?;
        Ok(id)
    }

    /// Waits for the ack `id`, answering pings and skipping anything else;
    /// returns the server's answer.
    pub async fn ack(&mut self, id: u64) -> Result<Result<(), ErrorDetail>, WireError> {
        loop {
            let message = self.recv().await?;
            match decode(&message)? {
                Packet::Ack { id: acked, outcome } if acked == id => return Ok(outcome),
                Packet::Ping => self.pong().await?,
                Packet::Close | Packet::Disconnected => return Err(WireError::Closed),
                _ => {}
            }
        }
    }

    /// Closes the WebSocket, telling the server if it still listens: a
    /// server that is gone or not reading cannot be told, and dropping the
    /// connection is enough then.
    pub async fn close(mut self) {
        tokio::time::timeout(CLOSE_TIMEOUT, self.ws.close(None))
            .await
            .ok();
    }

    async fn send(&mut self, text: String) -> Result<(), WireError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }
}

/// The text of a message (empty for binary and control frames).
pub fn text_of(message: &Message) -> &str {
    match message {
        Message::Text(text) => text.as_str(),
        _ => "",
    }
}

/// What a server frame says.
#[derive(Debug, PartialEq)]
pub enum Packet<'a> {
    /// Engine.IO open (the session's parameters, not needed here).
    Open,
    /// Engine.IO ping: answer with [`Connection::pong`].
    Ping,
    /// Engine.IO close.
    Close,
    /// Anything to skip: Engine.IO noop or pong, binary or control frames.
    Noop,
    /// Socket.IO CONNECT: the handshake was accepted.
    Connected,
    /// Socket.IO CONNECT_ERROR with the server's message.
    ConnectError(String),
    /// Socket.IO DISCONNECT: the server dropped the socket.
    Disconnected,
    /// Socket.IO EVENT.
    Event(Event<'a>),
    /// Socket.IO ACK: the answer to a command emitted with this id.
    Ack {
        id: u64,
        outcome: Result<(), ErrorDetail>,
    },
}

/// A server event, with only the fields the bench reads.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// A sequenced vault event (`source:created`, …).
    Sequenced(Sequenced<'a>),
    /// `vault:joined`: `seq` is the head; any replay is complete.
    Joined(Head<'a>),
    /// `vault:head`: the vault's head, announced.
    Head(Head<'a>),
    /// `vault:resync`: the missed events are no longer retained.
    Resync(Head<'a>),
    /// `vault:removed`: the user lost access to the vault.
    Removed,
    /// Any other signal (`presence`, `vault:left`, `error`: a failed join
    /// is told by its ack).
    Other,
}

/// The fields of a sequenced event the bench reads.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequenced<'a> {
    #[serde(borrow)]
    pub vault_id: &'a str,
    pub seq: i64,
    /// The source of `source:created` and `source:updated`.
    #[serde(borrow, default)]
    pub source: Option<SourceTitle<'a>>,
}

/// A source, reduced to its title.
#[derive(Debug, PartialEq, Deserialize)]
pub struct SourceTitle<'a> {
    #[serde(borrow)]
    pub title: &'a str,
}

/// `{vaultId, seq}` of `vault:joined`, `vault:head` and `vault:resync`.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head<'a> {
    #[serde(borrow)]
    pub vault_id: &'a str,
    pub seq: i64,
}

/// An ack's single argument: `{ok: true, …}` or `{ok: false, error}`.
#[derive(Deserialize)]
struct AckBody {
    ok: bool,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

/// The payload of a CONNECT_ERROR.
#[derive(Deserialize)]
struct ConnectError {
    message: String,
}

/// Decodes one server frame.
pub fn decode(message: &Message) -> Result<Packet<'_>, WireError> {
    let Message::Text(text) = message else {
        return Ok(Packet::Noop);
    };
    let text = text.as_str();
    let unexpected = || WireError::Unexpected(text.to_owned());
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => return Ok(Packet::Open),
        Some('1') => return Ok(Packet::Close),
        Some('2') => return Ok(Packet::Ping),
        Some('3' | '5' | '6') => return Ok(Packet::Noop),
        Some('4') => {}
        _ => return Err(unexpected()),
    }
    // Namespace `/` is implicit: a packet naming another one is not ours.
    let kind = chars.next().ok_or_else(unexpected)?;
    let body = chars.as_str();
    let (id, json) = split_ack_id(body);
    match kind {
        '0' => Ok(Packet::Connected),
        '1' => Ok(Packet::Disconnected),
        '2' => Ok(Packet::Event(serde_json::from_str(json)?)),
        '3' => {
            let id = id.ok_or_else(unexpected)?;
            let (answer,): (AckBody,) = serde_json::from_str(json)?;
            let outcome = match (answer.ok, answer.error) {
                (true, _) => Ok(()),
                (false, Some(error)) => Err(error),
                (false, None) => return Err(unexpected()),
            };
            Ok(Packet::Ack { id, outcome })
        }
        '4' => {
            let refusal: ConnectError = serde_json::from_str(body)?;
            Ok(Packet::ConnectError(refusal.message))
        }
        _ => Err(unexpected()),
    }
}

/// Splits the ack id (leading digits) off a packet's body.
fn split_ack_id(body: &str) -> (Option<u64>, &str) {
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let (id, json) = body.split_at(digits);
    (id.parse().ok(), json)
}

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event<'de>, D::Error> {
        deserializer.deserialize_seq(EventVisitor)
    }
}

/// Reads `[name, payload, …]`, choosing the payload's type by the name.
struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array [event name, payload]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Event<'de>, A::Error> {
        let name: &'de str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let event = match name {
            signals::VAULT_JOINED => Event::Joined(payload(&mut seq, &self)?),
            signals::VAULT_HEAD => Event::Head(payload(&mut seq, &self)?),
            signals::VAULT_RESYNC => Event::Resync(payload(&mut seq, &self)?),
            signals::VAULT_REMOVED => Event::Removed,
            name if names::ALL.contains(&name) => Event::Sequenced(payload(&mut seq, &self)?),
            _ => Event::Other,
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(event)
    }
}

/// The element after the event name.
fn payload<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    visitor: &EventVisitor,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(1, visitor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncscript_protocol::ErrorCode;

    fn packet(text: &str) -> Message {
        Message::text(text.to_owned())
    }

    #[test]
    fn engine_packets_are_recognised() {
        let open = packet(r#"0{"sid":"x","pingInterval":25000}"#);
        assert_eq!(decode(&open).unwrap(), Packet::Open);
        assert_eq!(decode(&packet("2")).unwrap(), Packet::Ping);
        assert_eq!(decode(&packet("1")).unwrap(), Packet::Close);
        assert_eq!(decode(&packet("6")).unwrap(), Packet::Noop);
    }

    #[test]
    fn the_handshake_answer_is_accepted_or_refused() {
        let accepted = packet(r#"40{"sid":"hXo1p6bVn3Jr0dCzAAAB"}"#);
        assert_eq!(decode(&accepted).unwrap(), Packet::Connected);
        let refused = packet(r#"44{"message":"UNAUTHORIZED"}"#);
        assert_eq!(
            decode(&refused).unwrap(),
            Packet::ConnectError("UNAUTHORIZED".into())
        );
    }

    #[test]
    fn a_sequenced_event_yields_its_vault_seq_and_title() {
        let message = packet(
            r#"42["source:created",{"vaultId":"v1","seq":15,"actor":{"userId":"u","userName":"A","role":"owner"},"timestamp":"t","source":{"id":"s","vaultId":"v1","title":"bench-7","fileUrl":"https://x/7.pdf"}}]"#,
        );
        let expected = Packet::Event(Event::Sequenced(Sequenced {
            vault_id: "v1",
            seq: 15,
            source: Some(SourceTitle { title: "bench-7" }),
        }));
        assert_eq!(decode(&message).unwrap(), expected);
        let deleted = packet(r#"42["source:deleted",{"vaultId":"v1","seq":16,"sourceId":"s"}]"#);
        let Packet::Event(Event::Sequenced(event)) = decode(&deleted).unwrap() else {
            panic!("not a sequenced event");
        };
        assert_eq!((event.seq, event.source), (16, None));
    }

    #[test]
    fn signals_are_told_apart() {
        let joined = packet(r#"42["vault:joined",{"vaultId":"v1","role":"owner","seq":3}]"#);
        assert_eq!(
            decode(&joined).unwrap(),
            Packet::Event(Event::Joined(Head {
                vault_id: "v1",
                seq: 3
            }))
        );
        let head = packet(r#"42["vault:head",{"vaultId":"v1","seq":9}]"#);
        assert!(matches!(
            decode(&head).unwrap(),
            Packet::Event(Event::Head(Head { seq: 9, .. }))
        ));
        let presence = packet(r#"42["presence",{"vaultId":"v1","present":[]}]"#);
        assert_eq!(decode(&presence).unwrap(), Packet::Event(Event::Other));
    }

    #[test]
    fn acks_carry_their_id_and_outcome() {
        let ok = packet(r#"4312[{"ok":true,"vaultId":"v1","role":"owner","seq":0}]"#);
        assert_eq!(
            decode(&ok).unwrap(),
            Packet::Ack {
                id: 12,
                outcome: Ok(())
            }
        );
        let refused = packet(
            r#"430[{"ok":false,"error":{"code":"FORBIDDEN","message":"Access denied to vault"}}]"#,
        );
        let Packet::Ack {
            id: 0,
            outcome: Err(error),
        } = decode(&refused).unwrap()
        else {
            panic!("not a refused ack");
        };
        assert_eq!(error.code, ErrorCode::Forbidden);
    }

    #[test]
    fn other_namespaces_and_garbage_are_errors() {
        assert!(decode(&packet("42/admin,[\"x\"]")).is_err());
        assert!(decode(&packet("x")).is_err());
        assert!(decode(&packet("42[")).is_err());
    }
}
