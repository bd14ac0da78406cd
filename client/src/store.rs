//! The stored sessions file: one login per server, so that commands (and the
//! terminal client) can reuse a token without asking for a password again.
//!
//! Location: `$SYNCSCRIPT_CONFIG_DIR/sessions.json` when that variable is set,
//! else `<config dir>/syncscript/sessions.json` (e.g.
//! `~/.config/syncscript/sessions.json`). The folder is created with mode
//! 0700 and the file with mode 0600: it holds bearer tokens.
//!
//! Format: `{"sessions": {"<server URL, no trailing slash>": {"token",
//! "userId", "email", "name", "expiresAt"}}}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Environment variable that overrides the folder of `sessions.json`.
pub const CONFIG_DIR_ENV: &str = "SYNCSCRIPT_CONFIG_DIR";

/// File name of the store inside its folder.
pub const FILE_NAME: &str = "sessions.json";

/// One login kept for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredLogin {
    pub token: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub expires_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionsFile {
    #[serde(default)]
    sessions: BTreeMap<String, StoredLogin>,
}

/// The sessions file, loaded in memory; `put` and `remove` write it back.
#[derive(Debug)]
pub struct LoginStore {
    path: PathBuf,
    file: SessionsFile,
}

/// The server URL as a store key: without trailing slashes.
pub fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

/// Where the sessions file lives (see the module documentation).
pub fn default_path() -> Result<PathBuf, ClientError> {
    match std::env::var_os(CONFIG_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join(FILE_NAME)),
        _ => dirs::config_dir()
            .map(|dir| dir.join("syncscript").join(FILE_NAME))
            .ok_or(ClientError::NoConfigDir {
                env: CONFIG_DIR_ENV,
            }),
    }
}

impl LoginStore {
    /// Opens the store at its default location (an absent file is empty).
    pub fn open() -> Result<LoginStore, ClientError> {
        LoginStore::open_at(default_path()?)
    }

    /// Opens the store at `path` (an absent file is empty).
    pub fn open_at(path: impl Into<PathBuf>) -> Result<LoginStore, ClientError> {
        let path = path.into();
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ClientError::Format {
                path: path.clone(),
                source: Arc::new(source),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => SessionsFile::default(),
            Err(source) => {
                return Err(ClientError::Io {
                    path,
                    source: Arc::new(source),
                });
            }
        };
        Ok(LoginStore { path, file })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session kept for `server`, if any.
    pub fn get(&self, server: &str) -> Option<StoredLogin> {
        self.file.sessions.get(&server_key(server)).cloned()
    }

    /// Keeps `session` for `server` (replacing any previous one) and saves.
    pub fn put(&mut self, server: &str, session: StoredLogin) -> Result<(), ClientError> {
        self.file.sessions.insert(server_key(server), session);
        self.save()
    }

    /// Forgets the session of `server` and saves.
    pub fn remove(&mut self, server: &str) -> Result<(), ClientError> {
        self.file.sessions.remove(&server_key(server));
        self.save()
    }

    /// Writes the file through a private temporary file renamed into place,
    /// so that a crash never leaves half a file and no other user can read
    /// a token even for a moment.
    fn save(&self) -> Result<(), ClientError> {
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source: Arc::new(source),
        };
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(io)?;
        }
        let json = serde_json::to_vec_pretty(&self.file).map_err(|source| ClientError::Format {
            path: self.path.clone(),
            source: Arc::new(source),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = private_file(&tmp).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A leftover temporary file keeps its old mode: tighten it either way.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(token: &str) -> StoredLogin {
        StoredLogin {
            token: token.into(),
            user_id: "u1".into(),
            email: "a@b.org".into(),
            name: "Ada".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn put_get_remove_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(FILE_NAME);
        let mut store = LoginStore::open_at(&path).unwrap();
        assert_eq!(store.get("http://h:1"), None);
        store.put("http://h:1/", session("t1")).unwrap();

        let reopened = LoginStore::open_at(&path).unwrap();
        assert_eq!(reopened.get("http://h:1"), Some(session("t1")));
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["sessions"]["http://h:1"]["token"], "t1");
        assert_eq!(raw["sessions"]["http://h:1"]["userId"], "u1");
        assert_eq!(
            raw["sessions"]["http://h:1"]["expiresAt"],
            "2030-01-01T00:00:00Z"
        );

        let mut store = reopened;
        store.remove("http://h:1").unwrap();
        assert_eq!(LoginStore::open_at(&path).unwrap().get("http://h:1"), None);
    }

    #[cfg(unix)]
    #[test]
    fn file_and_folder_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cfg");
        let path = folder.join(FILE_NAME);
        let mut store = LoginStore::open_at(&path).unwrap();
        store.put("http://h:1", session("t1")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&folder), 0o700);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            LoginStore::open_at(&path),
            Err(ClientError::Format { .. })
        ));
    }
}
