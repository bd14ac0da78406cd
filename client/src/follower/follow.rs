//! [`Follow`]: a [`Follower`] over a [`SocketClient`].

use std::collections::VecDeque;
use std::time::Duration;

use syncscript_protocol::{Resync, names};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Follower, GAP_WAIT, Rejoin};
use crate::sequencer::{Offered, Sequenced};
use crate::socket::{Incoming, SocketClient};

/// What a [`Follow`] reports, in order.
#[derive(Debug, Clone)]
pub enum Update {
    /// Events of `vault_id` now applied, in seq order, each exactly once.
    Applied {
        vault_id: String,
        events: Vec<Sequenced>,
    },
    /// A sequenced event as it arrived, before it is ordered (duplicates
    /// included); only with [`Follow::reporting_received`].
    Received { vault_id: String, event: Sequenced },
    /// A sequenced event of a vault that is not followed (or no longer):
    /// none should come.
    Foreign { vault_id: String, event: Sequenced },
    /// `vault:resync`: the events up to `seq` are gone from the log; the
    /// vault continues from `seq`, and the application reloads its
    /// snapshot.
    Resync(Resync),
    /// The vault is behind the head the server announced: a rejoin from the
    /// last applied seq is under way.
    CatchingUp {
        vault_id: String,
        head: i64,
        last: i64,
    },
    /// The vault stayed behind: it was rejoined from `since`.
    Rejoined(Rejoin),
    /// The vault stayed behind through [`MAX_REJOINS`] rejoins (they are
    /// refused, or the missing events never come): it is no longer
    /// followed, and the application decides what to do (reload, or stop).
    GaveUp(Rejoin),
    /// Anything else the socket reported: the connection's state, joins
    /// (`vault:joined`), `vault:removed` (the vault is no longer followed),
    /// presence, errors.
    Socket(Incoming),
}

/// Rejoins of one gap before a [`Follow`] gives the vault up: a rejoin that
/// is refused (the vault was deleted, or the user removed, while events
/// were held back) would otherwise be sent again every gap wait, forever.
pub const MAX_REJOINS: u32 = 10;

/// A [`Follower`] over a [`SocketClient`].
pub struct Follow {
    socket: SocketClient,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    follower: Follower,
    updates: VecDeque<Update>,
    received: bool,
}

impl Follow {
    /// Connects to `server_url` with `token`; rejoins after [`GAP_WAIT`].
    pub fn start(server_url: &str, token: &str) -> Follow {
        let (socket, incoming) = SocketClient::start(server_url, token);
        Follow {
            socket,
            incoming,
            follower: Follower::new(GAP_WAIT),
            updates: VecDeque::new(),
            received: false,
        }
    }

    /// This follow, rejoining a vault behind for `gap_wait` instead.
    pub fn with_gap_wait(mut self, gap_wait: Duration) -> Follow {
        self.follower.gap_wait = gap_wait;
        self
    }

    /// This follow, also reporting every sequenced event as it arrived
    /// ([`Update::Received`]).
    pub fn reporting_received(mut self) -> Follow {
        self.received = true;
        self
    }

    /// Follows `vault_id` from `since`: joins it, and joins it again from
    /// the last applied seq on every reconnect.
    pub fn follow(&mut self, vault_id: &str, since: i64) {
        self.follower.follow(vault_id, since);
        self.socket.join(vault_id, since);
    }

    /// Stops following `vault_id` and leaves it.
    pub fn unfollow(&mut self, vault_id: &str) {
        self.follower.unfollow(vault_id);
        self.socket.leave(vault_id);
    }

    /// The last applied seq of `vault_id`.
    pub fn last(&self, vault_id: &str) -> Option<i64> {
        self.follower.last(vault_id)
    }

    /// The socket, for commands.
    pub fn socket(&self) -> &SocketClient {
        &self.socket
    }

    /// The next update; `None` once the socket has stopped.
    pub async fn next(&mut self) -> Option<Update> {
        loop {
            if let Some(update) = self.updates.pop_front() {
                return Some(update);
            }
            let wake = self.follower.next_due();
            tokio::select! {
                item = self.incoming.recv() => self.take(item?, Instant::now()),
                () = sleep_until(wake), if wake.is_some() => {
                    for rejoin in self.follower.due(Instant::now()) {
                        if rejoin.attempt > MAX_REJOINS {
                            self.unfollow(&rejoin.vault_id);
                            self.updates.push_back(Update::GaveUp(rejoin));
                        } else {
                            self.socket.join(&rejoin.vault_id, rejoin.since);
                            self.updates.push_back(Update::Rejoined(rejoin));
                        }
                    }
                }
            }
        }
    }

    /// Disconnects and stops the socket.
    pub async fn close(self) {
        self.socket.close().await;
    }

    fn take(&mut self, item: Incoming, now: Instant) {
        match item {
            Incoming::Event { vault_id, event } => {
                if self.received {
                    self.updates.push_back(Update::Received {
                        vault_id: vault_id.clone(),
                        event: event.clone(),
                    });
                }
                match self
                    .follower
                    .event(&vault_id, event.seq, event.clone(), now)
                {
                    Some(Offered::Ready(events)) => self.applied(vault_id, events),
                    Some(Offered::Buffered | Offered::Duplicate) => {}
                    None => self.updates.push_back(Update::Foreign { vault_id, event }),
                }
            }
            Incoming::Joined(joined) => {
                self.follower.joined(&joined, now);
                self.updates
                    .push_back(Update::Socket(Incoming::Joined(joined)));
            }
            Incoming::Head(head) => {
                let last = self.follower.last(&head.vault_id);
                if self.follower.head(&head, now)
                    && let Some(last) = last
                {
                    self.updates.push_back(Update::CatchingUp {
                        vault_id: head.vault_id,
                        head: head.seq,
                        last,
                    });
                }
            }
            Incoming::Resync(resync) => {
                let events = self.follower.reset(&resync.vault_id, resync.seq, now);
                if self.follower.follows(&resync.vault_id) {
                    self.socket.applied(&resync.vault_id, resync.seq);
                }
                let vault_id = resync.vault_id.clone();
                self.updates.push_back(Update::Resync(resync));
                self.applied(vault_id, events);
            }
            Incoming::Removed(removed) => {
                self.follower.unfollow(&removed.vault_id);
                self.updates
                    .push_back(Update::Socket(Incoming::Removed(removed)));
            }
            other => self.updates.push_back(Update::Socket(other)),
        }
    }

    /// Reports `events` applied: to the socket (its rejoins ask for what
    /// follows) and to the application. After `vault:deleted` the vault is
    /// no longer followed.
    fn applied(&mut self, vault_id: String, events: Vec<Sequenced>) {
        let Some(last) = events.last().map(|event| event.seq) else {
            return;
        };
        if events
            .iter()
            .any(|event| event.name == names::VAULT_DELETED)
        {
            self.follower.unfollow(&vault_id);
        } else {
            self.socket.applied(&vault_id, last);
        }
        self.updates.push_back(Update::Applied { vault_id, events });
    }
}

/// Sleeps until `wake` (never without one; the `select!` guard keeps it
/// from being polled then).
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(wake).await,
        None => std::future::pending().await,
    }
}
