package pg_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// reportSQL makes three tables of 1000 rows with autovacuum off for each,
// so the rows the test deletes stay dead, an index no query uses
// (rotten_note) and a table with no row at all.
const reportSQL = `
CREATE TABLE rotten (id int PRIMARY KEY, note text);
CREATE TABLE stale (id int PRIMARY KEY, note text);
CREATE TABLE healthy (id int PRIMARY KEY, note text);
CREATE TABLE empty (id int);
ALTER TABLE rotten SET (autovacuum_enabled = false);
ALTER TABLE stale SET (autovacuum_enabled = false);
ALTER TABLE healthy SET (autovacuum_enabled = false);
CREATE INDEX rotten_note ON rotten (note);
INSERT INTO rotten SELECT g, 'n' || g FROM generate_series(1, 1000) g;
INSERT INTO stale SELECT g, 'n' || g FROM generate_series(1, 1000) g;
INSERT INTO healthy SELECT g, 'n' || g FROM generate_series(1, 1000) g;`

// TestInspectorReport checks the weekly report against a real server: a
// query sleeping on another connection is listed once it has run past
// ops.SlowQueryThreshold, the tables over ops.DeadTupleRatioMax dead rows
// are listed worst first while one under it and an empty one are not, the
// unscanned index is listed, and the server's settings are read.
func TestInspectorReport(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := t.Context()

	sleeper, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.Close(context.Background())
	pid := int(sleeper.PgConn().PID())
	sleepCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := sleeper.Exec(sleepCtx, "SELECT pg_sleep(30)")
		done <- err
	}()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceling statement") {
			t.Errorf("sleeping query: %v", err)
		}
	}()

	execSQL(t, dsn, reportSQL)
	execSQL(t, dsn, "DELETE FROM rotten WHERE id % 2 = 0; DELETE FROM stale WHERE id % 5 = 0; DELETE FROM healthy WHERE id % 20 = 0")
	in := pg.NewInspector(dsn, ops.Redactor{})

	var (
		r     ops.DBReport
		sleep ops.SlowQuery
	)
	// rotten lost half its rows, stale a fifth, healthy a twentieth: under
	// the report's 10 %.
	// The sleep needs SlowQueryThreshold to pass before it is listed, and
	// the dead rows reach the statistics views a moment after the session
	// that made them ends.
	eventuallyWithin(t, 25*time.Second, "the sleep listed as long and two tables as dead", func() (bool, error) {
		var err error
		if r, err = in.Report(ctx); err != nil {
			return false, err
		}
		i := slices.IndexFunc(r.LongQueries, func(q ops.SlowQuery) bool { return q.PID == pid })
		if i >= 0 {
			sleep = r.LongQueries[i]
		}
		return i >= 0 && len(r.DeadTables) >= 2, nil
	})

	if sleep.Duration <= ops.SlowQueryThreshold || sleep.State != "active" || sleep.Query != "SELECT pg_sleep(30)" {
		t.Errorf("long query = %+v, want the active sleep, over %s", sleep, ops.SlowQueryThreshold)
	}
	var dead []string
	for _, d := range r.DeadTables {
		dead = append(dead, d.Name)
	}
	if want := []string{"public.rotten", "public.stale"}; !slices.Equal(dead, want) {
		t.Errorf("dead tables = %v, want %v (worst first, healthy at 5 %% and empty left out)", dead, want)
	} else if got := r.DeadTables; got[0].DeadRatio != 0.5 || got[0].Rows != 500 || got[0].Bytes <= 0 || got[1].DeadRatio != 0.2 || got[1].Rows != 800 {
		t.Errorf("dead tables = %+v, want rotten 500 rows at 0.5 and stale 800 rows at 0.2, with sizes", got)
	}
	if !slices.ContainsFunc(r.UnusedIndexes, func(x ops.IndexUse) bool { return x.Table == "public.rotten" && x.Index == "rotten_note" }) {
		t.Errorf("unused indexes = %+v, want rotten_note of public.rotten", r.UnusedIndexes)
	}
	if !r.Autovacuum {
		t.Error("Autovacuum = false, want the default server's on")
	}
	// The sleeper and the report's own connection at least.
	if r.Connections < 2 || r.MaxConnections <= 0 || r.Connections > r.MaxConnections {
		t.Errorf("connections = %d of %d, want at least 2 of a positive max_connections", r.Connections, r.MaxConnections)
	}
	if r.Bytes <= 0 {
		t.Errorf("Bytes = %d, want the database's size", r.Bytes)
	}
}

func TestInspectorReportUnreachable(t *testing.T) {
	in := pg.NewInspector("postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2", ops.Redactor{})
	_, err := in.Report(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Report against a closed port: %v, want a connect error without the password", err)
	}
}
