-- Maintenance windows (ops.MaintenanceWindow); the id is shown as MW-<id>.
CREATE TABLE maintenance_windows (
    id          bigserial PRIMARY KEY,
    env         text NOT NULL,
    description text NOT NULL,
    owner       text NOT NULL,
    mode        text NOT NULL DEFAULT '',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    state       text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL, -- by the mover's clock: a stalled start or end is resumed after a while
    started_at  timestamptz,
    ended_at    timestamptz,
    snapshot    text NOT NULL DEFAULT '',
    held        text NOT NULL DEFAULT '',
    channel     text NOT NULL DEFAULT '', -- the announcement: its thread has every later post
    ts          text NOT NULL DEFAULT ''
);

CREATE INDEX maintenance_windows_env_idx ON maintenance_windows (env, starts_at);

-- The posts of a window already made (or claimed), so a restart or a second
-- replica never announces twice.
CREATE TABLE maintenance_events (
    window_id  bigint NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
    event      text NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (window_id, event)
);

-- Alerts of the environment while the window runs (phase 'window', muted)
-- and during the watch after it (phase 'watch', posted as usual), summed up
-- at the end of each.
CREATE TABLE maintenance_alerts (
    window_id bigint NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
    phase     text NOT NULL,
    key       text NOT NULL,
    name      text NOT NULL,
    severity  text NOT NULL,
    summary   text NOT NULL DEFAULT '',
    firing    boolean NOT NULL,
    firings   integer NOT NULL, -- times it started firing
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (window_id, phase, key)
);
