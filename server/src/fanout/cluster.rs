//! Scale-out: the Redis driver of the Socket.IO adapter (`socketioxide-redis`)
//! and the health of this node's link to Redis.
//!
//! The adapter's stock driver never recovers from a Redis restart. This one
//! runs over `redis::aio::ConnectionManager`, which reconnects by itself and
//! subscribes again to every channel the adapter listens on; a ping every
//! [`PING_EVERY`] keeps a quiet node reconnecting and tells whether the link
//! is up. [`Link`] reports that state (for `/readyz` and for the `vault:head`
//! announcements after a reconnect).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{mpsc, watch};
use url::Url;

/// How often the link to Redis is checked (and, when down, re-established).
const PING_EVERY: Duration = Duration::from_millis(500);
/// How long one Redis command or connection attempt may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The channels the adapter listens on, and where their messages go.
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// The adapter's driver: publish, subscribe and count the nodes over one
/// self-healing RESP3 connection.
#[derive(Clone)]
pub struct RedisDriver {
    conn: ConnectionManager,
    handlers: Handlers,
}

/// The state of the link to Redis.
#[derive(Debug, Clone, Copy)]
struct LinkState {
    up: bool,
    /// How many times the link came back up.
    reconnects: u64,
}

/// Whether this node's link to Redis is up; clones watch the same link.
#[derive(Clone)]
pub struct Link {
    state: watch::Receiver<LinkState>,
    seen_reconnects: u64,
}

impl Link {
    /// The link works now.
    pub fn is_up(&self) -> bool {
        self.state.borrow().up
    }

    /// Waits until the link has come back up since this handle last looked
    /// (or was made); `None` once the link's monitor has stopped.
    pub async fn reconnected(&mut self) -> Option<()> {
        let seen = self.seen_reconnects;
        let state = *self
            .state
            .wait_for(|state| state.reconnects != seen)
            .await
            .ok()?;
        self.seen_reconnects = state.reconnects;
        Some(())
    }
}

/// Records whether the link is up; returns whether it was.
fn set_up(state: &watch::Sender<LinkState>, up: bool) -> bool {
    let mut was_up = up;
    state.send_if_modified(|state| {
        was_up = state.up;
        if state.up == up {
            return false;
        }
        state.up = up;
        if up {
            state.reconnects += 1;
        }
        true
    });
    was_up
}

/// The URL with RESP3 asked for (push messages need it); an explicit other
/// protocol is refused.
fn resp3(url: &Url) -> anyhow::Result<Url> {
    let mut url = url.clone();
    match url.query_pairs().find(|(key, _)| key == "protocol") {
        Some((_, protocol)) if protocol.eq_ignore_ascii_case("resp3") => {}
        Some((_, protocol)) => {
            anyhow::bail!("--redis-url asks for protocol={protocol}; the adapter needs resp3")
        }
        None => {
            url.query_pairs_mut().append_pair("protocol", "resp3");
        }
    }
    Ok(url)
}

/// Connects to Redis and starts the link's monitor (stopped with the
/// returned handle).
pub async fn connect(url: &Url) -> anyhow::Result<(RedisDriver, Link, tokio::task::AbortHandle)> {
    let client = redis::Client::open(resp3(url)?.as_str()).context("invalid --redis-url")?;
    let handlers: Handlers = Arc::default();
    let (up, link) = watch::channel(LinkState {
        up: true,
        reconnects: 0,
    });
    let up = Arc::new(up);
    let push = {
        let handlers = handlers.clone();
        let up = up.clone();
        move |push: PushInfo| {
            route(push, &handlers, &up);
            Ok::<(), std::convert::Infallible>(())
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_push_sender(push)
        .set_automatic_resubscription();
    let conn = ConnectionManager::new_with_config(client, config)
        .await
        .with_context(|| format!("cannot reach Redis at {url}"))?;
    let monitor = tokio::spawn(monitor(conn.clone(), up)).abort_handle();
    let link = Link {
        state: link,
        seen_reconnects: 0,
    };
    Ok((RedisDriver { conn, handlers }, link, monitor))
}

/// Hands a pub/sub message to the adapter; notes a lost connection.
fn route(push: PushInfo, handlers: &Handlers, up: &watch::Sender<LinkState>) {
    match push.kind {
        PushKind::Disconnection if set_up(up, false) => {
            tracing::warn!("lost the connection to Redis: cross-node delivery paused");
        }
        PushKind::Message | PushKind::SMessage => {
            let mut data = push.data.into_iter();
            let (Some(channel), Some(message)) = (data.next(), data.next()) else {
                return;
            };
            let (Ok(channel), Ok(message)) = (
                redis::from_redis_value::<String>(channel),
                redis::from_redis_value::<Vec<u8>>(message),
            ) else {
                tracing::warn!("unreadable Redis pub/sub message");
                return;
            };
            let Ok(handlers) = handlers.read() else {
                return;
            };
            if let Some(handler) = handlers.get(&channel)
                && let Err(error) = handler.try_send((channel, message))
            {
                tracing::warn!(%error, "adapter is not keeping up with Redis messages");
            }
        }
        _ => {}
    }
}

/// Pings Redis forever: the ping keeps a quiet node reconnecting, and its
/// answer is the link's state (a reconnected connection has subscribed
/// again before it answers).
async fn monitor(mut conn: ConnectionManager, up: Arc<watch::Sender<LinkState>>) {
    let mut ticks = tokio::time::interval(PING_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        let answered = matches!(tokio::time::timeout(REDIS_TIMEOUT, ping).await, Ok(Ok(_)));
        let was_up = set_up(&up, answered);
        if answered && !was_up {
            tracing::info!("reconnected to Redis: cross-node delivery resumed");
        } else if !answered && was_up {
            tracing::warn!("Redis does not answer: cross-node delivery paused");
        }
    }
}

impl Driver for RedisDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, ()>(chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        // Listen before subscribing, so that no early message is dropped.
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(chan.clone(), tx);
        }
        if let Err(error) = self.conn.clone().subscribe(&chan).await {
            if let Ok(mut handlers) = self.handlers.write() {
                handlers.remove(&chan);
            }
            return Err(error);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.remove(&chan);
        }
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_asks_for_resp3() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            resp3(&url("redis://127.0.0.1:6379")).unwrap().as_str(),
            "redis://127.0.0.1:6379?protocol=resp3"
        );
        assert!(resp3(&url("redis://h:1/?protocol=RESP3")).is_ok());
        assert!(resp3(&url("redis://h:1/?protocol=resp2")).is_err());
    }
}
