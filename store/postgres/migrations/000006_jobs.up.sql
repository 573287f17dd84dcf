-- One row per scheduled job of the leader (internal/schedule): the due time
-- of its last claimed run. A claim moves last_due forward only, so each due
-- time runs once across replicas and restarts. claimed_at is informational.
CREATE TABLE job_runs (
    job        text PRIMARY KEY,
    last_due   timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- The size of each environment's application database over time, for the
-- weekly database report's growth figures.
CREATE TABLE db_size_history (
    env         text NOT NULL,
    recorded_at timestamptz NOT NULL,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (env, recorded_at)
);
