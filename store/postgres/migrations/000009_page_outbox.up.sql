-- Pages to send to a paging target (PagerDuty), one row per event, so a page
-- survives a bot restart. A sender claims due rows (FOR UPDATE SKIP LOCKED,
-- then moves next_attempt_at past a lease) so two replicas never send one row
-- at once; rows of one (target, dedup_key) go out in id order. The routing
-- key is never stored: event holds the event without it.
CREATE TABLE page_outbox (
    id              bigserial PRIMARY KEY,
    target          text NOT NULL,
    dedup_key       text NOT NULL,
    action          text NOT NULL CHECK (action IN ('trigger', 'acknowledge', 'resolve')),
    event           jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    abandoned_at    timestamptz,
    last_error      text NOT NULL DEFAULT ''
);

CREATE INDEX page_outbox_pending ON page_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
