CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    environment text NOT NULL DEFAULT '',
    decision    text NOT NULL,
    detail      text NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_environment_at_idx ON audit_log (environment, at);

CREATE TABLE processed_envelopes (
    envelope_id text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX processed_envelopes_expires_at_idx ON processed_envelopes (expires_at);
