CREATE TABLE campaigns (
    id                text        PRIMARY KEY,
    account_id        text        NOT NULL,
    name              text        NOT NULL,
    body              text        NOT NULL,
    target_groups     text[]      NOT NULL,
    state             text        NOT NULL CHECK (state IN ('DRAFT', 'SENDING', 'SENT')),
    -- True once every recipient row of the audience is written: a resumed send does not
    -- resolve the audience again.
    audience_resolved boolean     NOT NULL DEFAULT false,
    audience          integer     NOT NULL DEFAULT 0,
    sent              integer     NOT NULL DEFAULT 0,
    failed            integer     NOT NULL DEFAULT 0,
    skipped_opted_out integer     NOT NULL DEFAULT 0,
    start_time        timestamptz,
    finish_time       timestamptz,
    create_time       timestamptz NOT NULL
);
CREATE INDEX campaigns_sending ON campaigns (state) WHERE state = 'SENDING';

-- One row per (campaign, contact), written as pending (or skipped) before any provider call
-- and updated with the result after it. The provider call carries the idempotency key
-- campaign_id:contact_id, so a crash between the call and the update never sends twice.
CREATE TABLE recipients (
    campaign_id  text        NOT NULL REFERENCES campaigns (id),
    contact_id   text        NOT NULL,
    phone        text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    message_id   text        NOT NULL DEFAULT '',
    error        text        NOT NULL DEFAULT '',
    update_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX recipients_pending ON recipients (campaign_id) WHERE state = 'pending';
