DROP TABLE IF EXISTS processed_envelopes;
DROP TABLE IF EXISTS audit_log;
