package ops

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLease is how long an environment's lock lasts unless renewed, when
// the policy sets no lease.
const DefaultLease = 30 * time.Second

// Lease is an environment lock held by a running operation and renewed
// every lease/3 until Release.
type Lease struct {
	locker     Locker
	env, owner string
	stop       chan struct{}
	wg         sync.WaitGroup
	lost       atomic.Bool
}

// HoldLease acquires l, expiring lease after now() (DefaultLease for 0),
// and renews it until Release. It fails with *LockError when someone else
// holds the environment.
func HoldLease(ctx context.Context, locker Locker, l Lock, lease time.Duration, now func() time.Time) (*Lease, error) {
	if lease <= 0 {
		lease = DefaultLease
	}
	l.AcquiredAt, l.ExpiresAt = now(), now().Add(lease)
	if err := locker.Acquire(ctx, l, now()); err != nil {
		return nil, err
	}
	h := &Lease{locker: locker, env: l.Env, owner: l.Owner, stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if err := locker.Renew(rctx, l.Env, l.Owner, now(), lease); err != nil {
					h.lost.Store(true)
				}
				cancel()
			}
		}
	}()
	return h, nil
}

// Lost reports whether a renewal failed: someone else may hold the
// environment now, so the holder must stop before its next step.
func (h *Lease) Lost() bool { return h.lost.Load() }

// Release stops renewing and deletes the lock, if it is still the holder's.
func (h *Lease) Release(ctx context.Context) {
	close(h.stop)
	h.wg.Wait()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = h.locker.Release(rctx, h.env, h.owner)
}
