DROP TABLE IF EXISTS env_locks;
DROP TABLE IF EXISTS operation_journal;
DROP TABLE IF EXISTS operations;
