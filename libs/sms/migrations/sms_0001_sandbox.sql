-- Messages handed to the sandbox SMS provider. The sandbox never touches the network: this table
-- is what tests and `make dev` read to see what would have been sent. idempotency_key makes a
-- repeated send (a retry after a crash) a no-op.
CREATE TABLE sandbox_messages (
    id              text        PRIMARY KEY,
    account_id      text        NOT NULL,
    sender          text        NOT NULL,
    recipient       text        NOT NULL,
    body            text        NOT NULL,
    idempotency_key text        UNIQUE,
    send_time       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_messages_account_recipient ON sandbox_messages (account_id, recipient, send_time);
