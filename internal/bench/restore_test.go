package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// seeded returns the DSN of a fresh database holding benchSeedSQL.
func seeded(ctx context.Context, t *testing.T) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, benchSeedSQL); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return dsn
}

// countRows returns the row counts of the benchmark's tables in dsn.
func countRows(ctx context.Context, t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	out := map[string]int64{}
	for _, table := range []string{"events", "venues"} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// TestBenchRestore compares Snapshotter.Restore with the by-hand pipeline
// gunzip -c f | psql (ON_ERROR_STOP) of the same snapshot, each into a
// fresh database, checks that both hold the source's rows, and prints the
// speed ratio (pipeline seconds / ours).
func TestBenchRestore(t *testing.T) {
	requireBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	src := seeded(ctx, t)
	dir := t.TempDir()
	info, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: src, Dir: dir}).Create(ctx, "bench", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := countRows(ctx, t, src)
	path := filepath.Join(dir, info.Name)
	if out, err := exec.CommandContext(ctx, "gzip", "-t", path).CombinedOutput(); err != nil { // warm the file cache for both
		t.Fatalf("gzip -t: %v\n%s", err, out)
	}

	// Each side runs twice, alternating, into a fresh database each time,
	// and keeps its best time.
	pipeSeconds, ourSeconds := math.Inf(1), math.Inf(1)
	for range 2 {
		dsn := testenv.Postgres(t)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", `gunzip -c "$1" | psql -X -q -v ON_ERROR_STOP=1 "$2" >/dev/null`, "bash", path, dsn)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gunzip | psql: %v\n%s", err, out)
		}
		pipeSeconds = min(pipeSeconds, time.Since(start).Seconds())
		if got := countRows(ctx, t, dsn); !maps.Equal(got, want) {
			t.Fatalf("gunzip | psql restored %v, want %v", got, want)
		}

		dsn = testenv.Postgres(t)
		start = time.Now()
		if err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir}).Restore(ctx, info.Name, nil); err != nil {
			t.Fatal(err)
		}
		ourSeconds = min(ourSeconds, time.Since(start).Seconds())
		if got := countRows(ctx, t, dsn); !maps.Equal(got, want) {
			t.Fatalf("Restore restored %v, want %v", got, want)
		}
	}
	t.Logf("snapshot %d bytes; gunzip | psql: %.2f s; Restore: %.2f s", info.Size, pipeSeconds, ourSeconds)
	fmt.Printf("RESULT restore_speed_ratio=%.2f\n", pipeSeconds/ourSeconds)
}

// restoreRounds is how many restores run under load.
const restoreRounds = 3

// TestBenchRestoreUnderLoad restores a snapshot of the live environment
// while the proxy is under load and counts the requests that failed
// otherwise than with the maintenance page (503 with Retry-After): a 500,
// a reset or any other error.
func TestBenchRestoreUnderLoad(t *testing.T) {
	requireBench(t)
	testenv.MigrateRequests(t)
	e := apptest.NewDeployEnv(t)
	ctx, stopLoad := context.WithTimeout(t.Context(), loadMaxTime)
	defer stopLoad()
	if err := pg.NewMigrator(e.AppDSN).Up(ctx, e.Migrations); err != nil {
		t.Fatal(err)
	}
	snap, err := e.Env.Snapshots.Create(ctx, "bench", nil)
	if err != nil {
		t.Fatal(err)
	}

	l := newLoad(e.ProxyURL + "/health")
	l.expectPage.Store(1)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(ctx)
	}()
	time.Sleep(time.Second) // the load runs before the first restore, as it does in production
	for range restoreRounds {
		op, err := e.Env.Deployer.Restore(ctx, ops.RestoreRequest{Snapshot: snap.Name, Requester: benchUser})
		if err != nil || op.State != ops.StepDone {
			t.Fatalf("restore under load: %v (%s)", err, op.State)
		}
	}
	time.Sleep(time.Second)
	stopLoad()
	<-loadDone

	total, failed, paged := l.total.Load(), l.failed.Load(), l.paged.Load()
	t.Logf("%d restores; load: %d requests, %d answered by the 503 page, %d failed otherwise", restoreRounds, total, paged, failed)
	for _, f := range l.failures {
		t.Logf("failed request: %s", f)
	}
	if paged == 0 {
		t.Errorf("no request met the 503 page: the load did not run during the restores")
	}
	e.WantServing(ops.Blue, apptest.V1)
	fmt.Printf("RESULT restore_failed_requests=%d/%d\n", failed, total)
}
