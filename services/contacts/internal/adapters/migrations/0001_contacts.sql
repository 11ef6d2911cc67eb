-- Contacts, groups and memberships of every account. Phones are E.164 and unique per account;
-- group names are unique per account ignoring case.
CREATE TABLE contacts (
    account_id  text        NOT NULL,
    id          text        NOT NULL,
    first_name  text        NOT NULL DEFAULT '',
    last_name   text        NOT NULL DEFAULT '',
    phone       text        NOT NULL,
    email       text        NOT NULL DEFAULT '',
    opted_out   boolean     NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX contacts_account_phone ON contacts (account_id, phone);

CREATE TABLE groups (
    account_id  text        NOT NULL,
    id          text        NOT NULL,
    name        text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX groups_account_name ON groups (account_id, lower(name));

CREATE TABLE memberships (
    account_id text NOT NULL,
    contact_id text NOT NULL,
    group_id   text NOT NULL,
    PRIMARY KEY (account_id, contact_id, group_id),
    FOREIGN KEY (account_id, contact_id) REFERENCES contacts (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, group_id) REFERENCES groups (account_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_group ON memberships (account_id, group_id, contact_id);
