-- Revocation marks: every token of a client id (kind 'client') or of a user id
-- (kind 'user') issued at or before revoked_at is dead. Written when a client is
-- deleted or a user disabled or deleted, in the same transaction; read with every
-- introspection: JWTs are not stored, and this is how they end with their holder.
-- Kept for good: one row per subject, and a mark must outlive every token it ends.
CREATE TABLE revoked_subjects (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
