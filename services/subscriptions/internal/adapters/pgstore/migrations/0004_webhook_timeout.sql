-- A webhook's own request timeout in seconds; 0 means the platform default.
ALTER TABLE webhooks ADD COLUMN timeout_seconds integer NOT NULL DEFAULT 0
    CHECK (timeout_seconds BETWEEN 0 AND 30);
