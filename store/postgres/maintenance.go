package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
)

var _ bot.MaintenanceStore = (*Store)(nil)

// windowColumns are the maintenance_windows columns, in the order
// scanWindow reads them.
const windowColumns = `id, env, description, owner, mode, starts_at, ends_at, state, created_at, updated_at,
	started_at, ended_at, snapshot, held, channel, ts`

// CreateWindow stores w under a new id and returns it with that id. w.ID
// is ignored.
func (s *Store) CreateWindow(ctx context.Context, w ops.MaintenanceWindow) (ops.MaintenanceWindow, error) {
	if w.Env == "" || w.State == "" || w.Start.IsZero() || !w.End.After(w.Start) || w.CreatedAt.IsZero() {
		return ops.MaintenanceWindow{}, errors.New("create maintenance window: environment, state, creation time and a start before the end are required")
	}
	w.UpdatedAt = w.CreatedAt
	err := s.pool.QueryRow(ctx,
		`INSERT INTO maintenance_windows (env, description, owner, mode, starts_at, ends_at, state, created_at,
		                                  updated_at, started_at, ended_at, snapshot, held, channel, ts)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		w.Env, w.Description, w.Owner, w.Mode, w.Start, w.End, w.State, w.CreatedAt,
		nullTime(w.StartedAt), nullTime(w.EndedAt), w.Snapshot, w.Held, w.Channel, w.TS,
	).Scan(&w.ID)
	if err != nil {
		return ops.MaintenanceWindow{}, fmt.Errorf("create maintenance window: %w", err)
	}
	return w, nil
}

// GetWindow returns window id; an unknown id wraps ops.ErrNotFound.
func (s *Store) GetWindow(ctx context.Context, id int64) (ops.MaintenanceWindow, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+windowColumns+` FROM maintenance_windows WHERE id = $1`, id)
	w, err := pgx.CollectExactlyOneRow(rows, scanWindow)
	if errors.Is(err, pgx.ErrNoRows) {
		return ops.MaintenanceWindow{}, fmt.Errorf("maintenance window MW-%d: %w", id, ops.ErrNotFound)
	}
	if err != nil {
		return ops.MaintenanceWindow{}, fmt.Errorf("get maintenance window MW-%d: %w", id, err)
	}
	return w, nil
}

// Windows lists the windows that are not over (scheduled, held, starting,
// active, ending) and those that ended at or after endedSince, by start.
// Proposed and cancelled windows are left out.
func (s *Store) Windows(ctx context.Context, endedSince time.Time) ([]ops.MaintenanceWindow, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+windowColumns+` FROM maintenance_windows
		 WHERE state IN ($1, $2, $3, $4, $5) OR (state = $6 AND ended_at >= $7)
		 ORDER BY starts_at, id`,
		ops.MaintScheduled, ops.MaintHeld, ops.MaintStarting, ops.MaintActive, ops.MaintEnding,
		ops.MaintEnded, endedSince)
	list, err := pgx.CollectRows(rows, scanWindow)
	if err != nil {
		return nil, fmt.Errorf("list maintenance windows: %w", err)
	}
	return list, nil
}

// MoveWindow writes w's state, times, snapshot and hold reason, stamped
// with now, if the stored window is in one of from: a compare-and-set, so
// of two racing movers exactly one reports true.
// Under a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) MoveWindow(ctx context.Context, w ops.MaintenanceWindow, from []ops.MaintenanceState, now time.Time) (bool, error) {
	states := make([]string, len(from))
	for i, st := range from {
		states[i] = string(st)
	}
	tag, err := s.fencedExec(ctx,
		`UPDATE maintenance_windows
		 SET state = $3, starts_at = $4, ends_at = $5, started_at = $6, ended_at = $7, snapshot = $8, held = $9, updated_at = $10
		 WHERE id = $1 AND state = ANY($2)`,
		w.ID, states, w.State, w.Start, w.End, nullTime(w.StartedAt), nullTime(w.EndedAt), w.Snapshot, w.Held, now)
	if err != nil {
		return false, fmt.Errorf("move maintenance window %s to %s: %w", w.Name(), w.State, err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetWindowChat records where window id's announcement is, unless one is
// recorded already: the first announcement posted keeps the thread. An
// unknown id wraps ops.ErrNotFound.
func (s *Store) SetWindowChat(ctx context.Context, id int64, channel, ts string) error {
	var found bool
	err := s.pool.QueryRow(ctx,
		`WITH upd AS (UPDATE maintenance_windows SET channel = $2, ts = $3 WHERE id = $1 AND ts = '' RETURNING id)
		 SELECT EXISTS (SELECT 1 FROM maintenance_windows WHERE id = $1)`, id, channel, ts).Scan(&found)
	if err != nil {
		return fmt.Errorf("set announcement of MW-%d: %w", id, err)
	}
	if !found {
		return fmt.Errorf("set announcement of MW-%d: %w", id, ops.ErrNotFound)
	}
	return nil
}

// ClaimWindowEvent claims the post of event for window id: true for
// exactly one caller, ever.
// Under a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) ClaimWindowEvent(ctx context.Context, id int64, event string, now time.Time) (bool, error) {
	tag, err := s.fencedExec(ctx,
		`INSERT INTO maintenance_events (window_id, event, claimed_at) VALUES ($1, $2, $3)
		 ON CONFLICT DO NOTHING`, id, event, now)
	if err != nil {
		return false, fmt.Errorf("claim %s of MW-%d: %w", event, id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordWindowAlert records alert a against window id in phase ("window"
// or "watch"): one row per alert group, counting the times it started
// firing.
func (s *Store) RecordWindowAlert(ctx context.Context, id int64, phase string, a incidents.Alert, now time.Time) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO maintenance_alerts (window_id, phase, key, name, severity, summary, firing, firings, first_at, last_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN 1 ELSE 0 END, $8, $8)
		 ON CONFLICT (window_id, phase, key) DO UPDATE
		 SET summary = EXCLUDED.summary, severity = EXCLUDED.severity, firing = EXCLUDED.firing, last_at = EXCLUDED.last_at,
		     firings = maintenance_alerts.firings + CASE WHEN EXCLUDED.firing AND NOT maintenance_alerts.firing THEN 1 ELSE 0 END`,
		id, phase, a.Key, a.Name, a.Severity, a.Summary, a.Firing, now)
	if err != nil {
		return fmt.Errorf("record alert %s for MW-%d: %w", a.Key, id, err)
	}
	return nil
}

