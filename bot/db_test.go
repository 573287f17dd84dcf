package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

// dbFake is an ops.DatabaseInspector answering canned values. Maintenance
// is recorded in ran and moves the fixture's clock by took.
type dbFake struct {
	states  []ops.ConnState
	limit   int
	slow    []ops.SlowQuery
	size    ops.DBSize
	unused  []ops.IndexUse
	err     error
	gotOver time.Duration
	ran     []string
	took    time.Duration
	now     *time.Time
}

func (d *dbFake) Connections(context.Context) ([]ops.ConnState, int, error) {
	return d.states, d.limit, d.err
}

func (d *dbFake) Slow(_ context.Context, over time.Duration) ([]ops.SlowQuery, error) {
	d.gotOver = over
	return d.slow, d.err
}

func (d *dbFake) Size(context.Context) (ops.DBSize, error) { return d.size, d.err }

func (d *dbFake) UnusedIndexes(context.Context) ([]ops.IndexUse, error) { return d.unused, d.err }

func (d *dbFake) Report(context.Context) (ops.DBReport, error) { return ops.DBReport{}, d.err }

func (d *dbFake) Analyze(ctx context.Context) error { return d.maintain(ctx, "analyze") }

func (d *dbFake) Reindex(ctx context.Context) error { return d.maintain(ctx, "reindex") }

func (d *dbFake) Vacuum(ctx context.Context, full bool) error {
	if full {
		return d.maintain(ctx, "vacuum full")
	}
	return d.maintain(ctx, "vacuum")
}

// maintain records what ran; like a database call, it fails on a
// cancelled context.
func (d *dbFake) maintain(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.ran = append(d.ran, what)
	*d.now = d.now.Add(d.took)
	return d.err
}

// dbEnvs gives each environment's policy and database inspector.
type dbEnvs struct {
	bot.Environments
	policies map[string]ops.Policy
	dbs      map[string]ops.DatabaseInspector
}

func (e dbEnvs) Policy(env string) (ops.Policy, bool) {
	p, ok := e.policies[env]
	return p, ok
}

func (e dbEnvs) Database(env string) (ops.DatabaseInspector, bool) {
	d, ok := e.dbs[env]
	return d, ok
}

// dbFixture is a bot whose staging database needs no approval for
// maintenance and whose production database does.
type dbFixture struct {
	b      *bot.Bot
	db     *dbFake
	envs   dbEnvs
	poster *admPoster
	now    time.Time
}

func newDB(t *testing.T) *dbFixture {
	t.Helper()
	f := &dbFixture{poster: &admPoster{}, now: admNow}
	f.db = &dbFake{now: &f.now}
	f.envs = dbEnvs{
		policies: map[string]ops.Policy{"staging": {}, "production": {RequireApproval: true, Approvals: 1}},
		dbs:      map[string]ops.DatabaseInspector{"staging": f.db, "production": f.db},
	}
	f.b = bot.New(bot.Options{
		Environments: []string{"staging", "production"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      &auditLog{},
		Envs:         f.envs,
		Locks:        &admLocks{},
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Logger:       zerolog.Nop(),
		Now:          func() time.Time { return f.now },
	})
	f.b.SetPoster(f.poster)
	return f
}

func (f *dbFixture) run(t *testing.T, text string) (replies, error) {
	t.Helper()
	var r replies
	err := f.b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: text}, &r)
	return r, err
}

