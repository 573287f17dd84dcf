DROP TABLE IF EXISTS db_size_history;
DROP TABLE IF EXISTS job_runs;
