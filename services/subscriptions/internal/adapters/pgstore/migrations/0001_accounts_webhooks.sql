CREATE TABLE accounts (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email      text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'manager', 'user')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, email)
);

-- API keys are stored as SHA-256 hashes of the random key; the key itself is shown once.
CREATE TABLE api_keys (
    key_hash   bytea PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- version comes from one sequence, so it increases on every change of every webhook.
CREATE SEQUENCE webhook_version;

-- Secrets (auth value, signing secrets) are AES-GCM ciphertexts "<key-id>:<base64>".
CREATE TABLE webhooks (
    id                     text PRIMARY KEY,
    account_id             text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                    text NOT NULL,
    event_types            text[] NOT NULL,
    enabled                boolean NOT NULL,
    description            text NOT NULL DEFAULT '',
    auth_kind              text NOT NULL CHECK (auth_kind IN ('none', 'api_key', 'bearer')),
    auth_header_name       text NOT NULL DEFAULT '',
    auth_value_sealed      text NOT NULL DEFAULT '',
    secret_sealed          text NOT NULL,
    prev_secret_sealed     text NOT NULL DEFAULT '',
    prev_secret_expires_at timestamptz,
    disabled_reason        text NOT NULL DEFAULT '',
    -- When the webhook was last enabled and last delivered successfully: auto-disable counts
    -- failure time from the later of the two.
    enabled_at             timestamptz NOT NULL DEFAULT now(),
    last_success_at        timestamptz,
    version                bigint NOT NULL DEFAULT nextval('webhook_version'),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_account_id ON webhooks (account_id, id);
