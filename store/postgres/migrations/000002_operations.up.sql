CREATE TABLE operations (
    id         text PRIMARY KEY,
    kind       text NOT NULL,
    env        text NOT NULL,
    requester  text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    state      text NOT NULL,
    version    text NOT NULL DEFAULT '',
    image      text NOT NULL DEFAULT '',
    image_id   text NOT NULL DEFAULT '',
    from_slot  text NOT NULL DEFAULT '',
    to_slot    text NOT NULL DEFAULT '',
    prev_image text NOT NULL DEFAULT '',
    snapshot   text NOT NULL DEFAULT '',
    error      text NOT NULL DEFAULT '',
    bake_until timestamptz,
    baked      boolean NOT NULL DEFAULT false,
    chat       jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The terminal states are those of ops.Step.Terminal.
CREATE INDEX operations_unfinished_idx ON operations (created_at)
    WHERE state NOT IN ('done', 'failed', 'rolled_back', 'needs_attention');
CREATE INDEX operations_env_created_at_idx ON operations (env, created_at DESC);

CREATE TABLE operation_journal (
    id           bigserial PRIMARY KEY,
    operation_id text NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    step         text NOT NULL,
    phase        text NOT NULL,
    detail       text NOT NULL DEFAULT ''
);

CREATE INDEX operation_journal_operation_id_idx ON operation_journal (operation_id, id);

CREATE TABLE env_locks (
    env         text PRIMARY KEY,
    owner       text NOT NULL,
    holder      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    manual      boolean NOT NULL DEFAULT false,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz -- NULL: never expires (manual lock)
);
