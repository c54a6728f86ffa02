-- `client rotate-secret --grace`: the replaced secret keeps working until
-- previous_secret_expires_at, so that a fleet can roll over without downtime.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
