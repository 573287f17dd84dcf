package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/togather-foundation/togather-chatops/bot"
)

var _ bot.SecretStore = (*Store)(nil)

// RecordRotation records that by rotated secret name of env at at, and
// starts its reminders afresh. A rotation older than the one recorded is
// ignored.
func (s *Store) RecordRotation(ctx context.Context, env, name, by string, at time.Time) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO secret_rotations (env, name, rotated_at, rotated_by) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (env, name) DO UPDATE
		 SET rotated_at = EXCLUDED.rotated_at, rotated_by = EXCLUDED.rotated_by, reminded_for = NULL
		 WHERE secret_rotations.rotated_at IS NULL OR secret_rotations.rotated_at <= EXCLUDED.rotated_at`,
		env, name, at, by)
	if err != nil {
		return fmt.Errorf("record rotation of %s on %s: %w", name, env, err)
	}
	return nil
}

// Rotations returns the last recorded rotation of every secret, by
// environment and name.
func (s *Store) Rotations(ctx context.Context) ([]bot.Rotation, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT env, name, rotated_by, rotated_at FROM secret_rotations
		 WHERE rotated_at IS NOT NULL ORDER BY env, name`)
	if err != nil {
		return nil, fmt.Errorf("rotations: %w", err)
	}
	defer rows.Close()
	var list []bot.Rotation
	for rows.Next() {
		var r bot.Rotation
		if err := rows.Scan(&r.Env, &r.Name, &r.By, &r.RotatedAt); err != nil {
			return nil, fmt.Errorf("rotations: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rotations: %w", err)
	}
	return list, nil
}

// ClaimRotationReminder claims the rotation reminder of secret name of env
// due at due: it reports true to exactly one caller across replicas, once
// due <= now, and only if no reminder was claimed for this due time or a
// later one. A due time not after the recorded rotation is stale: it was
// computed before that rotation and is never claimed. A secret with no row
// yet (no rotation recorded) gets one that remembers the claim. Under a
// stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) ClaimRotationReminder(ctx context.Context, env, name string, due, now time.Time) (bool, error) {
	if due.After(now) {
		return false, nil
	}
	// A competing claim makes the update wait, then re-check reminded_for
	// against the committed row: one wins. Without a row, competing
	// inserts conflict and one wins.
	var tag pgconn.CommandTag
	err := s.fenced(ctx, func(tx pgx.Tx) (err error) {
		tag, err = tx.Exec(ctx,
			`UPDATE secret_rotations SET reminded_for = $3
			 WHERE env = $1 AND name = $2 AND (reminded_for IS NULL OR reminded_for < $3)
			   AND (rotated_at IS NULL OR rotated_at < $3)`,
			env, name, due)
		if err == nil && tag.RowsAffected() == 0 {
			tag, err = tx.Exec(ctx,
				`INSERT INTO secret_rotations (env, name, reminded_for) VALUES ($1, $2, $3)
				 ON CONFLICT (env, name) DO NOTHING`,
				env, name, due)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim rotation reminder of %s on %s: %w", name, env, err)
	}
	return tag.RowsAffected() == 1, nil
}
