-- API keys become a resource admins manage: an id to revoke by, a name, a hint, when each was
-- last used, and a role of their own. A key issued through the API belongs to the account (its
-- user_id is who issued it, when known); a key whose role is NULL has its user's role, which is
-- how keys created with create-account and AccountService.CreateApiKey keep working.
ALTER TABLE api_keys
    ADD COLUMN id           text,
    ADD COLUMN account_id   text REFERENCES accounts (id) ON DELETE CASCADE,
    ADD COLUMN name         text NOT NULL DEFAULT '',
    ADD COLUMN role         text CHECK (role IN ('admin', 'manager', 'user')),
    ADD COLUMN hint         text NOT NULL DEFAULT '',
    ADD COLUMN last_used_at timestamptz;

UPDATE api_keys k
SET id = 'key_' || substr(encode(k.key_hash, 'hex'), 1, 24), account_id = u.account_id, name = u.email
FROM users u
WHERE u.id = k.user_id;

ALTER TABLE api_keys
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN account_id SET NOT NULL,
    ALTER COLUMN user_id DROP NOT NULL,
    ADD CONSTRAINT api_keys_role_or_user CHECK (role IS NOT NULL OR user_id IS NOT NULL);

CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_account ON api_keys (account_id, created_at);
