-- An account's numbers. The carrier auth token is write-only: it validates inbound signatures
-- and is never returned by the API or logged.
CREATE TABLE numbers (
    phone_number       text        PRIMARY KEY,
    account_id         text        NOT NULL,
    carrier_auth_token text        NOT NULL,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX numbers_account ON numbers (account_id);

CREATE TABLE keywords (
    account_id  text        NOT NULL,
    keyword     text        NOT NULL,
    groups      text[]      NOT NULL,
    reply       text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, keyword)
);

-- The journal of inbound messages, one row per carrier MessageSid. A row is written before any
-- side effect and marked done in the transaction that adds its events to the outbox, so a
-- carrier retry resumes an interrupted message and never duplicates a handled one.
CREATE TABLE inbound_messages (
    account_id      text        NOT NULL,
    message_sid     text        NOT NULL,
    message_id      text        NOT NULL UNIQUE,
    contact_id      text        NOT NULL,
    sender          text        NOT NULL,
    recipient       text        NOT NULL,
    body            text        NOT NULL,
    kind            text        NOT NULL,
    word            text        NOT NULL,
    contact_created boolean     NOT NULL,
    opt_changed     boolean     NOT NULL DEFAULT false,
    done            boolean     NOT NULL DEFAULT false,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, message_sid)
);
