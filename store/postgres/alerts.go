package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
)

var _ bot.AlertStore = (*Store)(nil)

// AlertRecord is an alert group with its chat message, acknowledgement and
// silence: the chat layer's record, so the store is a bot.AlertStore as is.
type AlertRecord = bot.AlertRecord

// ErrAlertNotFound is wrapped by the errors about an alert group the store
// does not know.
var ErrAlertNotFound = errors.New("alert group not found")

// alertColumns are the alert_groups columns, in the order scanAlert reads
// them.
const alertColumns = `key, source, env, name, severity, firing, summary, labels, count, starts_at, ends_at,
	channel, ts, acked_by, acked_at, silenced_until`

// UpsertAlert records a's state at now: it inserts a new group, or updates
// the group's alert fields and keeps its message and silence, and its
// acknowledgement unless the group fires again after having resolved: a
// new episode needs a new acknowledgement. It returns the group as it was before, and whether it existed,
// so the caller can tell a new group from a changed one. Of concurrent
// upserts of a new group exactly one sees existed = false. Under a stale
// leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) UpsertAlert(ctx context.Context, a incidents.Alert, now time.Time) (prev AlertRecord, existed bool, err error) {
	if a.Key == "" || a.StartsAt.IsZero() {
		return AlertRecord{}, false, errors.New("upsert alert: key and start time are required")
	}
	labels := a.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	args := []any{a.Key, a.Source, a.Env, a.Name, a.Severity, a.Firing, a.Summary, labels, a.Count,
		a.StartsAt, nullTime(a.EndsAt), now}
	err = s.fenced(ctx, func(tx pgx.Tx) error {
		// Insert first: a competing insert of the same new group waits
		// for this one to commit, then conflicts and updates below.
		tag, err := tx.Exec(ctx,
			`INSERT INTO alert_groups (key, source, env, name, severity, firing, summary, labels, count,
			                           starts_at, ends_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			 ON CONFLICT (key) DO NOTHING`, args...)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		prev, err = getAlert(ctx, tx, a.Key, "FOR UPDATE")
		if err != nil {
			return err
		}
		existed = true
		_, err = tx.Exec(ctx,
			`UPDATE alert_groups
			 SET source = $2, env = $3, name = $4, severity = $5, firing = $6, summary = $7, labels = $8,
			     count = $9, starts_at = $10, ends_at = $11, updated_at = $12,
			     acked_by = CASE WHEN $6 AND NOT firing THEN '' ELSE acked_by END,
			     acked_at = CASE WHEN $6 AND NOT firing THEN NULL ELSE acked_at END
			 WHERE key = $1`, args...)
		return err
	})
	if err != nil {
		return AlertRecord{}, false, fmt.Errorf("upsert alert %s: %w", a.Key, err)
	}
	return prev, existed, nil
}

// SetAlertMessage records the chat message that shows the group key.
// Under a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) SetAlertMessage(ctx context.Context, key, channel, ts string) error {
	tag, err := s.fencedExec(ctx, `UPDATE alert_groups SET channel = $2, ts = $3 WHERE key = $1`, key, channel, ts)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrAlertNotFound
	}
	if err != nil {
		return fmt.Errorf("set message of alert %s: %w", key, err)
	}
	return nil
}

// AckAlert records that user acknowledged the group key at now. Only the
// first acknowledgement counts: it reports true to exactly one of several
// concurrent callers, and false once the group is acknowledged.
func (s *Store) AckAlert(ctx context.Context, key, user string, now time.Time) (bool, error) {
	if user == "" {
		return false, fmt.Errorf("acknowledge alert %s: no user", key)
	}
	// A competing acknowledgement makes the update wait, then re-check
	// acked_by against the committed row: one wins.
	var acked, found bool
	err := s.pool.QueryRow(ctx,
		`WITH acked AS (
			UPDATE alert_groups SET acked_by = $2, acked_at = $3, updated_at = $3
			WHERE key = $1 AND acked_by = ''
			RETURNING key
		 )
		 SELECT EXISTS (SELECT FROM acked), EXISTS (SELECT FROM alert_groups WHERE key = $1)`,
		key, user, now).Scan(&acked, &found)
	if err == nil && !found {
		err = ErrAlertNotFound
	}
	if err != nil {
		return false, fmt.Errorf("acknowledge alert %s: %w", key, err)
	}
	return acked, nil
}

// SilenceAlert silences the group key until the given time, recorded at
// now; a later silence replaces an earlier one.
func (s *Store) SilenceAlert(ctx context.Context, key string, until, now time.Time) error {
	if until.IsZero() {
		return fmt.Errorf("silence alert %s: no end time", key)
	}
	tag, err := s.pool.Exec(ctx,
		`UPDATE alert_groups SET silenced_until = $2, updated_at = $3 WHERE key = $1`, key, until, now)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrAlertNotFound
	}
	if err != nil {
		return fmt.Errorf("silence alert %s: %w", key, err)
	}
	return nil
}

// GetAlert returns the group key with its message, acknowledgement and
// silence. An unknown key wraps ErrAlertNotFound.
func (s *Store) GetAlert(ctx context.Context, key string) (AlertRecord, error) {
	r, err := getAlert(ctx, s.pool, key, "")
	if err != nil {
		return AlertRecord{}, fmt.Errorf("get alert %s: %w", key, err)
	}
	return r, nil
}

// AlertsOnMessage returns the groups whose message is channel/ts, by key.
func (s *Store) AlertsOnMessage(ctx context.Context, channel, ts string) ([]AlertRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alert_groups WHERE channel = $1 AND ts = $2 ORDER BY key`, channel, ts)
	if err != nil {
		return nil, fmt.Errorf("alert groups of message %s/%s: %w", channel, ts, err)
	}
	list, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("alert groups of message %s/%s: %w", channel, ts, err)
	}
	return list, nil
}

// getAlert reads the group key, with lock ("" or a locking clause such as
// FOR UPDATE); an unknown key is ErrAlertNotFound.
func getAlert(ctx context.Context, q querier, key, lock string) (AlertRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+alertColumns+` FROM alert_groups WHERE key = $1 `+lock, key)
	if err != nil {
		return AlertRecord{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanAlert)
	if errors.Is(err, pgx.ErrNoRows) {
		return AlertRecord{}, ErrAlertNotFound
	}
	return r, err
}

// scanAlert reads a row of alertColumns. Times come back in UTC, and empty
// labels as nil.
func scanAlert(row pgx.CollectableRow) (AlertRecord, error) {
	var (
		r                     AlertRecord
		a                     = &r.Alert
		ends, acked, silenced *time.Time
	)
	err := row.Scan(&a.Key, &a.Source, &a.Env, &a.Name, &a.Severity, &a.Firing, &a.Summary, &a.Labels, &a.Count,
		&a.StartsAt, &ends, &r.Channel, &r.TS, &r.AckedBy, &acked, &silenced)
	if err != nil {
		return AlertRecord{}, err
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	a.StartsAt, a.EndsAt = a.StartsAt.UTC(), utc(ends)
	r.AckedAt, r.SilencedUntil = utc(acked), utc(silenced)
	return r, nil
}
