-- Dynamic client registration (RFC 7591): the SHA-256 hash of the registration
-- access token that RFC 7592 §2 asks for to read, update or delete the client.
-- NULL for a client not registered that way (made with the CLI or the admin API).
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;

-- Revoking or deleting every token of a client or of a user (client delete,
-- revoke-tokens, user enable) finds its logins and opaque access tokens by holder,
-- without reading the whole table. A user's opaque token names the user id in
-- subject (a client's own token names the client id there).
CREATE INDEX token_families_client ON token_families (client_id);
CREATE INDEX token_families_user ON token_families (user_id);
CREATE INDEX opaque_access_tokens_client ON opaque_access_tokens (client_id);
CREATE INDEX opaque_access_tokens_subject ON opaque_access_tokens (subject);
