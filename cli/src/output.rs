//! How results are shown: compact JSON for scripts (`--json`), tables and
//! one-line summaries for people.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;
use syncscript_protocol::{EventKind, LoggedEvent, Member, Source, VaultEvent, VaultSummary};

/// Prints `value` as one line of JSON.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// A table with `header`, ready for rows.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    table
}

/// The caller's vaults.
pub fn vaults_table(vaults: &[VaultSummary]) -> Table {
    let mut t = table(&["id", "name", "role", "seq"]);
    for vault in vaults {
        t.add_row([
            vault.id.clone(),
            vault.name.clone(),
            vault.role.to_string(),
            vault.seq.to_string(),
        ]);
    }
    t
}

/// A vault's members.
pub fn members_table(members: &[Member]) -> Table {
    let mut t = table(&["user id", "email", "name", "role"]);
    for member in members {
        t.add_row([
            member.user_id.clone(),
            member.email.clone(),
            member.name.clone(),
            member.role.to_string(),
        ]);
    }
    t
}

/// A vault's sources.
pub fn sources_table(sources: &[Source]) -> Table {
    let mut t = table(&["id", "title", "url", "updated"]);
    for source in sources {
        t.add_row([
            source.id.clone(),
            source.title.clone(),
            source.file_url.clone(),
            source.updated_at.clone(),
        ]);
    }
    t
}

/// A page of the event log.
pub fn events_table(events: &[LoggedEvent]) -> Table {
    let mut t = table(&["seq", "event", "actor", "time", "what"]);
    for event in events {
        t.add_row([
            event.seq.to_string(),
            event.name.clone(),
            format!("{} ({})", event.actor.user_name, event.actor.role),
            event.timestamp.clone(),
            describe(&event.name, &event.payload),
        ]);
    }
    t
}

/// What a sequenced event says, in a few words (the raw payload when it
/// does not read as the contract's event).
pub fn describe(name: &str, payload: &Value) -> String {
    match VaultEvent::from_wire(name, payload) {
        Ok(event) => match event.kind {
            EventKind::SourceCreated(source) | EventKind::SourceUpdated(source) => {
                format!("{:?} {} [{}]", source.title, source.file_url, source.id)
            }
            EventKind::SourceDeleted { source_id } => format!("source {source_id}"),
            EventKind::MemberAdded(member)
            | EventKind::MemberUpdated(member)
            | EventKind::MemberRemoved(member) => {
                format!("{} <{}> as {}", member.name, member.email, member.role)
            }
            EventKind::VaultUpdated(vault) => format!("renamed to {:?}", vault.name),
            EventKind::VaultDeleted => "vault deleted".to_owned(),
        },
        Err(_) => payload.to_string(),
    }
}

/// One human-readable line for a live event: `#seq name by actor: what`.
pub fn pretty_event(name: &str, seq: i64, payload: &Value) -> String {
    let actor = payload
        .get("actor")
        .and_then(|actor| {
            let name = actor.get("userName")?.as_str()?;
            let role = actor.get("role")?.as_str()?;
            Some(format!(" by {name} ({role})"))
        })
        .unwrap_or_default();
    format!("#{seq} {name}{actor}: {}", describe(name, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn source_events_read_as_title_url_and_id() {
        let payload = json!({
            "vaultId": "v1", "seq": 4, "timestamp": "2026-01-01T00:00:00Z",
            "actor": {"userId": "u1", "userName": "Ada", "role": "owner"},
            "source": {"id": "s1", "vaultId": "v1", "title": "Paper", "fileUrl": "https://x.org/p.pdf",
                       "createdBy": "u1", "createdAt": "t", "updatedAt": "t"}
        });
        assert_eq!(
            pretty_event("source:created", 4, &payload),
            "#4 source:created by Ada (owner): \"Paper\" https://x.org/p.pdf [s1]"
        );
    }

    #[test]
    fn unknown_payloads_are_shown_raw() {
        let payload = json!({"seq": 1});
        assert_eq!(describe("source:created", &payload), payload.to_string());
    }
}
