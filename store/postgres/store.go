// Package postgres keeps the bot's own state in PostgreSQL: the audit log,
// the processed Slack envelopes that make redeliveries harmless, the
// advisory lock that elects one leader among replicas with the term that
// fences the leader's writes (TryLeader, WithTerm), the durable
// operations with their journals (ops.Journal), the per-environment
// locks (ops.Locker), and the alert groups and incidents of the chat layer
// (bot.AlertStore, bot.IncidentStore). The schema is embedded and applied with
// golang-migrate (MigrateUp and friends).
//
// Times are always passed in by the caller; SQL now() is never used for a
// decision, so tests control the clock.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the bot's state in one PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at dsn and checks that it answers. The
// schema must already be migrated (MigrateUp).
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: ping: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool. It waits for connections in use to come back.
// A leadership (TryLeader) has a connection of its own: release it too.
func (s *Store) Close() {
	s.pool.Close()
}

// Pool returns the underlying connection pool, for callers that share it.
func (s *Store) Pool() *pgxpool.Pool {
	return s.pool
}
