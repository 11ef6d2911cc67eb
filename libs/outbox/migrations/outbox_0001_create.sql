-- The transactional outbox: a domain change and its event commit together; the relay publishes
-- rows to JetStream and deletes them once JetStream has acknowledged them.
CREATE TABLE outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text        NOT NULL UNIQUE,
    subject    text        NOT NULL,
    body       bytea       NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
