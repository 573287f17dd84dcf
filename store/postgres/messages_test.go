package postgres_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// chatOperation creates a running operation whose request message is
// CDEPLOYS/1.1, and returns its two messages as the bot tracks them.
func chatOperation(t *testing.T, s *postgres.Store, id string, at time.Time) []bot.OpMessage {
	t.Helper()
	op := ops.Operation{ID: id, Kind: ops.KindDeploy, Env: "staging", State: ops.StepLocked, CreatedAt: at, UpdatedAt: at,
		Chat:    map[string]string{"channel": "CDEPLOYS", "ts": "1.1"},
		Journal: []ops.JournalEntry{{At: at, Step: ops.StepLocked, Phase: ops.PhaseEnd, Detail: "lease 30s"}}}
	if err := s.Create(t.Context(), op); err != nil {
		t.Fatal(err)
	}
	return []bot.OpMessage{
		{Op: id, Role: bot.RoleProgress, Channel: "CDEPLOYS", Thread: "1.1"},
		{Op: id, Role: bot.RoleRequest, Channel: "CDEPLOYS", TS: "1.1"},
	}
}

func TestMessageOutbox(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	msgs := chatOperation(t, s, "dep-1", t0)

	tracked, err := s.TrackMessages(ctx, msgs)
	if err != nil || !reflect.DeepEqual(tracked, msgs) {
		t.Fatalf("TrackMessages = %+v, %v; want %+v", tracked, err, msgs)
	}
	progress := tracked[0]
	progress.TS, progress.Shown = "1.2", 1
	if err := s.SetMessageShown(ctx, progress); err != nil {
		t.Fatal(err)
	}
	// Another replica tracking the same operation finds the progress
	// message posted, and cannot move its timestamp or what it shows back.
	again, err := s.TrackMessages(ctx, msgs)
	if err != nil || again[0] != progress {
		t.Fatalf("tracked again: %+v, %v; want the progress message %+v", again, err, progress)
	}
	older := progress
	older.TS, older.Shown = "1.3", 0
	if err := s.SetMessageShown(ctx, older); err != nil {
		t.Fatal(err)
	}

	window := func() []bot.OpMessage {
		t.Helper()
		list, err := s.UnsettledMessages(ctx, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	if list := window(); len(list) != 0 {
		t.Errorf("a running operation's messages are unsettled: %+v", list)
	}
	done := ops.JournalEntry{At: t0.Add(time.Minute), Step: ops.StepDone, Phase: ops.PhaseEnd, Detail: "green serves v2"}
	if _, _, err := s.TransitionOperation(ctx, "dep-1", []ops.Step{ops.StepLocked}, ops.StepDone, done); err != nil {
		t.Fatal(err)
	}
	if list := window(); !reflect.DeepEqual(list, []bot.OpMessage{progress, tracked[1]}) {
		t.Errorf("unsettled once done: %+v; want both messages, the progress one as posted", list)
	}
	if list, err := s.UnsettledMessages(ctx, t0.Add(2*time.Minute), t0.Add(time.Hour)); err != nil || len(list) != 0 {
		t.Errorf("unsettled before the window: %+v, %v", list, err)
	}
	for _, m := range []bot.OpMessage{progress, tracked[1]} {
		m.Shown = 2
		if err := s.SetMessageShown(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if list := window(); len(list) != 0 {
		t.Errorf("messages showing the whole journal are unsettled: %+v", list)
	}
	if err := s.SetMessageShown(ctx, bot.OpMessage{Op: "dep-2", Role: bot.RoleRequest}); err == nil {
		t.Error("SetMessageShown of an untracked message: got nil error")
	}
}

// TestMessageOutboxFencedByTerm checks that a leader whose term has ended
// can neither track messages nor record what they show.
func TestMessageOutboxFencedByTerm(t *testing.T) {
	a, dsn := newStore(t)
	b := open(t, dsn)
	ctx := t.Context()
	const key = 12
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	msgs := chatOperation(t, a, "dep-1", t0)

	old := tryLeader(t, a, key, true)
	oldCtx := postgres.WithTerm(ctx, old.Term(), nil)
	if _, err := a.TrackMessages(oldCtx, msgs); err != nil {
		t.Fatalf("tracking under the current term: %v", err)
	}
	old.Release()
	next := tryLeader(t, b, key, true)

	posted := msgs[0]
	posted.TS, posted.Shown = "1.2", 1
	var se *postgres.StaleTermError
	if err := a.SetMessageShown(oldCtx, posted); !errors.As(err, &se) || se.Current != next.Term().N {
		t.Errorf("SetMessageShown with the old term: %v; want a StaleTermError", err)
	}
	if _, err := a.TrackMessages(oldCtx, msgs); !errors.As(err, &se) {
		t.Errorf("TrackMessages with the old term: %v; want a StaleTermError", err)
	}
	if got, err := b.TrackMessages(ctx, msgs); err != nil || got[0].TS != "" || got[0].Shown != 0 {
		t.Errorf("a refused write changed the progress message: %+v, %v", got, err)
	}
	if err := b.SetMessageShown(postgres.WithTerm(ctx, next.Term(), nil), posted); err != nil {
		t.Errorf("SetMessageShown under the new term: %v", err)
	}
}
