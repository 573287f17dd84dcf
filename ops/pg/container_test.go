package pg_test

import (
	"context"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops/docker"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// TestContainerClient: with snapshots.dump: container:<name>, pg_dump and
// psql run in the database's own container through the Engine API (the
// bot's machine's are not used: they do not exist here), with password
// authentication on the container's socket, and snapshots, verify and the
// all-or-nothing restore behave exactly as with local clients; a restore
// cancelled half-way leaves the database as it was and no session behind.
func TestContainerClient(t *testing.T) {
	cli := testenv.Docker(t)
	db := testenv.PostgresContainer(t, cli)
	name, dsn := db.Name, db.DSN
	eng, err := docker.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	execSQL(t, dsn, seedSQL+richSQL)
	dir := t.TempDir()
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir, Container: name, Exec: eng,
		PgDump: "/nonexistent/pg_dump", Psql: "/nonexistent/psql"})

	d, err := s.DumpVersions(t.Context())
	if err != nil || d.Where != "container "+name || d.Client != d.Server || d.Client < 10 {
		t.Fatalf("DumpVersions = %+v, %v; want the container's own pg_dump, of the server's version", d, err)
	}

	want := testenv.Catalog(t, dsn)
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatalf("Create through the container: %v", err)
	}
	t.Run("restorable by hand with gunzip | psql", func(t *testing.T) {
		execSQL(t, dsn, "CREATE DATABASE byhand")
		byHand := strings.Replace(dsn, "/togather?", "/byhand?", 1)
		out, err := exec.Command("bash", "-c", `gunzip -c "$1" | psql -X -q -v ON_ERROR_STOP=1 "$2" >/dev/null`, "bash", info.Path, byHand).CombinedOutput()
		if err != nil {
			t.Fatalf("gunzip | psql: %v\n%s", err, out)
		}
		if got := testenv.Catalog(t, byHand); !reflect.DeepEqual(got, want) {
			t.Errorf("restored by hand, the database differs:\n%s", testenv.DiffLines(want, got))
		}
	})

	execSQL(t, dsn, fkMigration)
	if err := s.Restore(t.Context(), info.Name, nil); err != nil {
		t.Fatalf("Restore across the migration through the container: %v", err)
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, want) {
		t.Errorf("after the restore the database differs from the snapshot:\n%s", testenv.DiffLines(want, got))
	}

	execSQL(t, dsn, fkMigration)
	res, err := s.Verify(t.Context(), info.Name)
	if err != nil || res.Tables != 3 || len(res.Mismatch) != 0 {
		t.Fatalf("Verify through the container = %+v, %v; want 3 tables matching", res, err)
	}
	assertNoScratch(t, dsn, "togather")

	broken := testenv.FailingSnapshot(t, dir, info.Name)
	before := testenv.Catalog(t, dsn)
	if err := s.Restore(t.Context(), broken, nil); err == nil || !strings.Contains(err.Error(), "division by zero") ||
		!strings.Contains(err.Error(), "in container "+name) {
		t.Fatalf("Restore of a failing snapshot = %v, want psql's division by zero, in the container", err)
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", testenv.DiffLines(before, got))
	}

	t.Run("cancelled half-way", func(t *testing.T) {
		execSQL(t, dsn, `CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g`)
		big, err := s.Create(t.Context(), "bulk", nil)
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, dsn, `DELETE FROM bulk WHERE id % 2 = 0`)
		before := testenv.Catalog(t, dsn)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Restore(ctx, big.Name, nil) }()
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		for copying := false; !copying; {
			select {
			case err := <-done:
				t.Fatalf("the restore ended (%v) before it could be cancelled in a COPY", err)
			case <-time.After(5 * time.Millisecond):
			}
			if err := conn.QueryRow(t.Context(), `SELECT count(*) > 0 FROM pg_stat_activity
				WHERE starts_with(application_name, 'togather-chatops-') AND query LIKE 'COPY%'`).Scan(&copying); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a cancelled restore reported success")
		}
		if n := sessionsLeft(t, conn); n != 0 {
			t.Errorf("%d sessions of the cancelled restore are left on the server", n)
		}
		if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, before) {
			t.Errorf("a cancelled restore changed the database:\n%s", testenv.DiffLines(before, got))
		}
	})
}

// sessionsLeft counts the server sessions of the bot's client programs,
// waiting a moment for those that are ending.
func sessionsLeft(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	for range 50 {
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, 'togather-chatops-')`).Scan(&n); err != nil {
			t.Fatal(fmt.Errorf("count sessions: %w", err))
		}
		if n == 0 {
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}
