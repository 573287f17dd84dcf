-- One row per environment and secret NAME (never a value): when it was last
-- rotated, by whom, and the due time its last rotation reminder was sent
-- for. A row may exist before any rotation is recorded: it then only
-- remembers that the "never recorded" reminder was sent.
CREATE TABLE secret_rotations (
    env          text NOT NULL,
    name         text NOT NULL,
    rotated_at   timestamptz, -- NULL until a rotation is recorded
    rotated_by   text NOT NULL DEFAULT '',
    reminded_for timestamptz,
    PRIMARY KEY (env, name)
);
