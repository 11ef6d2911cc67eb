-- Bulk rows (written by one AddMany of more than outbox.BulkThreshold events, such as an import)
-- are relayed by their own loop, so they never hold back the other rows. Each loop reads its rows
-- in order through its own partial index.
ALTER TABLE outbox ADD COLUMN bulk boolean NOT NULL DEFAULT false;
CREATE INDEX outbox_interactive_seq ON outbox (seq) WHERE NOT bulk;
CREATE INDEX outbox_bulk_seq ON outbox (seq) WHERE bulk;
