-- Registered clients. Secrets are stored only as a hash (SHA-256 for generated
-- secrets, Argon2id for imported ones).
CREATE TABLE clients (
    client_id         TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    secret_hash       TEXT NOT NULL,
    scope             TEXT NOT NULL,
    grant_types       TEXT NOT NULL,
    audience          TEXT,
    access_token_ttl  BIGINT,
    refresh_token_ttl BIGINT,
    token_format      TEXT NOT NULL,
    can_introspect    BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- Signing keys, private halves sealed with AES-256-GCM under the master key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    sealed_private_key BYTEA NOT NULL,
    is_current         BOOLEAN NOT NULL,
    created_at         BIGINT NOT NULL,
    publish_until      BIGINT
);
-- At most one current key, so racing processes cannot both create the first one.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (is_current) WHERE is_current;

-- Admin changes, followed by running servers to drop stale cache entries.
CREATE TABLE changes (
    id   BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
