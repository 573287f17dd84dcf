package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

func TestDBReportMessage(t *testing.T) {
	// healthy is a report with nothing to flag: 312.3 MB, 12 of 100
	// connections, autovacuum on.
	healthy := func() ops.DBReport {
		return ops.DBReport{Bytes: 312_300_000, Connections: 12, MaxConnections: 100, Autovacuum: true}
	}
	tests := []struct {
		name    string
		report  func(r *ops.DBReport)
		last    int64
		ok      bool
		want    []string
		notWant []string
	}{
		{"healthy, grown", nil, 300_000_000, true, []string{
			"Weekly database report: staging",
			":white_check_mark: Nothing needs attention.",
			"• Size: 312.3 MB, +12.3 MB (+4.1 %) since last week",
			"• Connections: 12 of max_connections 100 (12 %)",
			"• Queries running longer than 5s: none",
			"• Unused indexes: none",
			"• Autovacuum: on",
			"• Tables over 10 % dead rows: none",
		}, []string{":warning:", "Needs attention"}},
		{"first report", nil, 0, false, []string{"• Size: 312.3 MB, first report, no growth figure yet", "Nothing needs attention"}, []string{"since last week"}},
		{"shrunk", nil, 322_300_000, true, []string{"• Size: 312.3 MB, -10.0 MB (-3.1 %) since last week"}, nil},
		{"unchanged", nil, 312_300_000, true, []string{"• Size: 312.3 MB, no change since last week"}, []string{"+0.0"}},
		{"autovacuum off", func(r *ops.DBReport) { r.Autovacuum = false }, 300_000_000, true, []string{
			"*Needs attention*", ":warning: autovacuum is off", "• Autovacuum: off",
		}, []string{"Nothing needs attention"}},
		{"dead tables", func(r *ops.DBReport) {
			r.DeadTables = []ops.TableSize{
				{Name: "public.events", Bytes: 812_300_000, Rows: 1_203_344, DeadRatio: 0.45},
				{Name: "public.river_job", Bytes: 5_000_000, Rows: 10, DeadRatio: 0.3},
				{Name: "public.places", Bytes: 1_000_000, Rows: 900, DeadRatio: 0.11},
			}
		}, 300_000_000, true, []string{
			":warning: 3 table(s) over 10 % dead rows — run `/togather db staging vacuum`.",
			"• Tables over 10 % dead rows: 3",
			"Tables over 10 % dead rows, worst first:",
			"public.events                          812.3 MB      1203344   45 %",
			"public.places",
		}, []string{"Nothing needs attention"}},
		{"connections at 80 %", func(r *ops.DBReport) { r.Connections = 80 }, 300_000_000, true, []string{
			":warning: 80 of max_connections 100 in use (80 %) — `/togather db staging slow` shows what holds them.",
		}, []string{"Nothing needs attention"}},
		{"connections at 79 %", func(r *ops.DBReport) { r.Connections = 79 }, 300_000_000, true, []string{
			"• Connections: 79 of max_connections 100 (79 %)", "Nothing needs attention",
		}, []string{":warning:"}},
		{"max_connections unknown", func(r *ops.DBReport) { r.MaxConnections = 0 }, 300_000_000, true, []string{
			"• Connections: 12, max_connections unknown", "Nothing needs attention",
		}, nil},
		{"long queries", func(r *ops.DBReport) {
			r.LongQueries = []ops.SlowQuery{{PID: 4242, Duration: 63 * time.Second, State: "active", Query: "SELECT * FROM events"},
				{PID: 77, Duration: 8 * time.Second, State: "idle in transaction", Query: "UPDATE places SET x = 1"}}
		}, 300_000_000, true, []string{
			":warning: 2 query(ies) running longer than 5s — `/togather db staging slow` lists them.",
			"• Queries running longer than 5s: 2, longest 1m03s",
			"4242       1m03s  active               SELECT * FROM events",
			"77            8s  idle in transaction  UPDATE places SET x = 1",
		}, []string{"Nothing needs attention"}},
		{"unused indexes are listed, not flagged", func(r *ops.DBReport) {
			r.UnusedIndexes = []ops.IndexUse{{Table: "public.events", Index: "events_note_idx", Bytes: 2_000_000},
				{Table: "public.places", Index: "places_name_idx", Bytes: 1_000_000}}
		}, 300_000_000, true, []string{
			"Nothing needs attention",
			"• Unused indexes: 2, 3.0 MB in all",
			"events_note_idx", "public.places", "check before dropping one",
		}, []string{":warning:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			if tc.report != nil {
				tc.report(&r)
			}
			m := bot.DBReportMessage("staging", r, tc.last, tc.ok)
			got := m.PlainText()
			wantAll(t, "report", got, tc.want...)
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("report %q contains %q", got, w)
				}
			}
			if m.Text != got {
				t.Errorf("fallback text %q is not the whole report %q", m.Text, got)
			}
		})
	}

	t.Run("everything at once", func(t *testing.T) {
		r := ops.DBReport{Bytes: 1, Connections: 95, MaxConnections: 100,
			LongQueries: []ops.SlowQuery{{PID: 1, Duration: time.Minute, State: "active", Query: "SELECT 1"}},
			DeadTables:  []ops.TableSize{{Name: "public.events", DeadRatio: 0.5}}}
		got := bot.DBReportMessage("production", r, 0, false).PlainText()
		if n := strings.Count(got, ":warning:"); n != 4 {
			t.Errorf("report flags %d things, want 4 (autovacuum, dead tables, connections, long queries):\n%s", n, got)
		}
		wantAll(t, "report", got, "Weekly database report: production", "`/togather db production vacuum`", "`/togather db production slow`")
	})
}
