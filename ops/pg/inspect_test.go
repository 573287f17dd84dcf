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

// churnSQL makes a table carrying 500 live and 500 dead rows (autovacuum
// is off for it, so they stay), a plain index no query uses, a unique
// index and a primary key that are never listed as unused, and an index a
// query scans.
const churnSQL = `
CREATE TABLE churn (id int PRIMARY KEY, code text UNIQUE, note text, used int) WITH (autovacuum_enabled = false);
CREATE INDEX churn_note ON churn (note);
CREATE INDEX churn_used ON churn (used);
INSERT INTO churn SELECT g, 'c' || g, repeat('n', 100), g FROM generate_series(1, 1000) g;`

// eventually polls cond until it holds: statistics reach the views a
// moment after the session that made them reports them.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds, failing t after within.
func eventuallyWithin(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// churnStat reads one column of churn's row in pg_stat_user_tables.
func churnStat[T any](t *testing.T, dsn, expr string) T {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(t.Context(), "SELECT "+expr+" FROM pg_stat_user_tables WHERE relname = 'churn'").Scan(&v); err != nil {
		t.Fatalf("read %s: %v", expr, err)
	}
	return v
}

func TestInspector(t *testing.T) {
	dsn := testenv.Postgres(t)
	execSQL(t, dsn, churnSQL)
	execSQL(t, dsn, "DELETE FROM churn WHERE id % 2 = 0")
	execSQL(t, dsn, "SET enable_seqscan = off; SELECT count(*) FROM churn WHERE used = 7")
	in := pg.NewInspector(dsn, ops.Redactor{})
	ctx := t.Context()

	t.Run("size", func(t *testing.T) {
		var size ops.DBSize
		eventually(t, "churn counted with 500 live and 500 dead rows", func() (bool, error) {
			var err error
			size, err = in.Size(ctx)
			return err == nil && len(size.Tables) == 1 && size.Tables[0].Rows == 500, err
		})
		got := size.Tables[0]
		if got.Name != "public.churn" || got.DeadRatio != 0.5 || got.Bytes <= 0 {
			t.Errorf("table = %+v, want public.churn with dead ratio 0.5 and a size", got)
		}
		if size.Bytes <= got.Bytes {
			t.Errorf("database size %d is not above its one table's %d", size.Bytes, got.Bytes)
		}
	})

	t.Run("unused indexes", func(t *testing.T) {
		var list []ops.IndexUse
		eventually(t, "churn_used scanned", func() (bool, error) {
			var err error
			list, err = in.UnusedIndexes(ctx)
			return err == nil && len(list) == 1, err
		})
		if got := list[0]; got.Table != "public.churn" || got.Index != "churn_note" || got.Scans != 0 || got.Bytes <= 0 {
			t.Errorf("unused = %+v, want only churn_note of public.churn, unscanned, with its size", got)
		}
	})

	t.Run("connections", func(t *testing.T) {
		idle, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close(context.Background())
		states, limit, err := in.Connections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, s := range states {
			count[s.State] = s.Count
		}
		if count["active"] < 1 || count["idle"] < 1 || limit <= 0 {
			t.Errorf("Connections = %+v of %d, want the inspector's active one, the test's idle one and a max_connections", states, limit)
		}
	})

	t.Run("slow", func(t *testing.T) { testSlow(t, in, dsn) })

	t.Run("analyze", func(t *testing.T) {
		if err := in.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "churn analyzed", func() (bool, error) {
			return churnStat[*time.Time](t, dsn, "last_analyze") != nil, nil
		})
	})

	t.Run("vacuum", func(t *testing.T) {
		if err := in.Vacuum(ctx, false); err != nil {
			t.Fatal(err)
		}
		eventually(t, "churn vacuumed", func() (bool, error) {
			return churnStat[*time.Time](t, dsn, "last_vacuum") != nil && churnStat[int64](t, dsn, "n_dead_tup") == 0, nil
		})
	})

	t.Run("reindex", func(t *testing.T) {
		before := indexFile(t, dsn, "churn_note")
		if err := in.Reindex(ctx); err != nil {
			t.Fatal(err)
		}
		if after := indexFile(t, dsn, "churn_note"); after == before {
			t.Errorf("churn_note is still in file %d after REINDEX: not rebuilt", after)
		}
	})

	t.Run("vacuum full", func(t *testing.T) {
		before := churnStat[int64](t, dsn, "pg_total_relation_size(relid)")
		if err := in.Vacuum(ctx, true); err != nil {
			t.Fatal(err)
		}
		// A plain vacuum keeps the half-empty pages; only a rewrite shrinks them.
		if after := churnStat[int64](t, dsn, "pg_total_relation_size(relid)"); after >= before {
			t.Errorf("churn is %d bytes after VACUUM FULL, %d before: not rewritten", after, before)
		}
	})
}

// indexFile is the file node of index name: REINDEX writes a new one.
func indexFile(t *testing.T, dsn, name string) uint32 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var node uint32
	if err := conn.QueryRow(t.Context(), "SELECT relfilenode FROM pg_class WHERE relname = $1", name).Scan(&node); err != nil {
		t.Fatalf("read the file node of %s: %v", name, err)
	}
	return node
}

// testSlow runs a long query on its own connection and checks Slow lists
// it once it has run past the threshold, with its text clipped.
func testSlow(t *testing.T, in *pg.Inspector, dsn string) {
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	query := "SELECT  pg_sleep(3)\n/* " + strings.Repeat("x", 300) + " */"
	want := string([]rune("SELECT pg_sleep(3) /* " + strings.Repeat("x", 300))[:ops.SlowQueryTextMax-1]) + "…"

	sleepCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(sleepCtx, query)
		done <- err
	}()
	pid := int(conn.PgConn().PID())
	find := func(list []ops.SlowQuery) (ops.SlowQuery, bool) {
		i := slices.IndexFunc(list, func(q ops.SlowQuery) bool { return q.PID == pid })
		if i < 0 {
			return ops.SlowQuery{}, false
		}
		return list[i], true
	}

	var got ops.SlowQuery
	eventually(t, "the sleeping query listed as slow", func() (bool, error) {
		list, err := in.Slow(ctx, time.Second)
		var ok bool
		got, ok = find(list)
		return ok, err
	})
	if got.State != "active" || got.Duration < time.Second || got.Query != want {
		t.Errorf("slow query = %+v, want active, over 1s, text %q", got, want)
	}
	list, err := in.Slow(ctx, time.Hour)
	if _, ok := find(list); ok || err != nil {
		t.Errorf("Slow(1h) = %+v, %v: lists a query of seconds", list, err)
	}

	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceling statement") {
		t.Errorf("sleeping query: %v", err)
	}
}

func TestInspectorUnreachable(t *testing.T) {
	in := pg.NewInspector("postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2", ops.Redactor{})
	_, _, err := in.Connections(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Connections against a closed port: %v, want a connect error without the password", err)
	}
}
