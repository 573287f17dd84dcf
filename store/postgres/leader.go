package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// releaseTimeout bounds the unlock and close of a leadership's connection.
const releaseTimeout = 5 * time.Second

// Term is one leadership term of a leader lock key: the fencing token of
// the leader's writes. Terms of a key only grow.
type Term struct {
	Key int64
	N   int64
}

// StaleTermError is returned (wrapped) by a leader-only write refused
// because the term it carries is no longer the key's current one: another
// session took leadership since. Its caller has lost leadership.
type StaleTermError struct {
	Term    Term  // the term the write carried
	Current int64 // the key's current term (0: none recorded)
}

func (e *StaleTermError) Error() string {
	return fmt.Sprintf("leadership lost: the write carries term %d of leader key %d, the current term is %d", e.Term.N, e.Term.Key, e.Current)
}

// Leadership is leadership of one key, held by a session advisory lock on
// a connection of its own (not from the pool), so that the session's end
// is the leadership's end and Check can see it.
type Leadership struct {
	conn *pgx.Conn
	term Term
	once sync.Once
}

// TryLeader tries, without waiting, to become the leader for key among every
// replica sharing the database: it opens a connection of its own, takes a
// session advisory lock on it and starts a new term of key. When ok, the
// caller leads until it calls Release or Check fails. When another session
// leads, ok is false.
func (s *Store) TryLeader(ctx context.Context, key int64) (l *Leadership, ok bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("try leader %d: connect: %w", key, err)
	}
	defer func() {
		if l == nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			defer cancel()
			_ = conn.Close(closeCtx) // ends the session, and frees a lock taken
		}
	}()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		return nil, false, fmt.Errorf("try leader %d: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	// Only the lock holder moves the term, so terms never race; the
	// update waits for writes of the previous term still in flight
	// (fence holds the row FOR SHARE), then refuses them all.
	term := Term{Key: key}
	err = conn.QueryRow(ctx,
		`INSERT INTO leader_terms (key, term) VALUES ($1, 1)
		 ON CONFLICT (key) DO UPDATE SET term = leader_terms.term + 1
		 RETURNING term`, key).Scan(&term.N)
	if err != nil {
		return nil, false, fmt.Errorf("try leader %d: start a term: %w", key, err)
	}
	return &Leadership{conn: conn, term: term}, true, nil
}

// Term is the leadership's term, the token to carry in its writes
// (WithTerm).
func (l *Leadership) Term() Term { return l.term }

// Check asks the lock's session, with one cheap query, whether the
// leadership still holds: the session is alive (so it holds the lock) and
// its term is still the current one. Any error means leadership is lost.
func (l *Leadership) Check(ctx context.Context) error {
	var current int64
	err := l.conn.QueryRow(ctx, `SELECT term FROM leader_terms WHERE key = $1`, l.term.Key).Scan(&current)
	if err != nil {
		return fmt.Errorf("check leadership of key %d: the lock's session: %w", l.term.Key, err)
	}
	if current != l.term.N {
		return &StaleTermError{Term: l.term, Current: current}
	}
	return nil
}

// Release gives leadership up: it unlocks and closes the lock's
// connection. It is safe to call more than once, and after the session
// ended.
func (l *Leadership) Release() {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.term.Key)
		// Closing ends the session, which frees the lock if the unlock
		// could not.
		_ = l.conn.Close(ctx)
	})
}

// fenceKey is the context key of the term carried by WithTerm.
type fenceKey struct{}

// fenceToken is what WithTerm puts in a context.
type fenceToken struct {
	term  Term
	stale func(error)
}

// WithTerm returns ctx carrying term: the leader-only writes made with it
// (new operations, journal entries and transitions, claims of job runs,
// reminders, escalations and maintenance moves, alert state) are refused with a *StaleTermError once a newer
// term of term.Key has begun. stale, when not nil, is called with that
// error, so the leader stops at the first refused write.
func WithTerm(ctx context.Context, term Term, stale func(error)) context.Context {
	return context.WithValue(ctx, fenceKey{}, &fenceToken{term: term, stale: stale})
}

// fencedExec runs one statement as fenced does.
func (s *Store) fencedExec(ctx context.Context, sql string, args ...any) (tag pgconn.CommandTag, err error) {
	err = s.fenced(ctx, func(tx pgx.Tx) error {
		tag, err = tx.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// fenced runs fn in one transaction that first checks the term ctx
// carries (WithTerm), if any, and holds its row FOR SHARE until the
// transaction ends: a newer term cannot begin before fn's writes commit,
// and once it has, they are refused with a *StaleTermError.
func (s *Store) fenced(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		f, ok := ctx.Value(fenceKey{}).(*fenceToken)
		if !ok {
			return fn(tx)
		}
		var current int64
		err := tx.QueryRow(ctx, `SELECT term FROM leader_terms WHERE key = $1 FOR SHARE`, f.term.Key).Scan(&current)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("check leader term: %w", err)
		}
		if current != f.term.N {
			err := &StaleTermError{Term: f.term, Current: current}
			if f.stale != nil {
				f.stale(err)
			}
			return err
		}
		return fn(tx)
	})
}
