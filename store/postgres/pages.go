package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Page is one event of the page outbox.
type Page struct {
	ID       int64
	Target   string
	DedupKey string
	Action   string
	Event    []byte // the event as JSON, without the routing key
	Attempts int    // attempts before this claim
}

// EnqueuePage adds an event for target to the outbox, due at once (at now).
func (s *Store) EnqueuePage(ctx context.Context, target, dedupKey, action string, event []byte, now time.Time) error {
	if target == "" || dedupKey == "" {
		return fmt.Errorf("enqueue page: empty target %q or dedup key %q", target, dedupKey)
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO page_outbox (target, dedup_key, action, event, next_attempt_at) VALUES ($1, $2, $3, $4, $5)`,
		target, dedupKey, action, event, now)
	if err != nil {
		return fmt.Errorf("enqueue page %s %s to %s: %w", action, dedupKey, target, err)
	}
	return nil
}

// ClaimPages claims up to limit pages due at now, each the oldest pending
// one of its (target, dedup key), and holds them for lease: no other claim
// returns them before now+lease unless they are retried sooner. Under a
// stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) ClaimPages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Page, error) {
	var pages []Page
	err := s.fenced(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`UPDATE page_outbox SET next_attempt_at = $2
			 WHERE id IN (
			   SELECT id FROM page_outbox o
			   WHERE sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= $1
			     AND NOT EXISTS (SELECT 1 FROM page_outbox e
			       WHERE e.target = o.target AND e.dedup_key = o.dedup_key
			         AND e.sent_at IS NULL AND e.abandoned_at IS NULL AND e.id < o.id)
			   ORDER BY id LIMIT $3
			   FOR UPDATE SKIP LOCKED)
			 RETURNING id, target, dedup_key, action, event, attempts`,
			now, now.Add(lease), limit)
		if err != nil {
			return err
		}
		pages, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Page, error) {
			var p Page
			err := r.Scan(&p.ID, &p.Target, &p.DedupKey, &p.Action, &p.Event, &p.Attempts)
			return p, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim pages: %w", err)
	}
	return pages, nil
}

// PageSent records that page id was accepted at at.
func (s *Store) PageSent(ctx context.Context, id int64, at time.Time) error {
	return s.pageDone(ctx, id, `UPDATE page_outbox SET sent_at = $2, attempts = attempts + 1, last_error = '' WHERE id = $1`, at)
}

// PageFailed records a failed attempt of page id: it is retried at retryAt.
func (s *Store) PageFailed(ctx context.Context, id int64, retryAt time.Time, cause string) error {
	return s.pageDone(ctx, id, `UPDATE page_outbox SET next_attempt_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1`, retryAt, cause)
}

// PageAbandoned records that page id was refused for good at at; the
// pages after it of its dedup key may go.
func (s *Store) PageAbandoned(ctx context.Context, id int64, at time.Time, cause string) error {
	return s.pageDone(ctx, id, `UPDATE page_outbox SET abandoned_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1`, at, cause)
}

func (s *Store) pageDone(ctx context.Context, id int64, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, append([]any{id}, args...)...)
	if err == nil && tag.RowsAffected() != 1 {
		err = errors.New("no such page")
	}
	if err != nil {
		return fmt.Errorf("update page %d: %w", id, err)
	}
	return nil
}