func TestDBReads(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		setup func(d *dbFake)
		want  []string
	}{
		{"connections", "db staging connections", func(d *dbFake) {
			d.states, d.limit = []ops.ConnState{{State: "idle", Count: 8}, {State: "active", Count: 3}, {State: "idle in transaction", Count: 1}}, 100
		}, []string{"staging's database server: 12 of max_connections 100 (12 %)", "idle                               8", "idle in transaction                1"}},
		{"connections near the limit", "db staging connections", func(d *dbFake) {
			d.states, d.limit = []ops.ConnState{{State: "active", Count: 85}}, 100
		}, []string{":warning:", "85 of max_connections 100 (85 %)", "near the limit", "/togather db staging slow"}},
		{"slow queries", "db staging slow", func(d *dbFake) {
			d.slow = []ops.SlowQuery{{PID: 4242, Duration: 63 * time.Second, State: "active", Query: "SELECT * FROM events"},
				{PID: 77, Duration: 8 * time.Second, State: "idle in transaction", Query: "UPDATE places SET x = 1"}}
		}, []string{"2 query(ies) on staging running longer than 5s", "4242       1m03s  active               SELECT * FROM events", "77            8s  idle in transaction  UPDATE places"}},
		{"no slow query", "db staging slow", nil, []string{"No query on staging has been running longer than 5s"}},
		{"size", "db staging size", func(d *dbFake) {
			d.size = ops.DBSize{Bytes: 1_234_500_000, Tables: []ops.TableSize{
				{Name: "public.events", Bytes: 812_300_000, Rows: 1_203_344, DeadRatio: 0.12},
				{Name: "public.river_job", Bytes: 5_000_000, Rows: 10, DeadRatio: 0.9}}}
		}, []string{"staging's database: 1234.5 MB; its 2 largest table(s)", "public.events", "812.3 MB", "1203344", "12 %", "90 %",
			"over 20 % dead rows gain from `/togather db staging vacuum`"}},
		{"size of an empty database", "db staging size", func(d *dbFake) { d.size = ops.DBSize{Bytes: 7_600_000} }, []string{"staging's database: 7.6 MB, no table yet."}},
		{"unused indexes", "db staging unused-indexes", func(d *dbFake) {
			d.unused = []ops.IndexUse{{Table: "public.events", Index: "events_note_idx", Bytes: 2_000_000}}
		}, []string{"1 index(es) of staging never scanned", "events_note_idx", "public.events", "2.0 MB", "check before dropping"}},
		{"no unused index", "db staging unused-indexes", nil, []string{"Every index of staging has been scanned"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDB(t)
			if tc.setup != nil {
				tc.setup(f.db)
			}
			r, err := f.run(t, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			wantAll(t, "reply", r.last(t), tc.want...)
			if r[0].InChannel {
				t.Error("a db reading is posted to the channel; it should be ephemeral")
			}
			if len(f.db.ran) != 0 {
				t.Errorf("a reading ran maintenance: %v", f.db.ran)
			}
		})
	}
	t.Run("slow asks for the threshold", func(t *testing.T) {
		f := newDB(t)
		if _, err := f.run(t, "db staging slow"); err != nil {
			t.Fatal(err)
		}
		if f.db.gotOver != ops.SlowQueryThreshold {
			t.Errorf("Slow asked for over %v, want %v", f.db.gotOver, ops.SlowQueryThreshold)
		}
	})
}

func TestDBMaintenance(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		took    time.Duration
		wantRan []string
		want    []string
	}{
		{"analyze on staging", "db staging analyze", 42 * time.Second, []string{"analyze"}, []string{"ANALYZE on staging finished in 42s"}},
		{"vacuum on staging", "db staging vacuum", 250 * time.Millisecond, []string{"vacuum"}, []string{"VACUUM (ANALYZE) on staging finished in 250ms"}},
		{"vacuum full is refused outside a window", "db staging vacuum --full", 0, nil,
			[]string{"VACUUM (FULL, ANALYZE) locks tables", "only inside a maintenance window of staging", "/togather maintenance schedule staging"}},
		{"reindex is refused outside a window", "db production reindex", 0, nil,
			[]string{"REINDEX DATABASE locks tables", "only inside a maintenance window of production"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDB(t)
			f.db.took = tc.took
			r, err := f.run(t, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if len(r) == 0 {
				t.Fatal("no reply")
			}
			wantAll(t, "last reply", r[len(r)-1].PlainText(), tc.want...)
			if strings.Join(f.db.ran, ",") != strings.Join(tc.wantRan, ",") {
				t.Errorf("ran %v, want %v", f.db.ran, tc.wantRan)
			}
			if len(f.poster.posts) != 0 {
				t.Errorf("maintenance posted %+v", f.poster.posts)
			}
		})
	}
}

func TestDBFailures(t *testing.T) {
	for _, text := range []string{"db staging connections", "db staging slow", "db staging size", "db staging unused-indexes", "db staging vacuum"} {
		t.Run(text, func(t *testing.T) {
			f := newDB(t)
			f.db.err = errors.New("connect: connection refused")
			r, err := f.run(t, text)
			if err == nil || !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("error = %v, want the inspector's", err)
			}
			wantAll(t, "last reply", r[len(r)-1].PlainText(), ":x: Could not", "staging", "connection refused", "app's env file is reachable")
		})
	}
	t.Run("no database", func(t *testing.T) {
		f := newDB(t)
		delete(f.envs.dbs, "staging")
		r, err := f.run(t, "db staging size")
		if err != nil {
			t.Fatal(err)
		}
		wantAll(t, "reply", r.last(t), "database of staging is not set up")
	})
}

// TestDBMaintenanceOutlivesTheCommand: a statement is not cancelled with
// the command's context (its timeout), which would throw the work away.
func TestDBMaintenanceOutlivesTheCommand(t *testing.T) {
	f := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r replies
	if err := f.b.HandleCommand(ctx, bot.Request{User: "UALICE", Text: "db staging vacuum"}, &r); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.db.ran, ",") != "vacuum" {
		t.Errorf("ran %v, want the vacuum despite the cancelled command", f.db.ran)
	}
}
