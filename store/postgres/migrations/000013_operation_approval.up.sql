-- What a request waits for (ops.Approval): the approvals it needs, until
-- when, and what a deploy's approvers approve. Fixed when the request is
-- made; NULL for operations that never waited.
ALTER TABLE operations ADD COLUMN approval jsonb;

-- Requests still waiting, made before this column, kept their count and
-- deadline in the chat map: carried over, with no binding (an approval of
-- such a deploy is void and asks for a fresh report).
UPDATE operations
SET approval = jsonb_build_object('needed', coalesce((chat->>'approvals_needed')::int, 0), 'expires', chat->>'expires_at')
WHERE state = 'requested' AND chat ? 'expires_at';
