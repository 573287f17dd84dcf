package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// jobsConfig turns on every scheduled job, the restore test on staging.
const jobsConfig = `jobs: {snapshot_prune: "0 3 * * *", restore_test: "0 4 1 * *", restore_test_env: staging, db_report: "0 8 * * 1"}
`

// TestScheduledJobs runs the leader's jobs on a settable clock against the
// real snapshot directory and app database: the first start runs nothing,
// the daily prune removes the snapshots past retention, a restart after
// the monthly restore test was due catches it up once, and the weekly
// database report posts, then a week later with the growth since.
func TestScheduledJobs(t *testing.T) {
	m := startMaintenanceChatWith(t, time.Date(2027, 3, 1, 1, 0, 0, 0, time.UTC), jobsConfig) // Mon 02:00 CET
	ctx := context.Background()
	db, err := pgx.Connect(ctx, m.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "CREATE TABLE events (id int); INSERT INTO events SELECT generate_series(1, 50)"); err != nil {
		t.Fatal(err)
	}
	// Two snapshots taken on the real clock: months before the test's.
	for _, reason := range []string{"old", "newest"} {
		if _, err := m.Env.Snapshots.Create(ctx, reason, nil); err != nil {
			t.Fatal(err)
		}
	}

	m.at(t, "2027-03-01T03:00")
	prune := m.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("Daily snapshot prune"))
	if text := slackfake.Render(prune); !strings.Contains(text, "1 snapshot(s) past retention removed") || !strings.Contains(text, "_old.sql.gz") {
		t.Errorf("the prune post:\n%s\nwant the old snapshot removed", text)
	}
	list, err := m.Env.Snapshots.List(ctx)
	if err != nil || len(list) != 1 || !strings.Contains(list[0].Name, "newest") {
		t.Errorf("snapshots after the prune: %+v (%v), want the newest only", list, err)
	}

	m.stop() // down when the restore test is due
	m.at(t, "2027-03-01T04:30")
	m.restart(t)
	verify := m.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("Monthly restore test"))
	if text := slackfake.Render(verify); !strings.Contains(text, "verifies") || !strings.Contains(text, "public.events") {
		t.Errorf("the restore test post:\n%s\nwant the newest snapshot verified with its tables", text)
	}

	m.at(t, "2027-03-01T08:00")
	report := m.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("Weekly database report: staging"))
	if text := slackfake.Render(report); !strings.Contains(text, "first report") {
		t.Errorf("the first report:\n%s\nwant no growth figure yet", text)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g"); err != nil {
		t.Fatal(err)
	}
	m.at(t, "2027-03-08T08:00")
	m.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("since last week"))

	for _, post := range []string{"Daily snapshot prune", "Monthly restore test", "Weekly database report"} {
		n := 0
		for _, msg := range m.fake.Messages(deploys) {
			if strings.Contains(slackfake.Render(msg), post) {
				n++
			}
		}
		want := map[string]int{"Weekly database report": 2}[post]
		if want == 0 {
			want = 1
		}
		if n != want {
			t.Errorf("%q posted %d times, want %d", post, n, want)
		}
	}
}
