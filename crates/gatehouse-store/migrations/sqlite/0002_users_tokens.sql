-- Users of the password grant; passwords stored with Argon2id only.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    scope         TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Logins (refresh token families): revoking one revokes every token descended from it.
CREATE TABLE token_families (
    family_id  TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX token_families_expires ON token_families (expires_at);

-- Refresh tokens, by SHA-256 digest. used_at is set, once, by the rotation that
-- consumes the token; a token presented again after that revokes its family.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Opaque access tokens, by SHA-256 digest.
CREATE TABLE opaque_access_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    jti        TEXT NOT NULL,
    family_id  TEXT,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    username   TEXT,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX opaque_access_tokens_expires ON opaque_access_tokens (expires_at);

-- Revoked JWT access tokens, kept until the token would have expired anyway.
CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_jtis_expires ON revoked_jtis (expires_at);
