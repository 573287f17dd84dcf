package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// allSteps is every ops.Step, terminal or not.
var allSteps = []ops.Step{
	ops.StepRequested, ops.StepApproved, ops.StepLocked, ops.StepSnapshotted, ops.StepMigrated,
	ops.StepStarted, ops.StepHealthy, ops.StepSwitched, ops.StepVerified,
	ops.StepDone, ops.StepFailed, ops.StepRolledBack, ops.StepNeedsAttention,
}

// newOp returns a requested deploy of env created at created.
func newOp(id, env string, created time.Time) ops.Operation {
	return ops.Operation{ID: id, Kind: ops.KindDeploy, Env: env, Requester: "U1", State: ops.StepRequested,
		Version: "abc1234", Image: "togather-server:abc1234", CreatedAt: created, UpdatedAt: created}
}

// create stores each operation.
func create(t *testing.T, s *postgres.Store, list ...ops.Operation) {
	t.Helper()
	for _, op := range list {
		if err := s.Create(t.Context(), op); err != nil {
			t.Fatal(err)
		}
	}
}

// get reads operation id.
func get(t *testing.T, s *postgres.Store, id string) ops.Operation {
	t.Helper()
	op, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// ids returns the ids of list, in order.
func ids(list []ops.Operation) []string {
	var out []string
	for _, op := range list {
		out = append(out, op.ID)
	}
	return out
}

func TestJournalRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()

	op := ops.Operation{
		ID: "op-1", Kind: ops.KindDeploy, Env: "production", Requester: "U1", Reason: "release 42",
		State: ops.StepRequested, Version: "abc1234", Image: "togather-server:abc1234", ImageID: "sha256:aa",
		CreatedAt: t0, UpdatedAt: t0,
		Chat:    map[string]string{"channel": "C1", "thread": "1700000000.000100"},
		Journal: []ops.JournalEntry{{At: t0, Step: ops.StepRequested, Phase: ops.PhaseNote, Detail: "requested"}},
		Approval: &ops.Approval{Needed: 2, Expires: t0.Add(30 * time.Minute), Binding: &ops.Binding{ImageID: "sha256:aa",
			Migrations: []string{"2_add_index"}, Outcomes: map[string]ops.CheckStatus{"window": ops.CheckWarn}, OverrideWindow: "hotfix"}},
	}
	create(t, s, op)
	if got := get(t, s, op.ID); !reflect.DeepEqual(got, op) {
		t.Fatalf("after Create:\n got %+v\nwant %+v", got, op)
	}

	// Record writes every field but the identity ones and the approval.
	want := op
	want.Reason, want.State, want.Version, want.Image = "release 43", ops.StepDone, "def5678", "togather-server:def5678"
	want.ImageID, want.FromSlot, want.ToSlot, want.PrevImage = "sha256:bb", ops.Blue, ops.Green, "togather-server:abc1234"
	want.Snapshot, want.Error, want.BakeUntil, want.Baked = "togather_db_x.sql.gz", "none", t0.Add(time.Hour), true
	want.Chat = map[string]string{"channel": "C2"}
	want.UpdatedAt = t0.Add(time.Minute)
	entries := []ops.JournalEntry{
		{At: t0.Add(time.Minute), Step: ops.StepSwitched, Phase: ops.PhaseBegin},
		{At: t0.Add(time.Minute), Step: ops.StepSwitched, Phase: ops.PhaseEnd, Detail: "green serves"},
	}
	changed := want
	changed.Kind, changed.Env, changed.Requester, changed.CreatedAt = ops.KindRestore, "staging", "U9", t0.Add(time.Hour)
	changed.Approval = &ops.Approval{Needed: 0}
	for _, e := range entries {
		if err := s.Record(ctx, changed, e); err != nil {
			t.Fatal(err)
		}
	}
	want.Journal = append(want.Journal, entries...)
	if got := get(t, s, op.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Record:\n got %+v\nwant %+v", got, want)
	}

	// Zero and empty values come back zero and empty.
	want.BakeUntil, want.Baked, want.Chat, want.Error = time.Time{}, false, nil, ""
	e := ops.JournalEntry{At: t0.Add(2 * time.Minute), Step: ops.StepDone, Phase: ops.PhaseNote}
	if err := s.Record(ctx, want, e); err != nil {
		t.Fatal(err)
	}
	want.Journal = append(want.Journal, e)
	if got := get(t, s, op.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("after clearing fields:\n got %+v\nwant %+v", got, want)
	}
}

func TestJournalErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	op := newOp("op-1", "staging", t0)
	create(t, s, op)

	if err := s.Create(ctx, op); err == nil {
		t.Error("Create of an existing id: got nil error")
	}
	for name, bad := range map[string]ops.Operation{
		"no id":         newOp("", "staging", t0),
		"no created_at": newOp("op-2", "staging", time.Time{}),
		"untimed entry": {ID: "op-3", CreatedAt: t0, Journal: []ops.JournalEntry{{Step: ops.StepRequested}}},
	} {
		if err := s.Create(ctx, bad); err == nil {
			t.Errorf("Create (%s): got nil error", name)
		}
	}
	if _, err := s.Get(ctx, "op-3"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("a failed Create left op-3 behind: Get error = %v", err)
	}

	entry := ops.JournalEntry{At: t0, Step: ops.StepApproved, Phase: ops.PhaseEnd}
	if err := s.Record(ctx, newOp("nope", "staging", t0), entry); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("Record of an unknown operation: error = %v, want ErrNotFound", err)
	}
	if err := s.Record(ctx, op, ops.JournalEntry{Step: ops.StepApproved}); err == nil {
		t.Error("Record of an entry without time: got nil error")
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("Get of an unknown operation: error = %v, want ErrNotFound", err)
	}
	if got := get(t, s, op.ID); !reflect.DeepEqual(got, op) {
		t.Errorf("failed calls changed the operation:\n got %+v\nwant %+v", got, op)
	}
}

func TestRecordIsAtomic(t *testing.T) {
	s, _ := newStore(t)
	op := newOp("op-1", "staging", t0)
	create(t, s, op)

	// PostgreSQL text cannot hold NUL: a bad entry must not leave the
	// fields written, nor a bad field leave the entry appended.
	badEntry := op
	badEntry.State, badEntry.Error = ops.StepFailed, "boom"
	badField := op
	badField.State, badField.Error = ops.StepFailed, "bo\x00om"
	tests := []struct {
		name string
		op   ops.Operation
		e    ops.JournalEntry
	}{
		{"bad entry", badEntry, ops.JournalEntry{At: t0, Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "bo\x00om"}},
		{"bad field", badField, ops.JournalEntry{At: t0, Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "boom"}},
	}
	for _, tt := range tests {
		if err := s.Record(t.Context(), tt.op, tt.e); err == nil {
			t.Fatalf("%s: got nil error", tt.name)
		}
		if got := get(t, s, op.ID); !reflect.DeepEqual(got, op) {
			t.Errorf("%s: a failed Record changed the operation:\n got %+v\nwant %+v", tt.name, got, op)
		}
	}
}

func TestUnfinished(t *testing.T) {
	s, _ := newStore(t)
	var want []string
	for _, step := range allSteps {
		if !step.Terminal() {
			want = append(want, string(step))
		}
	}
	// Created newest first, so the order returned is not insertion order.
	for i, step := range slices.Backward(allSteps) {
		op := newOp(string(step), "production", t0.Add(time.Duration(i)*time.Minute))
		op.State = step
		op.Journal = []ops.JournalEntry{{At: op.CreatedAt, Step: step, Phase: ops.PhaseEnd}}
		create(t, s, op)
	}
	got, err := s.Unfinished(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Unfinished = %q, want %q (oldest first)", ids(got), want)
	}
	for _, op := range got {
		if len(op.Journal) != 1 || op.Journal[0].Step != op.State {
			t.Errorf("%s: journal = %+v, want its one entry", op.ID, op.Journal)
		}
	}
}

func TestHistory(t *testing.T) {
	s, _ := newStore(t)
	for i, env := range []string{"production", "staging", "production", "production"} {
		op := newOp(string(rune('a'+i)), env, t0.Add(time.Duration(i)*time.Minute))
		op.Journal = []ops.JournalEntry{{At: op.CreatedAt, Step: ops.StepRequested, Phase: ops.PhaseNote, Detail: op.ID}}
		create(t, s, op)
	}
	tests := []struct {
		env   string
		limit int
		want  []string
	}{
		{"production", 10, []string{"d", "c", "a"}},
		{"production", 2, []string{"d", "c"}},
		{"staging", 10, []string{"b"}},
		{"development", 10, nil},
		{"production", 0, nil},
		{"production", -1, nil},
	}
	for _, tt := range tests {
		got, err := s.History(t.Context(), tt.env, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("History(%s, %d) = %q, want %q", tt.env, tt.limit, ids(got), tt.want)
		}
		for _, op := range got {
			if len(op.Journal) != 1 || op.Journal[0].Detail != op.ID {
				t.Errorf("History(%s): %s has journal %+v, want its own entry", tt.env, op.ID, op.Journal)
			}
		}
	}
}

