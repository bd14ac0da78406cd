-- SyncScript schema (SQLite). Ids are UUIDv7 text, times RFC 3339 UTC text
-- with millisecond precision (so that text order is time order).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE vaults (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    event_seq  INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT
);

CREATE TABLE vault_users (
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('owner', 'contributor', 'viewer')),
    added_at TEXT NOT NULL,
    PRIMARY KEY (vault_id, user_id)
);
CREATE INDEX vault_users_user_id ON vault_users (user_id);

CREATE TABLE sources (
    id         TEXT PRIMARY KEY,
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    file_url   TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sources_vault_id ON sources (vault_id, created_at);

CREATE TABLE vault_events (
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    actor_id   TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (vault_id, seq)
);
