-- Registered clients. Secrets are stored only as a hash (SHA-256 for generated
-- secrets, Argon2id for imported ones).
CREATE TABLE clients (
    client_id         TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    secret_hash       TEXT NOT NULL,
    scope             TEXT NOT NULL,
    grant_types       TEXT NOT NULL,
    audience          TEXT,
    access_token_ttl  INTEGER,
    refresh_token_ttl INTEGER,
    token_format      TEXT NOT NULL,
    can_introspect    BOOLEAN NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- Signing keys, private halves sealed with AES-256-GCM under the master key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    is_current         BOOLEAN NOT NULL,
    created_at         INTEGER NOT NULL,
    publish_until      INTEGER
);
-- At most one current key, so racing processes cannot both create the first one.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (is_current) WHERE is_current;

-- Admin changes, followed by running servers to drop stale cache entries.
CREATE TABLE changes (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes (at);