func TestUnbaked(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		id        string
		kind      ops.Kind
		state     ops.Step
		bakeUntil time.Time
		baked     bool
		unbaked   bool
	}{
		{"warm", ops.KindDeploy, ops.StepDone, t0.Add(time.Hour), false, true},
		{"warm, past deadline", ops.KindDeploy, ops.StepDone, t0.Add(-time.Hour), false, true},
		{"baked", ops.KindDeploy, ops.StepDone, t0.Add(time.Hour), true, false},
		{"no deadline", ops.KindDeploy, ops.StepDone, time.Time{}, false, false},
		{"still running", ops.KindDeploy, ops.StepVerified, t0.Add(time.Hour), false, false},
		{"failed", ops.KindDeploy, ops.StepFailed, t0.Add(time.Hour), false, false},
		{"rollback", ops.KindRollback, ops.StepDone, t0.Add(time.Hour), false, false},
	}
	var want []string
	for i, tt := range tests {
		op := newOp(tt.id, "production", t0.Add(time.Duration(i)*time.Second))
		op.Kind, op.State, op.BakeUntil, op.Baked = tt.kind, tt.state, tt.bakeUntil, tt.baked
		create(t, s, op)
		if tt.unbaked {
			want = append(want, tt.id)
		}
	}
	got, err := s.Unbaked(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Unbaked = %q, want %q", ids(got), want)
	}
}

func TestTransitionOperation(t *testing.T) {
	s, _ := newStore(t)
	create(t, s, newOp("op-1", "production", t0))
	waiting := []ops.Step{ops.StepRequested}

	steps := []struct {
		name      string
		from      []ops.Step
		to        ops.Step
		moved     bool
		wantState ops.Step
	}{
		{"approve", waiting, ops.StepApproved, true, ops.StepApproved},
		{"approve again", waiting, ops.StepApproved, false, ops.StepApproved},
		{"reject after approval", waiting, ops.StepFailed, false, ops.StepApproved},
		{"cancel", []ops.Step{ops.StepRequested, ops.StepApproved}, ops.StepFailed, true, ops.StepFailed},
		{"no from state", nil, ops.StepApproved, false, ops.StepFailed},
	}
	journal := 0
	for i, step := range steps {
		at := t0.Add(time.Duration(i+1) * time.Minute)
		e := ops.JournalEntry{At: at, Step: step.to, Phase: ops.PhaseEnd, Detail: step.name}
		op, moved, err := s.TransitionOperation(t.Context(), "op-1", step.from, step.to, e)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if moved {
			journal++
		}
		if moved != step.moved || op.State != step.wantState || len(op.Journal) != journal {
			t.Errorf("%s: moved = %v, state %s, %d entries; want %v, %s, %d",
				step.name, moved, op.State, len(op.Journal), step.moved, step.wantState, journal)
		}
		if moved && (!op.UpdatedAt.Equal(at) || op.Journal[journal-1] != e) {
			t.Errorf("%s: updated_at %v, last entry %+v; want %v, %+v", step.name, op.UpdatedAt, op.Journal[journal-1], at, e)
		}
		if !reflect.DeepEqual(get(t, s, "op-1"), op) {
			t.Errorf("%s: returned operation differs from the stored one", step.name)
		}
	}

	e := ops.JournalEntry{At: t0, Step: ops.StepApproved, Phase: ops.PhaseEnd}
	if _, _, err := s.TransitionOperation(t.Context(), "nope", waiting, ops.StepApproved, e); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("unknown operation: error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.TransitionOperation(t.Context(), "op-1", []ops.Step{ops.StepFailed}, ops.StepDone, ops.JournalEntry{}); err == nil {
		t.Error("entry without time: got nil error")
	}
}

func TestTransitionOperationConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	create(t, s, newOp("op-1", "production", t0))
	const approvers = 16

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range approvers {
		wg.Go(func() {
			who := string(rune('A' + i))
			e := ops.JournalEntry{At: t0.Add(time.Minute), Step: ops.StepApproved, Phase: ops.PhaseEnd, Detail: who}
			op, moved, err := stores[i%len(stores)].TransitionOperation(context.Background(), "op-1",
				[]ops.Step{ops.StepRequested}, ops.StepApproved, e)
			if err != nil {
				t.Error(err)
				return
			}
			if op.State != ops.StepApproved {
				t.Errorf("%s sees state %s after the race, want approved", who, op.State)
			}
			if moved {
				mu.Lock()
				winners = append(winners, who)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent transitions moved the operation (%q), want exactly 1", len(winners), approvers, winners)
	}
	op := get(t, s, "op-1")
	if len(op.Journal) != 1 || op.Journal[0].Detail != winners[0] {
		t.Errorf("journal = %+v, want the single entry of %s", op.Journal, winners[0])
	}
}

// One user approving many times at once, through two stores (replicas), is
// one approval; another user is a second one; once the operation moved on
// nobody is added.
func TestApproveIsASetOfDistinctUsers(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	create(t, s, newOp("op-1", "production", t0))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		added int
	)
	for i := range 16 {
		wg.Go(func() {
			e := ops.JournalEntry{At: t0.Add(time.Minute), Step: ops.StepRequested, Phase: ops.PhaseNote, Detail: "approved by UBOB"}
			op, ok, err := stores[i%len(stores)].Approve(context.Background(), "op-1", "UBOB", ops.StepRequested, e)
			if err != nil {
				t.Error(err)
				return
			}
			if len(op.Approvers) != 1 {
				t.Errorf("approvers after a click: %v, want [UBOB]", op.Approvers)
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if added != 1 {
		t.Fatalf("%d of 16 concurrent approvals by one user were added, want 1", added)
	}
	op := get(t, s, "op-1")
	notes := 0
	for _, e := range op.Journal {
		if e.Detail == "approved by UBOB" {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d journal entries for UBOB's approval, want 1", notes)
	}
	e := ops.JournalEntry{At: t0.Add(2 * time.Minute), Step: ops.StepRequested, Phase: ops.PhaseNote, Detail: "approved by UDAVE"}
	if op, ok, err := s.Approve(t.Context(), "op-1", "UDAVE", ops.StepRequested, e); err != nil || !ok || strings.Join(op.Approvers, ",") != "UBOB,UDAVE" {
		t.Fatalf("a second user: %v, %v, %v; want added, [UBOB UDAVE]", op.Approvers, ok, err)
	}
	if _, _, err := s.TransitionOperation(t.Context(), "op-1", []ops.Step{ops.StepRequested}, ops.StepApproved, e); err != nil {
		t.Fatal(err)
	}
	if op, ok, err := s.Approve(t.Context(), "op-1", "UERIN", ops.StepRequested, e); err != nil || ok || len(op.Approvers) != 2 {
		t.Fatalf("approving a moved operation: %v, %v, %v; want not added", op.Approvers, ok, err)
	}
	if _, _, err := s.Approve(t.Context(), "op-missing", "UBOB", ops.StepRequested, e); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("approving an unknown operation: %v, want ErrNotFound", err)
	}
}

// A request still waiting when migration 13 runs keeps its count and its
// deadline, read from the chat map where they were kept before; it has no
// binding, so approving it voids it.
func TestOldRequestsKeepTheirApproval(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := t.Context()
	if err := postgres.MigrateUp(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if err := postgres.MigrateSteps(ctx, dsn, -1); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for id, state := range map[string]string{"old-request": "requested", "old-done": "done"} {
		if _, err := conn.Exec(ctx, `INSERT INTO operations (id, kind, env, requester, state, chat, created_at, updated_at)
			VALUES ($1, 'deploy', 'production', 'U1', $2, '{"channel":"C1","approvals_needed":"2","expires_at":"2026-12-04T10:30:00Z"}', now(), now())`, id, state); err != nil {
			t.Fatal(err)
		}
	}
	if err := postgres.MigrateUp(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	got := get(t, s, "old-request").Approval
	if want := (ops.Approval{Needed: 2, Expires: time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)}); got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("old request's approval = %+v, want %+v", got, want)
	}
	if got := get(t, s, "old-done").Approval; got != nil {
		t.Errorf("a finished operation got an approval: %+v", got)
	}
}
