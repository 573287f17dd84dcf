-- Who approved an operation: one row per distinct user, so two clicks of one
-- person are one approval whatever replica takes them.
CREATE TABLE operation_approvals (
    operation_id text NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    approver     text NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (operation_id, approver)
);
