package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// leadershipOn returns a leadership of key on a fresh store, checking and
// competing every interval, the store, and a reader of the leadership's
// metrics by name.
func leadershipOn(t *testing.T, key int64, every time.Duration) (*leadership, *postgres.Store, func(string) float64) {
	t.Helper()
	dsn := testenv.Postgres(t)
	if err := postgres.MigrateUp(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	reg := prometheus.NewRegistry()
	metric := func(name string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name {
				m := f.GetMetric()[0]
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	return &leadership{store: s, key: key, every: every, log: zerolog.New(zerolog.NewTestWriter(t)),
		metrics: newLeaderMetrics(reg)}, s, metric
}

// runLeadership runs l.Run until the test ends, and waits for it then.
func runLeadership(t *testing.T, l *leadership, lead func(context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, lead) }()
	t.Cleanup(func() { cancel(); <-done })
}

// within waits up to a minute for cond.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
	}
}

// TestLeadershipStopsAtARefusedWrite lets a newer term begin while the
// leader has not checked yet (it checks hourly here): its next fenced
// write is refused, and that alone stops its loops, as a lost leadership.
func TestLeadershipStopsAtARefusedWrite(t *testing.T) {
	const key = 11
	l, s, metric := leadershipOn(t, key, time.Hour)
	var claims atomic.Int64
	lastErr := make(chan error, 1)
	runLeadership(t, l, func(ctx context.Context) {
		due := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var err error
		for ctx.Err() == nil {
			due = due.Add(time.Minute)
			if _, err = s.ClaimRun(ctx, "job", due); err == nil {
				claims.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lastErr <- err
	})
	within(t, "the leader's first claims", func() bool { return claims.Load() > 2 })

	// Another session begins a term, as a replica that took the lock of a
	// session that just ended would.
	if _, err := s.Pool().Exec(t.Context(), `UPDATE leader_terms SET term = term + 1 WHERE key = $1`, key); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-lastErr:
	case <-time.After(time.Minute):
		t.Fatal("the leader loops still run a minute after a write was refused")
	}
	var stale *postgres.StaleTermError
	if !errors.As(err, &stale) {
		t.Errorf("the loops' last write: %v; want a StaleTermError", err)
	}
	within(t, "the loss to be counted", func() bool { return metric("togather_chatops_leadership_lost_total") == 1 })
	if g := metric("togather_chatops_leader"); g != 0 {
		t.Errorf("leader gauge %v after the loss, want 0", g)
	}
}

// TestLeadershipSessionEndedStopsThenLeadsAgain ends the lock's session:
// the next check fails, the loops are stopped and waited for, and with no
// other replica competing this one leads again, under a new term.
func TestLeadershipSessionEndedStopsThenLeadsAgain(t *testing.T) {
	const key = 12
	l, s, metric := leadershipOn(t, key, 100*time.Millisecond)
	var running, terms atomic.Int64
	runLeadership(t, l, func(ctx context.Context) {
		terms.Add(1)
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // a loop that takes a while to wind down
	})
	within(t, "leadership", func() bool { return running.Load() == 1 })

	var killed int
	err := s.Pool().QueryRow(t.Context(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		 WHERE locktype = 'advisory' AND granted AND objid = $1
		   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, key).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the leader's session: %d sessions, %v", killed, err)
	}
	within(t, "the loss to be counted", func() bool { return metric("togather_chatops_leadership_lost_total") == 1 })
	if n := running.Load(); n != 0 {
		t.Errorf("%d leader loops still running once the loss was counted", n)
	}
	within(t, "leadership again", func() bool { return terms.Load() == 2 && running.Load() == 1 })
	if g := metric("togather_chatops_leadership_gained_total"); g != 2 {
		t.Errorf("gained leadership %v times, want 2", g)
	}
	var term int64
	if err := s.Pool().QueryRow(t.Context(), `SELECT term FROM leader_terms WHERE key = $1`, key).Scan(&term); err != nil || term != 2 {
		t.Errorf("current term %d (%v), want 2", term, err)
	}
}
