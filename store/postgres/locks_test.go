package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

const lease = 5 * time.Minute

// newLocks returns the locks of a fresh, migrated database.
func newLocks(t *testing.T) *postgres.Locks {
	t.Helper()
	s, _ := newStore(t)
	return s.Locks()
}

// leaseLock is a lock of env by owner taken at at for one lease.
func leaseLock(env, owner string, at time.Time) ops.Lock {
	return ops.Lock{Env: env, Owner: owner, Holder: "U-" + owner, Reason: "deploy by " + owner,
		AcquiredAt: at, ExpiresAt: at.Add(lease)}
}

// wantHeld checks env's lock at now: free when want is nil, else equal to
// *want.
func wantHeld(t *testing.T, s *postgres.Locks, env string, now time.Time, want *ops.Lock) {
	t.Helper()
	got, ok, err := s.Get(t.Context(), env, now)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case want == nil && ok:
		t.Errorf("Get(%s) at +%v = %+v, want free", env, now.Sub(t0), got)
	case want != nil && !reflect.DeepEqual(got, *want):
		t.Errorf("Get(%s) at +%v = %+v (held %v), want %+v", env, now.Sub(t0), got, ok, *want)
	}
}

// wantLockError checks that err is a *ops.LockError naming owner.
func wantLockError(t *testing.T, err error, owner string) {
	t.Helper()
	var le *ops.LockError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want *ops.LockError", err)
	}
	if le.Held.Owner != owner {
		t.Errorf("LockError holder = %+v, want owner %s", le.Held, owner)
	}
}

func TestLockLifecycle(t *testing.T) {
	s := newLocks(t)
	ctx := t.Context()
	const env = "production"
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	a := leaseLock(env, "op-a", t0)
	if err := s.Acquire(ctx, a, t0); err != nil {
		t.Fatal(err)
	}
	wantHeld(t, s, env, t0, &a)

	// Held by someone else.
	err := s.Acquire(ctx, leaseLock(env, "op-b", at(time.Minute)), at(time.Minute))
	wantLockError(t, err, "op-a")
	if !strings.Contains(err.Error(), "U-op-a") {
		t.Errorf("LockError %q does not name the holder", err)
	}

	// Acquiring one's own lock refreshes it and keeps the acquisition time.
	again := leaseLock(env, "op-a", at(2*time.Minute))
	again.Reason = "deploy, retried"
	if err := s.Acquire(ctx, again, at(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	a.Reason, a.ExpiresAt = again.Reason, again.ExpiresAt
	wantHeld(t, s, env, at(2*time.Minute), &a)

	// Renewal extends the lease; only the owner may renew.
	if err := s.Renew(ctx, env, "op-a", at(3*time.Minute), lease); err != nil {
		t.Fatal(err)
	}
	a.ExpiresAt = at(3*time.Minute + lease)
	wantHeld(t, s, env, at(3*time.Minute), &a)
	if err := s.Renew(ctx, env, "op-b", at(3*time.Minute), lease); err == nil || !strings.Contains(err.Error(), "lost to op-a") {
		t.Errorf("Renew by a non-owner: error = %v, want it lost to op-a", err)
	}

	// The lease ends: the lock is free, cannot be renewed, and is taken over.
	expiry := a.ExpiresAt
	wantHeld(t, s, env, expiry.Add(-time.Microsecond), &a)
	wantHeld(t, s, env, expiry, nil)
	if err := s.Renew(ctx, env, "op-a", expiry, lease); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Renew of an expired lease: error = %v, want it expired", err)
	}
	b := leaseLock(env, "op-b", expiry)
	if err := s.Acquire(ctx, b, expiry); err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	wantHeld(t, s, env, expiry, &b)
	if err := s.Renew(ctx, env, "op-a", expiry, lease); err == nil || !strings.Contains(err.Error(), "lost to op-b") {
		t.Errorf("Renew after a takeover: error = %v, want it lost to op-b", err)
	}

	// Release by a non-owner does nothing.
	if err := s.Release(ctx, env, "op-a"); err != nil {
		t.Fatal(err)
	}
	wantHeld(t, s, env, expiry, &b)

	// A forced release returns what it removed, once.
	removed, err := s.ForceRelease(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(removed, b) {
		t.Errorf("ForceRelease = %+v, want %+v", removed, b)
	}
	wantHeld(t, s, env, expiry, nil)
	if _, err := s.ForceRelease(ctx, env); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("ForceRelease of a free lock: error = %v, want ErrNotFound", err)
	}
	if err := s.Renew(ctx, env, "op-b", expiry, lease); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("Renew after a forced release: error = %v, want it lost", err)
	}
	if err := s.Release(ctx, env, "op-b"); err != nil {
		t.Errorf("Release of a lock already gone: %v", err)
	}

	// Released by its owner, the lock is free at once.
	c := leaseLock(env, "op-c", expiry)
	if err := s.Acquire(ctx, c, expiry); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, env, "op-c"); err != nil {
		t.Fatal(err)
	}
	wantHeld(t, s, env, expiry, nil)
}

