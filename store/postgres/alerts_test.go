package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// healthAlert is a firing critical alert group of production.
func healthAlert() incidents.Alert {
	return incidents.Alert{Key: "production/health", Source: "monitor", Env: "production", Name: "health",
		Severity: incidents.Critical, Firing: true, Summary: "unhealthy for 2m", Labels: map[string]string{"slot": "blue"},
		Count: 1, StartsAt: t0}
}

// wantAlert checks that the store holds want for want.Alert.Key.
func wantAlert(t *testing.T, s *postgres.Store, want bot.AlertRecord) {
	t.Helper()
	got, err := s.GetAlert(t.Context(), want.Alert.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored alert:\n got %+v\nwant %+v", got, want)
	}
}

func TestUpsertAlert(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	first := healthAlert()

	prev, existed, err := s.UpsertAlert(ctx, first, t0)
	if err != nil {
		t.Fatal(err)
	}
	if existed || !reflect.DeepEqual(prev, bot.AlertRecord{}) {
		t.Fatalf("new group: existed = %v, prev = %+v; want false and nothing", existed, prev)
	}
	wantAlert(t, s, bot.AlertRecord{Alert: first})

	// What people did with the message survives every later change, but
	// for the acknowledgement of a group that fires again after resolving.
	kept := bot.AlertRecord{Channel: "C-crit", TS: "1700000000.000100", AckedBy: "U1", AckedAt: t0.Add(time.Minute),
		SilencedUntil: t0.Add(time.Hour)}
	if err := s.SetAlertMessage(ctx, first.Key, kept.Channel, kept.TS); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AckAlert(ctx, first.Key, kept.AckedBy, kept.AckedAt); err != nil || !ok {
		t.Fatalf("first ack = %v, %v; want true", ok, err)
	}
	if ok, err := s.AckAlert(ctx, first.Key, "U2", t0.Add(2*time.Minute)); err != nil || ok {
		t.Fatalf("second ack = %v, %v; want false", ok, err)
	}
	if err := s.SilenceAlert(ctx, first.Key, kept.SilencedUntil, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	changed := first
	changed.Summary, changed.Count, changed.Labels = "unhealthy for 5m", 3, map[string]string{"slot": "green", "host": "h1"}
	resolved := changed
	resolved.Firing, resolved.EndsAt, resolved.Labels = false, t0.Add(10*time.Minute), nil
	refired := resolved
	refired.Firing, refired.StartsAt, refired.EndsAt = true, t0.Add(20*time.Minute), time.Time{}

	steps := []struct {
		name string
		prev incidents.Alert
		next incidents.Alert
	}{
		{"changed", first, changed},
		{"resolved", changed, resolved},
		{"fired again", resolved, refired},
	}
	for i, step := range steps {
		prev, existed, err := s.UpsertAlert(ctx, step.next, t0.Add(time.Duration(3+i)*time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		wantPrev, wantNow := kept, kept
		wantPrev.Alert, wantNow.Alert = step.prev, step.next
		if step.name == "fired again" {
			wantNow.AckedBy, wantNow.AckedAt = "", time.Time{}
		}
		if !existed || !reflect.DeepEqual(prev, wantPrev) {
			t.Errorf("%s: existed = %v, prev:\n got %+v\nwant %+v", step.name, existed, prev, wantPrev)
		}
		wantAlert(t, s, wantNow)
	}
}

func TestAlertErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	const unknown = "staging/nothing"

	notFound := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.GetAlert(ctx, unknown); return err }},
		{"set message", func() error { return s.SetAlertMessage(ctx, unknown, "C1", "1.2") }},
		{"ack", func() error { _, err := s.AckAlert(ctx, unknown, "U1", t0); return err }},
		{"silence", func() error { return s.SilenceAlert(ctx, unknown, t0.Add(time.Hour), t0) }},
	}
	for _, tt := range notFound {
		if err := tt.call(); !errors.Is(err, postgres.ErrAlertNotFound) {
			t.Errorf("%s of an unknown group: error = %v, want ErrAlertNotFound", tt.name, err)
		}
	}

	a := healthAlert()
	noKey, noStart := a, a
	noKey.Key, noStart.StartsAt = "", time.Time{}
	for name, bad := range map[string]incidents.Alert{"no key": noKey, "no start": noStart} {
		if _, _, err := s.UpsertAlert(ctx, bad, t0); err == nil {
			t.Errorf("upsert with %s: got nil error", name)
		}
	}
	if _, _, err := s.UpsertAlert(ctx, a, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AckAlert(ctx, a.Key, "", t0); err == nil {
		t.Error("ack without user: got nil error")
	}
	if err := s.SilenceAlert(ctx, a.Key, time.Time{}, t0); err == nil {
		t.Error("silence without end: got nil error")
	}
	wantAlert(t, s, bot.AlertRecord{Alert: a})
}

func TestAlertConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	const callers = 16
	a := healthAlert()

	// Monitors on several replicas report the same new group at once.
	created := race(t, stores, callers, func(s *postgres.Store) (bool, error) {
		_, existed, err := s.UpsertAlert(context.Background(), a, t0)
		return !existed, err
	})
	if created != 1 {
		t.Errorf("%d of %d concurrent upserts of a new group saw it new, want exactly 1", created, callers)
	}

	// Several people click Acknowledge at once.
	acked := make(chan string, callers)
	users := make(chan string, callers)
	for i := range callers {
		users <- string(rune('A' + i))
	}
	close(users)
	winners := race(t, stores, callers, func(s *postgres.Store) (bool, error) {
		user := <-users
		ok, err := s.AckAlert(context.Background(), a.Key, user, t0.Add(time.Minute))
		if ok {
			acked <- user
		}
		return ok, err
	})
	if winners != 1 {
		t.Fatalf("%d of %d concurrent acks won, want exactly 1", winners, callers)
	}
	wantAlert(t, s, bot.AlertRecord{Alert: a, AckedBy: <-acked, AckedAt: t0.Add(time.Minute)})
}

func TestAlertsOnMessage(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	for _, key := range []string{"staging/b", "staging/a", "staging/c"} {
		a := incidents.Alert{Key: key, Source: "monitor", Env: "staging", Name: key, Severity: incidents.Warning, Firing: true, Count: 1, StartsAt: t0}
		if _, _, err := s.UpsertAlert(ctx, a, t0); err != nil {
			t.Fatal(err)
		}
	}
	for key, ts := range map[string]string{"staging/a": "1.1", "staging/b": "1.1", "staging/c": "1.2"} {
		if err := s.SetAlertMessage(ctx, key, "CWARN", ts); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.AlertsOnMessage(ctx, "CWARN", "1.1")
	if err != nil || len(list) != 2 || list[0].Alert.Key != "staging/a" || list[1].Alert.Key != "staging/b" {
		t.Fatalf("AlertsOnMessage = %+v, %v; want staging/a and staging/b", list, err)
	}
	if list, err := s.AlertsOnMessage(ctx, "CCRIT", "1.1"); err != nil || len(list) != 0 {
		t.Errorf("groups of another channel's message: %+v, %v", list, err)
	}
}
