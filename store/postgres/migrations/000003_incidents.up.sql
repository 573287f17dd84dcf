-- One row per alert group (incidents.Alert) with its chat message and what
-- people did with it.
CREATE TABLE alert_groups (
    key            text PRIMARY KEY,
    source         text NOT NULL,
    env            text NOT NULL DEFAULT '',
    name           text NOT NULL,
    severity       text NOT NULL,
    firing         boolean NOT NULL,
    summary        text NOT NULL DEFAULT '',
    labels         jsonb NOT NULL DEFAULT '{}',
    count          integer NOT NULL DEFAULT 0,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz,
    channel        text NOT NULL DEFAULT '', -- the chat message: channel and ts
    ts             text NOT NULL DEFAULT '',
    acked_by       text NOT NULL DEFAULT '',
    acked_at       timestamptz,
    silenced_until timestamptz,
    updated_at     timestamptz NOT NULL
);

CREATE SEQUENCE incident_seq;

CREATE TABLE incidents (
    id             text PRIMARY KEY, -- INC-<incident_seq>
    title          text NOT NULL,
    sev            text NOT NULL,
    env            text NOT NULL DEFAULT '',
    status         text NOT NULL,
    commander      text NOT NULL DEFAULT '',
    declared_at    timestamptz NOT NULL,
    resolved_at    timestamptz,
    last_update_at timestamptz, -- NULL until the first update
    escalated      boolean NOT NULL DEFAULT false,
    snoozed_until  timestamptz,
    channel        text NOT NULL DEFAULT '',
    thread_ts      text NOT NULL DEFAULT '',
    reminded_for   timestamptz -- the due time the last update reminder was sent for
);

-- 'resolved' is incidents.Resolved.
CREATE INDEX incidents_open_idx ON incidents (env, declared_at DESC) WHERE status <> 'resolved';

CREATE TABLE incident_timeline (
    id          bigserial PRIMARY KEY,
    incident_id text NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    by_user     text NOT NULL DEFAULT '',
    text        text NOT NULL DEFAULT ''
);

CREATE INDEX incident_timeline_incident_id_idx ON incident_timeline (incident_id, id);
