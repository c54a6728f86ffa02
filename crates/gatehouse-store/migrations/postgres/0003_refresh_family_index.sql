-- Logins are deleted once no refresh token of theirs is left: find those by family.
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
