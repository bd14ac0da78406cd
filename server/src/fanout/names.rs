//! The names of the rooms only the server uses; those a client may need
//! to know of (`vault:{id}`, `user:{id}`, `session:{id}`) are in
//! `syncscript-protocol`.

/// The room in which one socket watches one vault: its name carries the
/// user, so that one adapter request (the rooms of a vault room's sockets)
/// counts every user's watchers on every node.
pub fn watcher_room(vault_id: &str, user_id: &str, socket_id: &str) -> String {
    format!("vault:{vault_id}:watcher:{user_id}:{socket_id}")
}

/// The prefix of every watcher room of a vault.
pub fn watcher_prefix(vault_id: &str) -> String {
    format!("vault:{vault_id}:watcher:")
}

/// The room a socket is in while its `vault:join` runs: a catch-up
/// replays only while the socket is still in it, and an eviction takes the
/// member's sockets out of it.
pub fn joining_room(vault_id: &str) -> String {
    format!("vault:{vault_id}:joining")
}

/// The vault id of a `vault:{vaultId}` room (not of its sub-rooms).
pub fn vault_of_room(room: &str) -> Option<&str> {
    room.strip_prefix("vault:")
        .filter(|rest| !rest.contains(':'))
}

/// The vault of a `vault:{vaultId}` room or of its `joining` room: the
/// vaults a socket watches or is joining.
pub fn watched_or_joining(room: &str) -> Option<&str> {
    let rest = room.strip_prefix("vault:")?;
    match rest.split_once(':') {
        None => Some(rest),
        Some((vault, "joining")) => Some(vault),
        Some(_) => None,
    }
}

/// Whether `room` is a watcher room (one socket watching one vault).
pub fn is_watcher_room(room: &str) -> bool {
    room.starts_with("vault:") && room.contains(":watcher:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_vault_rooms_name_a_vault() {
        assert_eq!(vault_of_room("vault:abc"), Some("abc"));
        assert_eq!(vault_of_room("vault:abc:watcher:u:s"), None);
        assert_eq!(vault_of_room("user:abc"), None);
    }

    #[test]
    fn joining_rooms_count_as_watched() {
        assert_eq!(watched_or_joining(&joining_room("abc")), Some("abc"));
        assert_eq!(watched_or_joining("vault:abc"), Some("abc"));
        assert_eq!(watched_or_joining(&watcher_room("abc", "u", "s")), None);
        assert!(is_watcher_room(&watcher_room("abc", "u", "s")));
        assert!(watcher_room("abc", "u", "s").starts_with(&watcher_prefix("abc")));
    }
}