// WindowAlerts lists the alerts recorded against window id in phase,
// critical first, then by first appearance.
func (s *Store) WindowAlerts(ctx context.Context, id int64, phase string) ([]bot.WindowAlert, error) {
	rows, _ := s.pool.Query(ctx,
		`SELECT key, name, severity, summary, firing, firings, first_at, last_at FROM maintenance_alerts
		 WHERE window_id = $1 AND phase = $2
		 ORDER BY severity = $3 DESC, first_at, key`, id, phase, incidents.Critical)
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (bot.WindowAlert, error) {
		var a bot.WindowAlert
		err := row.Scan(&a.Key, &a.Name, &a.Severity, &a.Summary, &a.Firing, &a.Firings, &a.FirstAt, &a.LastAt)
		a.FirstAt, a.LastAt = a.FirstAt.UTC(), a.LastAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("alerts of MW-%d: %w", id, err)
	}
	return list, nil
}

func scanWindow(row pgx.CollectableRow) (ops.MaintenanceWindow, error) {
	var w ops.MaintenanceWindow
	var started, ended *time.Time
	err := row.Scan(&w.ID, &w.Env, &w.Description, &w.Owner, &w.Mode, &w.Start, &w.End, &w.State, &w.CreatedAt,
		&w.UpdatedAt, &started, &ended, &w.Snapshot, &w.Held, &w.Channel, &w.TS)
	if err != nil {
		return ops.MaintenanceWindow{}, err
	}
	w.Start, w.End, w.CreatedAt, w.UpdatedAt = w.Start.UTC(), w.End.UTC(), w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	w.StartedAt, w.EndedAt = utc(started), utc(ended)
	return w, nil
}
