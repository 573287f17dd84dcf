package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// newStore returns a Store on a fresh, migrated database, and its DSN.
func newStore(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	if err := postgres.MigrateUp(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	return open(t, dsn), dsn
}

// open opens a Store on dsn, closed when the test ends.
func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// race runs claim n times at once, spread over stores (standing for
// replicas), and returns how many calls reported true.
func race(t *testing.T, stores []*postgres.Store, n int, claim func(*postgres.Store) (bool, error)) int {
	t.Helper()
	results := make(chan bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			won, err := claim(stores[i%len(stores)])
			if err != nil {
				t.Error(err)
			}
			results <- won
		})
	}
	wg.Wait()
	close(results)
	winners := 0
	for won := range results {
		if won {
			winners++
		}
	}
	return winners
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func TestAuditLog(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()

	entries := []bot.AuditEntry{
		{At: t0, Actor: "U1", Action: "deploy", Environment: "staging", Decision: bot.Allowed, Detail: "a"},
		{At: t0.Add(1 * time.Minute), Actor: "U2", Action: "deploy", Environment: "production", Decision: bot.Denied, Detail: "b"},
		{At: t0.Add(2 * time.Minute), Actor: "U1", Action: "snapshot.restore", Environment: "production", Decision: bot.Allowed, Detail: "c"},
		{At: t0.Add(3 * time.Minute), Actor: "cli:ops", Action: "status", Decision: bot.Allowed, Detail: "d"},
		// Recorded late but older: order is by time, not by insertion.
		{At: t0.Add(-1 * time.Minute), Actor: "U2", Action: "deploy", Environment: "staging", Decision: bot.Allowed, Detail: "e"},
	}
	for _, e := range entries {
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name  string
		query postgres.AuditQuery
		want  []string // Details, newest first
	}{
		{"all", postgres.AuditQuery{}, []string{"d", "c", "b", "a", "e"}},
		{"environment", postgres.AuditQuery{Environment: "production"}, []string{"c", "b"}},
		{"actor", postgres.AuditQuery{Actor: "U1"}, []string{"c", "a"}},
		{"action", postgres.AuditQuery{Action: "deploy"}, []string{"b", "a", "e"}},
		{"all filters", postgres.AuditQuery{Environment: "staging", Actor: "U2", Action: "deploy"}, []string{"e"}},
		{"no match", postgres.AuditQuery{Environment: "nowhere"}, nil},
		{"limit", postgres.AuditQuery{Action: "deploy", Limit: 2}, []string{"b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditLog(ctx, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var details []string
			for _, e := range got {
				details = append(details, e.Detail)
			}
			if !slices.Equal(details, tt.want) {
				t.Errorf("details = %q, want %q", details, tt.want)
			}
		})
	}

	// Every field survives the round trip.
	got, err := s.AuditLog(ctx, postgres.AuditQuery{Actor: "U2", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d entries, want 1", len(got))
	}
	want := entries[1]
	if g := got[0]; !g.At.Equal(want.At) || g.Actor != want.Actor || g.Action != want.Action ||
		g.Environment != want.Environment || g.Decision != want.Decision || g.Detail != want.Detail {
		t.Errorf("entry = %+v, want %+v", g, want)
	}
}

func TestAuditRejectsEntryWithoutTime(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Audit(t.Context(), bot.AuditEntry{Actor: "U1", Action: "deploy", Decision: bot.Allowed}); err == nil {
		t.Fatal("Audit without At: got nil error")
	}
}

func TestClaimEnvelope(t *testing.T) {
	s, _ := newStore(t)
	const ttl = time.Hour

	steps := []struct {
		name  string
		id    string
		now   time.Time
		first bool
	}{
		{"first claim", "E1", t0, true},
		{"redelivery", "E1", t0.Add(time.Second), false},
		{"other envelope", "E2", t0.Add(time.Second), true},
		{"just before expiry", "E1", t0.Add(ttl - time.Microsecond), false},
		{"at expiry", "E1", t0.Add(ttl), true},
		{"redelivery after reclaim", "E1", t0.Add(ttl + time.Second), false},
	}
	for _, step := range steps {
		first, err := s.ClaimEnvelope(t.Context(), step.id, step.now, ttl)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if first != step.first {
			t.Errorf("%s: first = %v, want %v", step.name, first, step.first)
		}
	}
}

func TestClaimEnvelopeInvalid(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name string
		id   string
		ttl  time.Duration
	}{
		{"empty id", "", time.Hour},
		{"zero ttl", "E1", 0},
		{"negative ttl", "E1", -time.Hour},
	}
	for _, tt := range tests {
		if _, err := s.ClaimEnvelope(t.Context(), tt.id, t0, tt.ttl); err == nil {
			t.Errorf("%s: got nil error", tt.name)
		}
	}
}

func TestClaimEnvelopeConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	// Two stores stand for two replicas receiving the same redelivered envelope.
	stores := []*postgres.Store{s, open(t, dsn)}
	const claims = 16

	for _, tc := range []struct {
		name string
		now  time.Time
	}{
		{"new envelope", t0},
		{"expired envelope", t0.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			winners := race(t, stores, claims, func(s *postgres.Store) (bool, error) {
				return s.ClaimEnvelope(context.Background(), "E-race", tc.now, time.Hour)
			})
			if winners != 1 {
				t.Errorf("%d of %d concurrent claims won, want exactly 1", winners, claims)
			}
		})
	}
}

func TestPruneEnvelopes(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	claim := func(id string, now time.Time, ttl time.Duration) bool {
		t.Helper()
		first, err := s.ClaimEnvelope(ctx, id, now, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	prune := func(now time.Time, want int64) {
		t.Helper()
		n, err := s.PruneEnvelopes(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("PruneEnvelopes(%v) = %d, want %d", now.Sub(t0), n, want)
		}
	}

	claim("short", t0, time.Minute)
	claim("long", t0, time.Hour)
	prune(t0, 0)
	prune(t0.Add(time.Minute), 1)
	prune(t0.Add(time.Minute), 0)
	if claim("long", t0.Add(time.Minute), time.Hour) {
		t.Error("pruning removed an unexpired envelope")
	}
	if !claim("short", t0.Add(time.Minute), time.Minute) {
		t.Error("a pruned envelope could not be claimed again")
	}
	prune(t0.Add(2*time.Hour), 2)
}
