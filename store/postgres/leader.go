package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// releaseTimeout bounds the unlock done by a leadership release func.
const releaseTimeout = 5 * time.Second

// TryLeader tries, without waiting, to become the leader for key among every
// replica sharing the database, using a session advisory lock held on one
// connection taken out of the pool. When ok, the caller leads until it calls
// release (safe to call more than once); leadership is also lost if that
// connection breaks. When another session leads, ok is false.
func (s *Store) TryLeader(ctx context.Context, key int64) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("try leader %d: %w", key, err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("try leader %d: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			defer cancel()
			var unlocked bool
			err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&unlocked)
			if err != nil || !unlocked {
				// Never pool a session that may still hold the lock:
				// closing it ends the session and frees the lock.
				_ = conn.Conn().Close(ctx)
			}
			conn.Release()
		})
	}
	return release, true, nil
}
