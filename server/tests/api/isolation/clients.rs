//! The clients: what each knows of a vault, built only from what its
//! sockets received, and what the server holds, read back at the end.

use super::*;

/// What a client knows of one vault, built from what its sockets received.
#[derive(Debug, Clone, Default)]
pub(super) struct View {
    pub(super) last: i64,
    pub(super) name: String,
    pub(super) sources: BTreeMap<String, Value>,
    /// User id → role.
    pub(super) members: BTreeMap<String, String>,
    /// Events received ahead of a gap, by seq.
    pub(super) buffer: BTreeMap<i64, Entry>,
}

impl View {
    pub(super) fn new(vault: &Vault) -> View {
        View {
            name: vault.name.clone(),
            members: BTreeMap::from([(vault.created_by.clone(), "owner".into())]),
            ..View::default()
        }
    }

    /// Rule 2 of the catch-up: in seq order, exactly once.
    pub(super) fn offer(&mut self, name: &str, payload: &Value) {
        let Some(seq) = payload["seq"].as_i64() else {
            return;
        };
        if seq <= self.last {
            return;
        }
        self.buffer.insert(seq, (name.to_owned(), payload.clone()));
        while let Some((name, payload)) = self.buffer.remove(&(self.last + 1)) {
            self.apply(&name, &payload);
            self.last += 1;
        }
    }

    pub(super) fn apply(&mut self, name: &str, payload: &Value) {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        match name {
            names::SOURCE_CREATED | names::SOURCE_UPDATED => {
                let source = &payload["source"];
                self.sources.insert(text(&source["id"]), source.clone());
            }
            names::SOURCE_DELETED => {
                self.sources.remove(&text(&payload["sourceId"]));
            }
            names::MEMBER_ADDED | names::MEMBER_UPDATED => {
                let member = &payload["member"];
                self.members
                    .insert(text(&member["userId"]), text(&member["role"]));
            }
            names::MEMBER_REMOVED => {
                self.members.remove(&text(&payload["member"]["userId"]));
            }
            names::VAULT_UPDATED => self.name = text(&payload["vault"]["name"]),
            _ => {}
        }
    }
}

/// One session of a user, with its socket (if connected), everything its
/// sockets received and its views.
pub(super) struct Client {
    pub(super) user: usize,
    pub(super) token: String,
    /// The token was logged out (and not replaced yet).
    pub(super) revoked: bool,
    pub(super) socket: Option<TestSocket>,
    pub(super) log: Vec<Entry>,
    pub(super) views: Vec<View>,
    /// Vaults its socket is in (rejoined after a reconnect).
    pub(super) watching: BTreeSet<usize>,
    /// Vaults that answered a join with `vault:resync`.
    pub(super) resync: BTreeSet<usize>,
}

/// A short rendering of an entry's data for failure messages.
pub(super) fn brief(data: &Value) -> String {
    let mut text = data.to_string();
    if text.len() > 160 {
        let mut cut = 160;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

pub(super) fn sources_by_id(snapshot: &Value) -> BTreeMap<String, Value> {
    snapshot["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| (s["id"].as_str().expect("source id").to_owned(), s.clone()))
        .collect()
}

pub(super) fn members_by_id(members: &Value) -> BTreeMap<String, String> {
    members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().expect("user id").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect()
}

/// A vault as the server has it at the end.
pub(super) struct ServerVault {
    pub(super) seq: i64,
    pub(super) name: String,
    pub(super) sources: BTreeMap<String, Value>,
    pub(super) members: BTreeMap<String, String>,
}

impl ServerVault {
    pub(super) async fn read(app: &TestApp, token: &str, vault_id: &str) -> ServerVault {
        let get = |path: String| async move {
            let (answer, body) = rest(app, token, Method::GET, &path, None).await;
            assert!(answer.is_ok(), "GET {path}: {answer}");
            body
        };
        let snapshot = get(format!("/api/vaults/{vault_id}/sources")).await;
        let vault = get(format!("/api/vaults/{vault_id}")).await;
        let members = get(format!("/api/vaults/{vault_id}/members")).await;
        ServerVault {
            seq: snapshot["seq"].as_i64().expect("seq"),
            name: vault["vault"]["name"].as_str().expect("name").to_owned(),
            sources: sources_by_id(&snapshot),
            members: members_by_id(&members),
        }
    }
}

/// A vault's whole log, as (name, payload).
pub(super) async fn read_log(app: &TestApp, token: &str, vault_id: &str) -> Vec<Entry> {
    app.event_log(token, vault_id)
        .await
        .into_iter()
        .map(|event| (event.name, event.payload))
        .collect()
}