func TestManualLock(t *testing.T) {
	s := newLocks(t)
	ctx := t.Context()
	m := ops.Lock{Env: "production", Owner: "U1", Holder: "U1", Reason: "db maintenance", Manual: true, AcquiredAt: t0}
	if err := s.Acquire(ctx, m, t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(365 * 24 * time.Hour)
	wantHeld(t, s, "production", later, &m)

	err := s.Acquire(ctx, leaseLock("production", "op-a", later), later)
	wantLockError(t, err, "U1")
	if !strings.Contains(err.Error(), "manual lock") {
		t.Errorf("LockError %q does not say the lock is manual", err)
	}
	if err := s.Renew(ctx, "production", "U1", later, lease); err != nil {
		t.Errorf("Renew of an own manual lock: %v", err)
	}
	wantHeld(t, s, "production", later, &m)
}

func TestLockInvalid(t *testing.T) {
	s := newLocks(t)
	noExpiry := leaseLock("production", "op-a", t0)
	noExpiry.ExpiresAt = time.Time{}
	tests := []struct {
		name string
		l    ops.Lock
	}{
		{"no env", leaseLock("", "op-a", t0)},
		{"no owner", leaseLock("production", "", t0)},
		{"lease without expiry", noExpiry},
		{"lease already over", leaseLock("production", "op-a", t0.Add(-lease))},
	}
	for _, tt := range tests {
		if err := s.Acquire(t.Context(), tt.l, t0); err == nil {
			t.Errorf("Acquire (%s): got nil error", tt.name)
		}
	}
	wantHeld(t, s, "production", t0, nil)

	if err := s.Acquire(t.Context(), leaseLock("production", "op-a", t0), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(t.Context(), "production", "op-a", t0, 0); err == nil {
		t.Error("Renew with a zero lease: got nil error")
	}
}

func TestListLocks(t *testing.T) {
	s := newLocks(t)
	staging := leaseLock("staging", "op-s", t0)
	dev := leaseLock("development", "op-d", t0.Add(-4*time.Minute)) // expires at t0+1m
	prod := ops.Lock{Env: "production", Owner: "U1", Holder: "U1", Reason: "freeze", Manual: true, AcquiredAt: t0}
	for _, l := range []ops.Lock{staging, dev, prod} {
		if err := s.Acquire(t.Context(), l, t0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		now  time.Time
		want []ops.Lock
	}{
		{t0, []ops.Lock{dev, prod, staging}},
		{t0.Add(time.Minute), []ops.Lock{prod, staging}},
		{t0.Add(lease), []ops.Lock{prod}},
	}
	for _, tt := range tests {
		got, err := s.List(t.Context(), tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("List at +%v = %+v, want %+v", tt.now.Sub(t0), got, tt.want)
		}
	}
}

func TestAcquireConcurrent(t *testing.T) {
	store, dsn := newStore(t)
	s := store.Locks()
	stores := []*postgres.Locks{s, open(t, dsn).Locks()}
	const contenders = 16

	for _, tc := range []struct {
		name string
		env  string
		prev *ops.Lock // a lock present before the race
		now  time.Time
	}{
		{"free", "staging", nil, t0},
		{"expired", "production", &ops.Lock{Env: "production", Owner: "dead", Holder: "U0", AcquiredAt: t0, ExpiresAt: t0.Add(lease)}, t0.Add(lease)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prev != nil {
				if err := s.Acquire(t.Context(), *tc.prev, t0); err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, contenders)
			var wg sync.WaitGroup
			for i := range contenders {
				wg.Go(func() {
					l := leaseLock(tc.env, string(rune('a'+i)), tc.now)
					errs[i] = stores[i%len(stores)].Acquire(context.Background(), l, tc.now)
				})
			}
			wg.Wait()

			winner, ok, err := s.Get(t.Context(), tc.env, tc.now)
			if err != nil || !ok {
				t.Fatalf("after the race: held %v, %v", ok, err)
			}
			wins := 0
			for i, err := range errs {
				if err == nil {
					wins++
					if owner := string(rune('a' + i)); owner != winner.Owner {
						t.Errorf("%s acquired, but %s holds the lock", owner, winner.Owner)
					}
					continue
				}
				wantLockError(t, err, winner.Owner)
			}
			if wins != 1 {
				t.Errorf("%d of %d concurrent acquisitions won, want exactly 1", wins, contenders)
			}
		})
	}
}
