-- The latest state of each (event, webhook) delivery, with the payload, so a dead-lettered
-- delivery can be redelivered.
CREATE TABLE deliveries (
    delivery_id     text PRIMARY KEY,
    webhook_id      text NOT NULL,
    account_id      text NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    payload         bytea NOT NULL,
    outcome         smallint NOT NULL,
    attempts        integer NOT NULL,
    last_attempt_at timestamptz NOT NULL
);

CREATE INDEX deliveries_webhook_failed ON deliveries (webhook_id, last_attempt_at) WHERE outcome = 3;
CREATE INDEX deliveries_last_attempt ON deliveries (last_attempt_at);

-- One row per attempt, partitioned by day; the retention job creates upcoming partitions and
-- drops expired ones. Partitions are named delivery_attempts_pYYYYMMDD.
CREATE TABLE delivery_attempts (
    attempt_time    timestamptz NOT NULL,
    attempt_id      text NOT NULL,
    delivery_id     text NOT NULL,
    account_id      text NOT NULL,
    webhook_id      text NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    url             text NOT NULL,
    attempt         integer NOT NULL,
    outcome         smallint NOT NULL,
    test            boolean NOT NULL,
    request_headers jsonb NOT NULL,
    response_status integer NOT NULL,
    response_body   text NOT NULL,
    duration_ms     bigint NOT NULL,
    error           text NOT NULL,
    next_retry_at   timestamptz,
    PRIMARY KEY (attempt_time, attempt_id)
) PARTITION BY RANGE (attempt_time);

CREATE INDEX delivery_attempts_account_time ON delivery_attempts (account_id, attempt_time DESC, attempt_id DESC);
CREATE INDEX delivery_attempts_webhook_time ON delivery_attempts (webhook_id, attempt_time DESC);
