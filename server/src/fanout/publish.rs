//! The one publish step. A committed event leaves this node through its
//! vault's line ([`line`](super::line)), reaches the vault's room on every
//! node, and then does to rooms what its kind asks, before the line moves
//! on to the vault's next event. What each kind does is decided here, in
//! [`Effect::of`], and nowhere else.

use std::time::Instant;

use syncscript_protocol::EventKind;

use crate::fanout::Fanout;
use crate::fanout::members::live_sessions;

/// A committed event, as broadcast: its seq, name and payload, and what it
/// does to rooms.
#[derive(Debug)]
pub struct Committed {
    pub seq: i64,
    pub name: &'static str,
    pub payload: serde_json::Value,
    pub effect: Effect,
}

/// What an event does to rooms once its vault's room has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the broadcast.
    Nothing,
    /// A member was removed: their sockets leave the vault's rooms (and
    /// get `vault:removed`) before any later event of the vault is
    /// broadcast, and the vault's presence is signalled again.
    Evict { user_id: String },
    /// A role changed: the vault's presence (which carries roles) is
    /// signalled again.
    Presence,
    /// The vault was deleted: every socket leaves its room.
    Close,
}

impl Effect {
    /// What an event of `kind` does to rooms.
    pub fn of(kind: &EventKind) -> Effect {
        match kind {
            EventKind::MemberRemoved(member) => Effect::Evict {
                user_id: member.user_id.clone(),
            },
            EventKind::MemberUpdated(_) => Effect::Presence,
            EventKind::VaultDeleted => Effect::Close,
            EventKind::SourceCreated(_)
            | EventKind::SourceUpdated(_)
            | EventKind::SourceDeleted { .. }
            | EventKind::MemberAdded(_)
            | EventKind::VaultUpdated(_) => Effect::Nothing,
        }
    }
}

impl Fanout {
    /// Broadcasts a committed event to the vault's room (in its line's
    /// turn), then applies its effect.
    pub(super) async fn deliver(&self, vault_id: &str, event: Committed) {
        let started = Instant::now();
        let sockets = self
            .rooms
            .broadcast_to_vault(
                vault_id,
                event.name,
                &event.payload,
                live_sessions(&self.db, vault_id),
            )
            .await;
        self.announced.delivered(vault_id, event.seq);
        self.metrics.published(sockets, started.elapsed());
        match event.effect {
            Effect::Nothing => {}
            Effect::Evict { user_id } => {
                self.rooms.evict_member(vault_id, &user_id).await;
                self.request_presence(vault_id.to_owned());
            }
            Effect::Presence => self.request_presence(vault_id.to_owned()),
            Effect::Close => self.rooms.close_vault(vault_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncscript_protocol::{Member, Role, VaultRef};

    #[test]
    fn each_kind_has_its_effect() {
        let member = Member {
            user_id: "u".into(),
            email: "u@example.org".into(),
            name: "U".into(),
            role: Role::Viewer,
        };
        assert_eq!(
            Effect::of(&EventKind::MemberRemoved(member.clone())),
            Effect::Evict {
                user_id: "u".into()
            }
        );
        assert_eq!(
            Effect::of(&EventKind::MemberUpdated(member.clone())),
            Effect::Presence
        );
        assert_eq!(Effect::of(&EventKind::VaultDeleted), Effect::Close);
        assert_eq!(Effect::of(&EventKind::MemberAdded(member)), Effect::Nothing);
        let renamed = VaultRef {
            id: "v".into(),
            name: "V".into(),
        };
        assert_eq!(
            Effect::of(&EventKind::VaultUpdated(renamed)),
            Effect::Nothing
        );
    }
}
