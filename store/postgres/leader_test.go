package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// tryLeader calls TryLeader and wants ok; a leadership taken is released
// when the test ends.
func tryLeader(t *testing.T, s *postgres.Store, key int64, want bool) *postgres.Leadership {
	t.Helper()
	l, ok, err := s.TryLeader(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if ok != want {
		t.Fatalf("TryLeader(%d) ok = %v, want %v", key, ok, want)
	}
	if ok {
		t.Cleanup(l.Release) // idempotent
	}
	return l
}

func TestTryLeader(t *testing.T) {
	a, dsn := newStore(t)
	b := open(t, dsn)
	const key = 42

	la := tryLeader(t, a, key, true)
	tryLeader(t, b, key, false)
	tryLeader(t, a, key, false) // each leadership is a session of its own
	tryLeader(t, b, key+1, true).Release()
	if err := la.Check(t.Context()); err != nil {
		t.Errorf("Check of a held leadership: %v", err)
	}

	la.Release()
	la.Release()
	if err := la.Check(t.Context()); err == nil {
		t.Error("Check after Release: got nil error")
	}
	lb := tryLeader(t, b, key, true)
	if lb.Term().N <= la.Term().N {
		t.Errorf("terms %d then %d; each new leadership must have a higher term", la.Term().N, lb.Term().N)
	}
	tryLeader(t, a, key, false)
	lb.Release()
	tryLeader(t, a, key, true)
}

// TestLeaderSessionTerminated ends the leader's session as a PostgreSQL
// restart or a network cut would: the holder learns it at its next check,
// another replica leads with a higher term, and the writes the old leader
// makes with its term are refused while the new leader's go through.
func TestLeaderSessionTerminated(t *testing.T) {
	a, dsn := newStore(t)
	b := open(t, dsn)
	ctx := t.Context()
	const key = 7

	old := tryLeader(t, a, key, true)
	oldCtx := postgres.WithTerm(ctx, old.Term(), nil)
	due := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	if won, err := a.ClaimRun(oldCtx, "nightly", due); err != nil || !won {
		t.Fatalf("a claim under the current term: %v, %v", won, err)
	}
	op := ops.Operation{ID: "op-1", Kind: ops.KindDeploy, Env: "staging", State: ops.StepLocked, CreatedAt: due, UpdatedAt: due}
	if err := a.Create(oldCtx, op); err != nil {
		t.Fatal(err)
	}

	var killed int
	err := b.Pool().QueryRow(ctx,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		 WHERE locktype = 'advisory' AND granted AND objid = $1
		   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, key).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the leader's session: %d sessions, %v", killed, err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := old.Check(checkCtx); err == nil {
		t.Fatal("Check after the session was terminated: got nil error")
	}

	next := tryLeader(t, b, key, true)
	if next.Term().N <= old.Term().N {
		t.Fatalf("new term %d is not above the old one %d", next.Term().N, old.Term().N)
	}

	var stale []error
	staleCtx := postgres.WithTerm(ctx, old.Term(), func(err error) { stale = append(stale, err) })
	e := ops.JournalEntry{At: due.Add(time.Minute), Step: ops.StepSnapshotted, Phase: ops.PhaseEnd, Detail: "snapshot taken"}
	writes := map[string]error{}
	_, writes["ClaimRun"] = a.ClaimRun(staleCtx, "nightly", due.Add(24*time.Hour))
	writes["Record"] = a.Record(staleCtx, op, e)
	_, _, writes["TransitionOperation"] = a.TransitionOperation(staleCtx, op.ID, []ops.Step{ops.StepLocked}, ops.StepFailed, e)
	writes["Create"] = a.Create(staleCtx, ops.Operation{ID: "op-2", Kind: ops.KindRollback, Env: "staging", State: ops.StepLocked, CreatedAt: due, UpdatedAt: due})
	alert := incidents.Alert{Key: "staging/health-unhealthy", Source: "monitor", Env: "staging", Name: "health-unhealthy",
		Severity: incidents.Critical, Firing: true, Summary: "unhealthy", Count: 1, StartsAt: due}
	_, _, writes["UpsertAlert"] = a.UpsertAlert(staleCtx, alert, due)
	writes["SetAlertMessage"] = a.SetAlertMessage(staleCtx, alert.Key, "CCRIT", "1.1")
	_, writes["ClaimReminder"] = a.ClaimReminder(staleCtx, "INC-1", due, due)
	_, writes["MarkEscalated"] = a.MarkEscalated(staleCtx, "INC-1")
	_, writes["ClaimRotationReminder"] = a.ClaimRotationReminder(staleCtx, "staging", "JWT_SECRET", due, due)
	_, writes["ClaimWindowEvent"] = a.ClaimWindowEvent(staleCtx, 1, "start", due)
	_, writes["MoveWindow"] = a.MoveWindow(staleCtx, ops.MaintenanceWindow{ID: 1}, nil, due)
	for name, err := range writes {
		var se *postgres.StaleTermError
		if !errors.As(err, &se) || se.Term != old.Term() || se.Current != next.Term().N {
			t.Errorf("%s with the old term: %v; want a StaleTermError (term %d, current %d)", name, err, old.Term().N, next.Term().N)
		}
	}
	if len(stale) != len(writes) {
		t.Errorf("the stale callback ran %d times for %d refused writes", len(stale), len(writes))
	}
	if got, err := a.Get(ctx, op.ID); err != nil || len(got.Journal) != 0 || got.State != ops.StepLocked {
		t.Errorf("a refused write changed the operation: %+v, %v", got, err)
	}
	if last, _, err := a.LastRun(ctx, "nightly"); err != nil || !last.Equal(due) {
		t.Errorf("a refused claim moved the job's last run to %s (%v)", last, err)
	}
	if _, err := a.GetAlert(ctx, alert.Key); !errors.Is(err, postgres.ErrAlertNotFound) {
		t.Errorf("a refused upsert recorded the alert: %v", err)
	}

	nextCtx := postgres.WithTerm(ctx, next.Term(), nil)
	if won, err := b.ClaimRun(nextCtx, "nightly", due.Add(24*time.Hour)); err != nil || !won {
		t.Errorf("a claim under the new term: %v, %v", won, err)
	}
	if err := b.Record(nextCtx, op, e); err != nil {
		t.Errorf("a journal entry under the new term: %v", err)
	}
	if err := next.Check(ctx); err != nil {
		t.Errorf("Check of the new leadership: %v", err)
	}
}
