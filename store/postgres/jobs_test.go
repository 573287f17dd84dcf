package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/schedule"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

var _ schedule.Claimer = (*postgres.Store)(nil)

func TestClaimRun(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	due := t0.Truncate(time.Minute)

	lastRun := func(job string) (time.Time, bool) {
		t.Helper()
		last, ok, err := s.LastRun(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		return last, ok
	}
	if _, ok := lastRun("snapshot-prune"); ok {
		t.Fatal("fresh store: LastRun ok = true, want false")
	}

	steps := []struct {
		name string
		job  string
		due  time.Time
		want bool
	}{
		{"first", "snapshot-prune", due, true},
		{"same due again", "snapshot-prune", due, false},
		{"same due in another zone", "snapshot-prune", due.In(time.FixedZone("X", 3600)), false},
		{"next due", "snapshot-prune", due.Add(24 * time.Hour), true},
		{"older due after a newer one", "snapshot-prune", due.Add(12 * time.Hour), false},
		{"much older due", "snapshot-prune", due.Add(-24 * time.Hour), false},
		{"other job", "db-report", due, true},
		{"later due", "snapshot-prune", due.Add(48 * time.Hour), true},
	}
	for _, st := range steps {
		won, err := s.ClaimRun(ctx, st.job, st.due)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if won != st.want {
			t.Errorf("%s: claimed = %v, want %v", st.name, won, st.want)
		}
	}

	for job, want := range map[string]time.Time{
		"snapshot-prune": due.Add(48 * time.Hour),
		"db-report":      due,
	} {
		last, ok := lastRun(job)
		if !ok || !last.Equal(want) {
			t.Errorf("LastRun(%s) = %v, %v; want %v, true", job, last, ok, want)
		}
	}
	if _, err := s.ClaimRun(ctx, "", due); err == nil {
		t.Error("ClaimRun with an empty job name: got nil error")
	}
}

func TestClaimRunConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	const callers = 16
	due := t0.Truncate(time.Minute)

	for i, tc := range []struct {
		name string
		due  time.Time
	}{
		{"first run ever", due},
		{"next run", due.Add(24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			winners := race(t, stores, callers, func(s *postgres.Store) (bool, error) {
				return s.ClaimRun(context.Background(), "snapshot-prune", tc.due)
			})
			if winners != 1 {
				t.Errorf("%d of %d concurrent claims won, want exactly 1", winners, callers)
			}
			last, ok, err := s.LastRun(t.Context(), "snapshot-prune")
			if err != nil || !ok || !last.Equal(tc.due) {
				t.Errorf("after race %d: LastRun = %v, %v, %v; want %v", i, last, ok, err, tc.due)
			}
		})
	}

	// Replicas racing over different due times: only claims moving forward win,
	// and the newest due is the last run.
	due = due.Add(48 * time.Hour)
	winners := race(t, stores, callers, func(s *postgres.Store) (bool, error) {
		return s.ClaimRun(context.Background(), "db-report", due)
	})
	if winners != 1 {
		t.Errorf("db-report: %d of %d concurrent claims won, want exactly 1", winners, callers)
	}
	if won, err := s.ClaimRun(t.Context(), "db-report", due.Add(-time.Minute)); err != nil || won {
		t.Errorf("older due after the race: claimed = %v, %v; want false", won, err)
	}
}

func TestDBSizeHistory(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	at := t0.Truncate(time.Microsecond)
	week := 7 * 24 * time.Hour

	records := []struct {
		env   string
		at    time.Time
		bytes int64
	}{
		{"production", at, 1000},
		{"production", at.Add(week), 1500},
		{"production", at.Add(2 * week), 1800},
		{"staging", at.Add(week), 10},
		{"production", at.Add(week), 1600}, // same time again replaces
	}
	for _, r := range records {
		if err := s.RecordDBSize(ctx, r.env, r.at, r.bytes); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		env   string
		at    time.Time
		ok    bool
		bytes int64
		when  time.Time
	}{
		{"production", at.Add(-time.Microsecond), false, 0, time.Time{}},
		{"production", at, true, 1000, at},
		{"production", at.Add(week - time.Microsecond), true, 1000, at},
		{"production", at.Add(week), true, 1600, at.Add(week)},
		{"production", at.Add(10 * week), true, 1800, at.Add(2 * week)},
		{"staging", at.Add(10 * week), true, 10, at.Add(week)},
		{"staging", at, false, 0, time.Time{}},
		{"nowhere", at.Add(10 * week), false, 0, time.Time{}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s at %v", tt.env, tt.at.Sub(at))
		bytes, when, ok, err := s.DBSizeBefore(ctx, tt.env, tt.at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ok != tt.ok || bytes != tt.bytes || !when.Equal(tt.when) {
			t.Errorf("%s: DBSizeBefore = %d, %v, %v; want %d, %v, %v", name, bytes, when, ok, tt.bytes, tt.when, tt.ok)
		}
	}

	if err := s.RecordDBSize(ctx, "production", at.Add(3*week), -1); err == nil {
		t.Error("RecordDBSize with a negative size: got nil error")
	}
}
