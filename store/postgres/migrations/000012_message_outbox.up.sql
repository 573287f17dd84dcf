-- The chat messages of each operation run from chat (its request message and
-- the progress message in its thread) and how much of its journal each shows:
-- shown counts the journal entries at the message's last edit. A message of a
-- finished operation that shows less than the whole journal is owed an edit,
-- which the leader makes (a crash or a lost edit left it behind).
CREATE TABLE message_outbox (
    operation_id text NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    message      text NOT NULL CHECK (message IN ('request', 'progress')),
    channel      text NOT NULL,
    thread_ts    text NOT NULL DEFAULT '',
    ts           text NOT NULL DEFAULT '', -- '' until the message is posted
    shown        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (operation_id, message)
);
