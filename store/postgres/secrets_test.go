package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

func rotations(t *testing.T, s *postgres.Store) []bot.Rotation {
	t.Helper()
	list, err := s.Rotations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		list[i].RotatedAt = list[i].RotatedAt.UTC()
	}
	return list
}

func TestRecordRotation(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	at := t0.Truncate(time.Microsecond)

	if got := rotations(t, s); len(got) != 0 {
		t.Fatalf("fresh store: rotations = %+v, want none", got)
	}
	// A never-recorded secret's claimed reminder is no rotation.
	if _, err := s.ClaimRotationReminder(ctx, "staging", "JWT_SECRET", time.Time{}, at); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		env, key string
		by       string
		at       time.Time
	}{
		{"first", "production", "JWT_SECRET", "U1", at},
		{"newer replaces", "production", "JWT_SECRET", "U2", at.Add(time.Hour)},
		{"older is ignored", "production", "JWT_SECRET", "U3", at.Add(time.Minute)},
		{"other environment", "staging", "JWT_SECRET", "U1", at.Add(2 * time.Hour)},
		{"other secret", "production", "DATABASE_PASSWORD", "U1", at},
	}
	for _, step := range steps {
		if err := s.RecordRotation(ctx, step.env, step.key, step.by, step.at); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	want := []bot.Rotation{
		{Env: "production", Name: "DATABASE_PASSWORD", By: "U1", RotatedAt: at},
		{Env: "production", Name: "JWT_SECRET", By: "U2", RotatedAt: at.Add(time.Hour)},
		{Env: "staging", Name: "JWT_SECRET", By: "U1", RotatedAt: at.Add(2 * time.Hour)},
	}
	if got := rotations(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("rotations:\n got %+v\nwant %+v", got, want)
	}
}

func TestClaimRotationReminder(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	const env, name = "production", "JWT_SECRET"
	never := time.Time{}
	rotated := t0
	due := rotated.Add(90 * 24 * time.Hour)

	type step struct {
		name     string
		env, key string
		due, now time.Time
		want     bool
	}
	run := func(steps []step) {
		t.Helper()
		for _, st := range steps {
			got, err := s.ClaimRotationReminder(ctx, st.env, st.key, st.due, st.now)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != st.want {
				t.Errorf("%s: claimed = %v, want %v", st.name, got, st.want)
			}
		}
	}
	run([]step{
		{"never recorded", env, name, never, t0, true},
		{"never recorded, again", env, name, never, t0.Add(time.Hour), false},
		{"never recorded, other environment", "staging", name, never, t0, true},
	})
	if err := s.RecordRotation(ctx, env, name, "U1", rotated); err != nil {
		t.Fatal(err)
	}
	run([]step{
		{"stale never-recorded claim after a rotation", env, name, never, t0, false},
		{"not due yet", env, name, due, due.Add(-time.Second), false},
		{"due", env, name, due, due, true},
		{"same due again", env, name, due, due.Add(time.Hour), false},
		{"earlier due", env, name, due.Add(-time.Hour), due.Add(time.Hour), false},
		{"later due", env, name, due.Add(24 * time.Hour), due.Add(25 * time.Hour), true},
	})
	rotatedAgain := due.Add(48 * time.Hour)
	if err := s.RecordRotation(ctx, env, name, "U2", rotatedAgain); err != nil {
		t.Fatal(err)
	}
	next := rotatedAgain.Add(90 * 24 * time.Hour)
	run([]step{
		{"due computed before the new rotation", env, name, due.Add(47 * time.Hour), rotatedAgain.Add(time.Second), false},
		{"new cycle due", env, name, next, next, true},
	})
}

func TestClaimRotationReminderConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	const callers = 10
	if err := s.RecordRotation(t.Context(), "production", "DATABASE_PASSWORD", "U1", t0); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(180 * 24 * time.Hour)

	claims := []struct {
		name  string
		claim func(*postgres.Store) (bool, error)
	}{
		{"recorded rotation", func(s *postgres.Store) (bool, error) {
			return s.ClaimRotationReminder(context.Background(), "production", "DATABASE_PASSWORD", due, due.Add(time.Second))
		}},
		{"never recorded", func(s *postgres.Store) (bool, error) {
			return s.ClaimRotationReminder(context.Background(), "production", "JWT_SECRET", time.Time{}, t0)
		}},
	}
	for _, c := range claims {
		if winners := race(t, stores, callers, c.claim); winners != 1 {
			t.Errorf("%s: %d of %d concurrent claims won, want exactly 1", c.name, winners, callers)
		}
	}
}
