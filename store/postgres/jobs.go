package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimRun claims the run of the scheduled job due at due (schedule.Claimer):
// it reports true to exactly one caller across replicas, and only if no run
// of job was claimed for due or a later due time. Under a stale leader
// term (WithTerm) it wraps *StaleTermError.
func (s *Store) ClaimRun(ctx context.Context, job string, due time.Time) (bool, error) {
	if job == "" {
		return false, errors.New("claim job run: empty job name")
	}
	// One statement: a conflicting insert waits for the competing one to
	// commit, then re-checks last_due against its row, so one claim wins.
	var won bool
	err := s.fenced(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx,
			`INSERT INTO job_runs (job, last_due) VALUES ($1, $2)
		 ON CONFLICT (job) DO UPDATE SET last_due = EXCLUDED.last_due, claimed_at = EXCLUDED.claimed_at
		 WHERE job_runs.last_due < EXCLUDED.last_due
		 RETURNING true`,
			job, due).Scan(&won)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim run of job %s due %s: %w", job, due.Format(time.RFC3339), err)
	}
	return won, nil
}

// LastRun returns the due time of job's last claimed run, in UTC; ok is false
// when no run of job was ever claimed.
func (s *Store) LastRun(ctx context.Context, job string) (due time.Time, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT last_due FROM job_runs WHERE job = $1`, job).Scan(&due)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last run of job %s: %w", job, err)
	}
	return due.UTC(), true, nil
}

// RecordDBSize records env's application database size at at. Recording the
// same env and time again replaces the size.
func (s *Store) RecordDBSize(ctx context.Context, env string, at time.Time, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("record database size of %s: negative size %d", env, bytes)
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO db_size_history (env, recorded_at, bytes) VALUES ($1, $2, $3)
		 ON CONFLICT (env, recorded_at) DO UPDATE SET bytes = EXCLUDED.bytes`,
		env, at, bytes)
	if err != nil {
		return fmt.Errorf("record database size of %s: %w", env, err)
	}
	return nil
}

// DBSizeBefore is the latest size of env recorded at or before at, and when
// it was recorded (in UTC); ok is false when none was.
func (s *Store) DBSizeBefore(ctx context.Context, env string, at time.Time) (bytes int64, when time.Time, ok bool, err error) {
	err = s.pool.QueryRow(ctx,
		`SELECT bytes, recorded_at FROM db_size_history
		 WHERE env = $1 AND recorded_at <= $2 ORDER BY recorded_at DESC LIMIT 1`,
		env, at).Scan(&bytes, &when)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("database size of %s before %s: %w", env, at.Format(time.RFC3339), err)
	}
	return bytes, when.UTC(), true, nil
}
