package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// declare creates an investigating incident of env declared at at, with
// its declaration on the timeline, and returns it as stored.
func declare(t *testing.T, s *postgres.Store, env string, sev incidents.Sev, at time.Time) incidents.Incident {
	t.Helper()
	inc, err := s.CreateIncident(t.Context(), incidents.Incident{
		Title: "API is down", Sev: sev, Env: env, Status: incidents.Investigating, Commander: "U1", DeclaredAt: at,
		Timeline: []incidents.Entry{{At: at, Kind: incidents.KindDeclared, By: "<@U1>", Text: "SEV declared"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// getIncident reads incident id.
func getIncident(t *testing.T, s *postgres.Store, id string) incidents.Incident {
	t.Helper()
	inc, err := s.GetIncident(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// save writes inc.
func save(t *testing.T, s *postgres.Store, inc incidents.Incident) {
	t.Helper()
	if err := s.SaveIncident(t.Context(), inc); err != nil {
		t.Fatal(err)
	}
}

// resolve marks incident id resolved at at.
func resolve(t *testing.T, s *postgres.Store, id string, at time.Time) {
	t.Helper()
	inc := getIncident(t, s, id)
	inc.Status, inc.ResolvedAt, inc.LastUpdateAt = incidents.Resolved, at, at
	save(t, s, inc)
}

// incidentIDs returns the ids of list, in order.
func incidentIDs(list []incidents.Incident) []string {
	var out []string
	for _, inc := range list {
		out = append(out, inc.ID)
	}
	return out
}

func TestCreateIncident(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()

	first := declare(t, s, "production", incidents.SEV1, t0)
	second := declare(t, s, "staging", incidents.SEV3, t0.Add(time.Minute))
	if first.ID != "INC-1" || second.ID != "INC-2" {
		t.Fatalf("ids = %s, %s; want INC-1, INC-2", first.ID, second.ID)
	}
	if got := getIncident(t, s, first.ID); !reflect.DeepEqual(got, first) {
		t.Errorf("stored incident:\n got %+v\nwant %+v", got, first)
	}

	// Every field goes in, and a given id is ignored.
	full := incidents.Incident{ID: "INC-99", Title: "Search is slow", Sev: incidents.SEV2, Env: "production",
		Status: incidents.Resolved, Commander: "U2", DeclaredAt: t0, ResolvedAt: t0.Add(3 * time.Hour),
		LastUpdateAt: t0.Add(time.Hour), Escalated: true, SnoozedUntil: t0.Add(2 * time.Hour), Channel: "C-inc",
		ThreadTS: "1700000000.000200", Timeline: []incidents.Entry{
			{At: t0, Kind: incidents.KindDeclared, By: "<@U2>", Text: "declared"},
			{At: t0, Kind: incidents.KindAlert, By: "bot", Text: "production/health firing"},
			{At: t0.Add(time.Hour), Kind: incidents.KindUpdate, By: "<@U2>", Text: "Status: Monitoring"},
		}}
	created, err := s.CreateIncident(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.ID = "INC-3"
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created:\n got %+v\nwant %+v", created, want)
	}
	if got := getIncident(t, s, "INC-3"); !reflect.DeepEqual(got, want) {
		t.Errorf("stored:\n got %+v\nwant %+v", got, want)
	}

	if _, err := s.GetIncident(ctx, "INC-404"); !errors.Is(err, postgres.ErrIncidentNotFound) {
		t.Errorf("unknown incident: error = %v, want ErrIncidentNotFound", err)
	}
	for name, bad := range map[string]incidents.Incident{
		"no title":         {Sev: incidents.SEV1, Status: incidents.Investigating, DeclaredAt: t0},
		"no declared time": {Title: "x", Sev: incidents.SEV1, Status: incidents.Investigating},
		"entry without time": {Title: "x", Sev: incidents.SEV1, Status: incidents.Investigating, DeclaredAt: t0,
			Timeline: []incidents.Entry{{Kind: incidents.KindNote}}},
	} {
		if _, err := s.CreateIncident(ctx, bad); err == nil {
			t.Errorf("create with %s: got nil error", name)
		}
	}
	list, err := s.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := incidentIDs(list); !slices.Equal(got, []string{"INC-1", "INC-2"}) {
		t.Errorf("after failed creates, open = %q, want INC-1 and INC-2 only", got)
	}
}

func TestSaveIncident(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	inc := declare(t, s, "production", incidents.SEV2, t0)
	if err := s.SetIncidentThread(ctx, inc.ID, "C-inc", "1700000000.000300"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkEscalated(ctx, inc.ID); err != nil || !ok {
		t.Fatalf("mark escalated = %v, %v; want true", ok, err)
	}

	// inc is now stale: its thread is unset and it is not escalated.
	// Saving it writes the mutable fields and the new entries only.
	update := t0.Add(20*time.Minute + 123*time.Nanosecond) // more precise than the database
	inc.Title, inc.Sev, inc.Status, inc.Commander = "API errors", incidents.SEV1, incidents.Identified, "U2"
	inc.LastUpdateAt, inc.SnoozedUntil = update, t0.Add(45*time.Minute)
	inc.Timeline = append(inc.Timeline,
		incidents.Entry{At: update, Kind: incidents.KindSeverity, By: "<@U2>", Text: "SEV2 → SEV1"},
		incidents.Entry{At: update, Kind: incidents.KindUpdate, By: "<@U2>", Text: "Status: Identified"})
	save(t, s, inc)
	save(t, s, inc) // saving again adds nothing

	want := inc
	want.Channel, want.ThreadTS, want.Escalated = "C-inc", "1700000000.000300", true
	want.LastUpdateAt = update.Truncate(time.Microsecond)
	want.Timeline = slices.Clone(inc.Timeline)
	for i := range want.Timeline {
		want.Timeline[i].At = want.Timeline[i].At.Truncate(time.Microsecond)
	}
	if got := getIncident(t, s, inc.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("after save:\n got %+v\nwant %+v", got, want)
	}

	// Two replicas note something on copies read at the same time: both
	// notes are kept, in the order saved, and a repeated note counts.
	a, b := getIncident(t, s, inc.ID), getIncident(t, s, inc.ID)
	noteA := incidents.Entry{At: t0.Add(30 * time.Minute), Kind: incidents.KindNote, By: "<@U3>", Text: "rolled back"}
	noteB := incidents.Entry{At: t0.Add(31 * time.Minute), Kind: incidents.KindNote, By: "<@U4>", Text: "errors dropping"}
	a.Timeline = append(a.Timeline, noteA)
	b.Timeline = append(b.Timeline, noteB, noteB)
	save(t, s, a)
	save(t, s, b)
	want.Timeline = append(want.Timeline, noteA, noteB, noteB)
	if got := getIncident(t, s, inc.ID).Timeline; !reflect.DeepEqual(got, want.Timeline) {
		t.Errorf("timeline after concurrent notes:\n got %+v\nwant %+v", got, want.Timeline)
	}

	unknown := inc
	unknown.ID = "INC-404"
	if err := s.SaveIncident(ctx, unknown); !errors.Is(err, postgres.ErrIncidentNotFound) {
		t.Errorf("save unknown: error = %v, want ErrIncidentNotFound", err)
	}
	if err := s.SetIncidentThread(ctx, "INC-404", "C1", "1.2"); !errors.Is(err, postgres.ErrIncidentNotFound) {
		t.Errorf("set thread of unknown: error = %v, want ErrIncidentNotFound", err)
	}
	bad := getIncident(t, s, inc.ID)
	bad.Status = incidents.Monitoring
	bad.Timeline = append(bad.Timeline, incidents.Entry{Kind: incidents.KindNote, Text: "no time"})
	if err := s.SaveIncident(ctx, bad); err == nil {
		t.Error("save with an entry without time: got nil error")
	}
	if got := getIncident(t, s, inc.ID); got.Status != incidents.Identified || len(got.Timeline) != len(want.Timeline) {
		t.Errorf("a failed save changed the incident: status %s, %d entries", got.Status, len(got.Timeline))
	}
}

func TestOpenIncidents(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	declare(t, s, "production", incidents.SEV2, t0)                    // INC-1
	declare(t, s, "staging", incidents.SEV3, t0.Add(time.Minute))      // INC-2
	declare(t, s, "production", incidents.SEV1, t0.Add(2*time.Minute)) // INC-3

	check := func(when string, wantOpen []string, wantFor map[string]string) {
		t.Helper()
		list, err := s.OpenIncidents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := incidentIDs(list); !slices.Equal(got, wantOpen) {
			t.Errorf("%s: open = %q, want %q", when, got, wantOpen)
		}
		for _, inc := range list {
			if len(inc.Timeline) != 1 {
				t.Errorf("%s: %s listed with %d timeline entries, want 1", when, inc.ID, len(inc.Timeline))
			}
		}
		for env, want := range wantFor {
			inc, err := s.OpenIncidentFor(ctx, env)
			switch {
			case want == "" && !errors.Is(err, postgres.ErrIncidentNotFound):
				t.Errorf("%s: open incident of %s: %s, %v; want ErrIncidentNotFound", when, env, inc.ID, err)
			case want != "" && (err != nil || inc.ID != want):
				t.Errorf("%s: open incident of %s: %s, %v; want %s", when, env, inc.ID, err, want)
			}
		}
	}

	check("all open", []string{"INC-1", "INC-2", "INC-3"},
		map[string]string{"production": "INC-3", "staging": "INC-2", "development": ""})
	resolve(t, s, "INC-3", t0.Add(time.Hour))
	check("newest resolved", []string{"INC-1", "INC-2"}, map[string]string{"production": "INC-1"})
	resolve(t, s, "INC-1", t0.Add(time.Hour))
	check("production resolved", []string{"INC-2"}, map[string]string{"production": "", "staging": "INC-2"})
}

func TestClaimReminder(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	inc := declare(t, s, "production", incidents.SEV1, t0)
	due := t0.Add(30 * time.Minute)

	steps := []struct {
		name     string
		id       string
		due, now time.Time
		want     bool
	}{
		{"not due yet", inc.ID, due, due.Add(-time.Second), false},
		{"due", inc.ID, due, due, true},
		{"same due again", inc.ID, due, due.Add(time.Minute), false},
		{"earlier due", inc.ID, due.Add(-10 * time.Minute), due.Add(time.Minute), false},
		{"next due", inc.ID, due.Add(30 * time.Minute), due.Add(31 * time.Minute), true},
		{"unknown incident", "INC-404", due, due, false},
	}
	for _, step := range steps {
		got, err := s.ClaimReminder(ctx, step.id, step.due, step.now)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got != step.want {
			t.Errorf("%s: claimed = %v, want %v", step.name, got, step.want)
		}
	}

	resolve(t, s, inc.ID, due.Add(40*time.Minute))
	if got, err := s.ClaimReminder(ctx, inc.ID, due.Add(time.Hour), due.Add(time.Hour)); err != nil || got {
		t.Errorf("resolved incident: claimed = %v, %v; want false", got, err)
	}
	if _, err := s.ClaimReminder(ctx, inc.ID, time.Time{}, due); err == nil {
		t.Error("claim without due time: got nil error")
	}
}

func TestMarkEscalated(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	active := declare(t, s, "production", incidents.SEV2, t0)
	resolved := declare(t, s, "staging", incidents.SEV2, t0)
	resolve(t, s, resolved.ID, t0.Add(time.Minute))

	steps := []struct {
		name string
		id   string
		want bool
	}{
		{"first", active.ID, true},
		{"again", active.ID, false},
		{"resolved", resolved.ID, false},
		{"unknown", "INC-404", false},
	}
	for _, step := range steps {
		got, err := s.MarkEscalated(ctx, step.id)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got != step.want {
			t.Errorf("%s: marked = %v, want %v", step.name, got, step.want)
		}
	}
	if !getIncident(t, s, active.ID).Escalated || getIncident(t, s, resolved.ID).Escalated {
		t.Error("escalated flags are not those marked")
	}
}

func TestIncidentClaimsConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	const callers = 10
	inc := declare(t, s, "production", incidents.SEV2, t0)
	due := t0.Add(time.Hour)

	claims := []struct {
		name  string
		claim func(*postgres.Store) (bool, error)
	}{
		{"reminder", func(s *postgres.Store) (bool, error) {
			return s.ClaimReminder(context.Background(), inc.ID, due, due.Add(time.Second))
		}},
		{"escalation", func(s *postgres.Store) (bool, error) {
			return s.MarkEscalated(context.Background(), inc.ID)
		}},
	}
	for _, c := range claims {
		if winners := race(t, stores, callers, c.claim); winners != 1 {
			t.Errorf("%s: %d of %d concurrent claims won, want exactly 1", c.name, winners, callers)
		}
	}
}

// TestCreateIncidentUnlessOpenConcurrent races creates for one environment
// over two stores (replicas): exactly one creates, every caller gets that
// incident, and another environment still gets its own.
func TestCreateIncidentUnlessOpenConcurrent(t *testing.T) {
	s, dsn := newStore(t)
	stores := []*postgres.Store{s, open(t, dsn)}
	const callers = 10
	ids := make(chan string, callers)
	created := race(t, stores, callers, func(s *postgres.Store) (bool, error) {
		inc, created, err := s.CreateIncidentUnlessOpen(context.Background(), incidents.Incident{
			Title: "health-unhealthy", Sev: incidents.SEV2, Env: "production", Status: incidents.Investigating,
			Commander: "togather-chatops", DeclaredAt: t0,
			Timeline: []incidents.Entry{{At: t0, Kind: incidents.KindDeclared, By: "togather-chatops", Text: "SEV2 declared"}},
		})
		ids <- inc.ID
		return created, err
	})
	close(ids)
	if created != 1 {
		t.Errorf("%d of %d concurrent creates for one environment created an incident, want exactly 1", created, callers)
	}
	list, err := s.OpenIncidents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("open incidents = %q, want one", incidentIDs(list))
	}
	for id := range ids {
		if id != list[0].ID {
			t.Errorf("a caller got incident %q, want the open %s", id, list[0].ID)
		}
	}

	other, created2, err := s.CreateIncidentUnlessOpen(t.Context(), incidents.Incident{
		Title: "disk full", Sev: incidents.SEV2, Env: "staging", Status: incidents.Investigating, DeclaredAt: t0})
	if err != nil || !created2 || other.ID == list[0].ID {
		t.Errorf("staging with production open: %s created=%v err=%v, want a new incident", other.ID, created2, err)
	}
	resolve(t, s, list[0].ID, t0.Add(time.Hour))
	again, created3, err := s.CreateIncidentUnlessOpen(t.Context(), incidents.Incident{
		Title: "again", Sev: incidents.SEV3, Env: "production", Status: incidents.Investigating, DeclaredAt: t0.Add(2 * time.Hour)})
	if err != nil || !created3 || again.ID == list[0].ID {
		t.Errorf("production after its incident is resolved: %s created=%v err=%v, want a new incident", again.ID, created3, err)
	}
}
