package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/togather-foundation/togather-chatops/ops"
)

var _ ops.Locker = (*Locks)(nil)

// Locks holds one lock per environment in the store's database (table
// env_locks). It is a type of its own because ops.Locker and ops.Journal
// both have a Get method. It is safe for concurrent use.
type Locks struct {
	pool *pgxpool.Pool
}

// Locks returns the environment locks kept in the store.
func (s *Store) Locks() *Locks {
	return &Locks{pool: s.pool}
}

// lockColumns are the env_locks columns, in the order scanLock reads them.
const lockColumns = `env, owner, holder, reason, manual, acquired_at, expires_at`

// acquireAttempts bounds how often Acquire retries when the lock it found
// held is released before it could read who held it.
const acquireAttempts = 3

// Acquire takes the lock l.Env for l.Owner at now: it inserts the lock, or
// takes over one whose lease expired (expires_at <= now). An owner
// acquiring its own lock refreshes holder, reason and lease and keeps the
// acquisition time. A lock held by another owner is a *ops.LockError
// carrying it. l.ExpiresAt must be set unless l.Manual; a zero l.AcquiredAt
// means now.
func (s *Locks) Acquire(ctx context.Context, l ops.Lock, now time.Time) error {
	switch {
	case l.Env == "" || l.Owner == "":
		return errors.New("acquire lock: env and owner are required")
	case l.ExpiresAt.IsZero() && !l.Manual:
		return fmt.Errorf("acquire lock on %s: a lease needs an expiry", l.Env)
	case expired(l, now):
		return fmt.Errorf("acquire lock on %s: lease ends at %s, before now", l.Env, l.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if l.AcquiredAt.IsZero() {
		l.AcquiredAt = now
	}
	for range acquireAttempts {
		// One statement: a competing insert or takeover makes it wait for
		// the other to commit, then re-check the committed row, so exactly
		// one of several racing callers gets a row back.
		var acquired bool
		err := s.pool.QueryRow(ctx,
			`INSERT INTO env_locks (`+lockColumns+`)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)
			 ON CONFLICT (env) DO UPDATE
			   SET owner = excluded.owner, holder = excluded.holder, reason = excluded.reason,
			       manual = excluded.manual, expires_at = excluded.expires_at,
			       acquired_at = CASE WHEN env_locks.owner = excluded.owner
			                          THEN env_locks.acquired_at ELSE excluded.acquired_at END
			   WHERE env_locks.owner = excluded.owner
			      OR (env_locks.expires_at IS NOT NULL AND env_locks.expires_at <= $8)
			 RETURNING true`,
			l.Env, l.Owner, l.Holder, l.Reason, l.Manual, l.AcquiredAt, nullTime(l.ExpiresAt), now).Scan(&acquired)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("acquire lock on %s: %w", l.Env, err)
		}
		held, ok, err := s.Get(ctx, l.Env, now)
		if err != nil {
			return fmt.Errorf("acquire lock on %s: %w", l.Env, err)
		}
		if ok {
			return &ops.LockError{Held: held}
		}
		// Released (or expired) in between: try again.
	}
	return fmt.Errorf("acquire lock on %s: still contended after %d attempts", l.Env, acquireAttempts)
}

// Renew extends the lease of env's lock to now+lease, provided owner still
// holds it and the lease has not expired; a lock without expiry (manual)
// stays without. Otherwise the lock was lost, and the error says to whom.
func (s *Locks) Renew(ctx context.Context, env, owner string, now time.Time, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("renew lock on %s: lease %v is not positive", env, lease)
	}
	tag, err := s.pool.Exec(ctx,
		`UPDATE env_locks SET expires_at = $4
		 WHERE env = $1 AND owner = $2 AND expires_at IS NOT NULL AND expires_at > $3`,
		env, owner, now, now.Add(lease))
	if err != nil {
		return fmt.Errorf("renew lock on %s: %w", env, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	l, found, err := s.lock(ctx, env)
	switch {
	case err != nil:
		return fmt.Errorf("renew lock on %s: %w", env, err)
	case !found:
		return fmt.Errorf("lock on %s was lost: nobody holds it", env)
	case l.Owner != owner:
		return fmt.Errorf("lock on %s was lost to %s (%s, %q)", env, l.Owner, l.Holder, l.Reason)
	case l.ExpiresAt.IsZero():
		return nil // a lock that does not expire needs no renewal
	}
	return fmt.Errorf("lock on %s was lost: its lease expired at %s", env, l.ExpiresAt.Format(time.RFC3339))
}

// Release frees env's lock if owner holds it; anything else is left alone
// and is not an error.
func (s *Locks) Release(ctx context.Context, env, owner string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM env_locks WHERE env = $1 AND owner = $2`, env, owner); err != nil {
		return fmt.Errorf("release lock on %s: %w", env, err)
	}
	return nil
}

// ForceRelease frees env's lock whoever holds it, expired or not, and
// returns what it removed, for the caller to audit and announce. A free
// environment wraps ops.ErrNotFound.
func (s *Locks) ForceRelease(ctx context.Context, env string) (ops.Lock, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM env_locks WHERE env = $1 RETURNING `+lockColumns, env)
	if err != nil {
		return ops.Lock{}, fmt.Errorf("force release lock on %s: %w", env, err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, scanLock)
	if errors.Is(err, pgx.ErrNoRows) {
		return ops.Lock{}, fmt.Errorf("force release lock on %s: %w", env, ops.ErrNotFound)
	}
	if err != nil {
		return ops.Lock{}, fmt.Errorf("force release lock on %s: %w", env, err)
	}
	return l, nil
}

// Get returns env's lock if it is held at now (not expired).
func (s *Locks) Get(ctx context.Context, env string, now time.Time) (ops.Lock, bool, error) {
	l, found, err := s.lock(ctx, env)
	if err != nil {
		return ops.Lock{}, false, fmt.Errorf("get lock on %s: %w", env, err)
	}
	if !found || expired(l, now) {
		return ops.Lock{}, false, nil
	}
	return l, true, nil
}

// List returns the locks held at now, by environment name.
func (s *Locks) List(ctx context.Context, now time.Time) ([]ops.Lock, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+lockColumns+` FROM env_locks WHERE expires_at IS NULL OR expires_at > $1 ORDER BY env`, now)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	locks, err := pgx.CollectRows(rows, scanLock)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return locks, nil
}

// lock reads env's lock row, expired or not.
func (s *Locks) lock(ctx context.Context, env string) (ops.Lock, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+lockColumns+` FROM env_locks WHERE env = $1`, env)
	if err != nil {
		return ops.Lock{}, false, err
	}
	l, err := pgx.CollectExactlyOneRow(rows, scanLock)
	if errors.Is(err, pgx.ErrNoRows) {
		return ops.Lock{}, false, nil
	}
	if err != nil {
		return ops.Lock{}, false, err
	}
	return l, true, nil
}

// expired reports whether l's lease has ended at now.
func expired(l ops.Lock, now time.Time) bool {
	return !l.ExpiresAt.IsZero() && !l.ExpiresAt.After(now)
}

// scanLock reads a row of lockColumns. Times come back in UTC.
func scanLock(row pgx.CollectableRow) (ops.Lock, error) {
	var (
		l       ops.Lock
		expires *time.Time
	)
	if err := row.Scan(&l.Env, &l.Owner, &l.Holder, &l.Reason, &l.Manual, &l.AcquiredAt, &expires); err != nil {
		return ops.Lock{}, err
	}
	l.AcquiredAt, l.ExpiresAt = l.AcquiredAt.UTC(), utc(expires)
	return l, nil
}
