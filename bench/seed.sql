-- Bulk data for bench/nodes.sh, PostgreSQL only. Run with psql variables:
--   clients         clients seed-<i> (secret seed-secret-<i>, stored as SHA-256)
--                   for i in [from_client, clients]
--   refresh_tokens  live refresh tokens (one login each) for i in [from_token,
--                   refresh_tokens], of client seed-1, never presented
-- Each INSERT is one statement over generate_series: no per-row round trips.
\set ON_ERROR_STOP on
INSERT INTO clients (client_id, name, secret_hash, scope, grant_types, audience, access_token_ttl,
                     refresh_token_ttl, token_format, can_introspect, created_at, updated_at)
SELECT 'seed-' || i, 'seed', 'sha256$' || rtrim(translate(encode(sha256(convert_to('seed-secret-' || i, 'UTF8')), 'base64'), '+/', '-_'), '='),
       'read write', 'client_credentials refresh_token', NULL, NULL, NULL, 'jwt', false,
       extract(epoch from now())::bigint, extract(epoch from now())::bigint
FROM generate_series(:from_client, :clients) AS i;

INSERT INTO token_families (family_id, client_id, user_id, scope, created_at, expires_at, revoked_at)
SELECT 'seedfam-' || i, 'seed-1', NULL, 'read', extract(epoch from now())::bigint,
       extract(epoch from now())::bigint + 86400 * 30, NULL
FROM generate_series(:from_token, :refresh_tokens) AS i;

INSERT INTO refresh_tokens (token_hash, family_id, client_id, issued_at, expires_at, used_at)
SELECT sha256(convert_to('seed-refresh-' || i, 'UTF8')), 'seedfam-' || i, 'seed-1',
       extract(epoch from now())::bigint, extract(epoch from now())::bigint + 86400 * 30, NULL
FROM generate_series(:from_token, :refresh_tokens) AS i;

ANALYZE clients;
ANALYZE token_families;
ANALYZE refresh_tokens;
