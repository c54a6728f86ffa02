-- Client authentication beyond a shared secret (private_key_jwt, RFC 7523 §2.2;
-- tls_client_auth and self_signed_tls_client_auth, RFC 8705 §2), and certificate-
-- bound access tokens (RFC 8705 §3). Every existing client keeps authenticating with
-- its secret. jwks is the client's JWK Set as JSON text; tls_subject_dn is in the
-- canonical form gatehouse compares certificates' subjects in. bound_tokens is
-- declared BOOLEAN, as the other flags are here (SQLite stores 0 or 1 either way).
ALTER TABLE clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN tls_subject_dn TEXT;
ALTER TABLE clients ADD COLUMN bound_tokens BOOLEAN NOT NULL DEFAULT 0;

-- What an opaque access token is bound to (RFC 7800 cnf), as JSON; NULL if nothing.
ALTER TABLE opaque_access_tokens ADD COLUMN cnf TEXT;

-- Single-use values already used (client assertion jti, RFC 7523 §3 item 7), by a
-- SHA-256 digest of the value and what it belongs to, kept until the value could not
-- be accepted anyway. Small fixed-size rows keyed by a random digest: stored in the
-- primary key's b-tree (WITHOUT ROWID), not in a rowid table beside it.
CREATE TABLE used_jtis (
    digest     BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);
