package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/bot"
)

var _ bot.Auditor = (*Store)(nil)

// DefaultAuditLimit is how many entries AuditLog returns when the query sets
// no limit.
const DefaultAuditLimit = 100

// AuditQuery selects audit entries. Empty fields match everything.
type AuditQuery struct {
	Environment string
	Actor       string
	Action      string
	Limit       int // at most this many entries; <= 0 means DefaultAuditLimit
}

// Audit appends e to the audit log. e.At must be set.
func (s *Store) Audit(ctx context.Context, e bot.AuditEntry) error {
	if e.At.IsZero() {
		return errors.New("audit: entry has no time")
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO audit_log (at, actor, action, environment, decision, detail)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		e.At, e.Actor, e.Action, e.Environment, string(e.Decision), e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditLog returns the entries matching q, newest first.
func (s *Store) AuditLog(ctx context.Context, q AuditQuery) ([]bot.AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	rows, err := s.pool.Query(ctx,
		`SELECT at, actor, action, environment, decision, detail
		 FROM audit_log
		 WHERE ($1 = '' OR environment = $1)
		   AND ($2 = '' OR actor = $2)
		   AND ($3 = '' OR action = $3)
		 ORDER BY at DESC, id DESC
		 LIMIT $4`,
		q.Environment, q.Actor, q.Action, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (bot.AuditEntry, error) {
		var e bot.AuditEntry
		err := row.Scan(&e.At, &e.Actor, &e.Action, &e.Environment, &e.Decision, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return entries, nil
}
