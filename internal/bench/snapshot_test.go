package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// benchSeedSQL fills a database with about 350 MB of event rows that
// compress like real data (about 4.5:1 with gzip): templated sentences and
// URLs around words drawn at random from a small vocabulary, md5 strings,
// timestamps and numbers.
const benchSeedSQL = `
CREATE TABLE events (id bigint PRIMARY KEY, title text, description text, hash text,
	starts_at timestamptz, capacity int, venue text, url text);
INSERT INTO events
SELECT g,
	initcap(w[1 + (g*7) % 40]) || ' ' || w[1 + (g*13) % 40] || ' #' || g,
	'Join us for a ' || w[1 + g % 40] || ' ' || w[1 + g*3 % 40] || ' at the ' || w[1 + g*11 % 40] || ' hall: ' ||
	w[1 + floor(random()*40)::int] || ' ' || w[1 + floor(random()*40)::int] || ' ' || w[1 + floor(random()*40)::int] || ' ' ||
	w[1 + floor(random()*40)::int] || ' ' || w[1 + floor(random()*40)::int] || ' ' || w[1 + floor(random()*40)::int] ||
	'. Everyone is welcome; doors open 30 minutes before the start.',
	md5(g::text || random()::text),
	timestamptz '2024-01-01' + random() * interval '730 days',
	(random()*500)::int,
	'Venue ' || (g % 997) || ', ' || w[1 + g % 40] || ' street',
	'https://togather.example.org/events/' || g || '/' || w[1 + g*7 % 40]
FROM generate_series(1, 1000000) g,
	(SELECT string_to_array('community concert meetup workshop festival music art dance food market family outdoor park '
		'library museum theatre film night morning weekend free ticket volunteer garden market craft talk lecture kids '
		'youth senior city river hall centre gallery open session class yoga run', ' ') AS w) words;
CREATE TABLE venues AS SELECT g AS id, 'Venue ' || g AS name FROM generate_series(1, 997) g;
`

// TestBenchSnapshot compares Snapshotter.Create with the shell pipeline
// pg_dump | gzip (same flags, gzip's default level 6) on one database of at
// least 200 MB, checks that both files restore to the source's row counts,
// and prints the speed ratio (pipeline seconds / ours) and the size ratio
// (our bytes / gzip's).
func TestBenchSnapshot(t *testing.T) {
	requireBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dsn, size := seedBenchDB(ctx, t)
	shell := shellRunner(ctx, t)
	shell(`pg_dump --dbname="$1" `+dumpFlags+` >/dev/null`, dsn) // warm the caches for both runs

	// Each side runs twice, alternating, and keeps its best time, so that a
	// burst of other load on the machine does not decide the ratio.
	pipeDir, ourDir := t.TempDir(), t.TempDir()
	pipeName := "togather_pipeline_19700101_000000_gzip.sql.gz"
	ours := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: ourDir, Env: "production"})
	var (
		info                    ops.SnapshotInfo
		err                     error
		pipeSeconds, ourSeconds = math.Inf(1), math.Inf(1)
	)
	for i := range 2 {
		start := time.Now()
		shell(`pg_dump --dbname="$1" `+dumpFlags+` | gzip >"$2"`, dsn, filepath.Join(pipeDir, pipeName))
		pipeSeconds = min(pipeSeconds, time.Since(start).Seconds())

		start = time.Now()
		info, err = ours.Create(ctx, fmt.Sprintf("bench-%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		ourSeconds = min(ourSeconds, time.Since(start).Seconds())
	}
	pipeStat, err := os.Stat(filepath.Join(pipeDir, pipeName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("database %d MB; pg_dump | gzip: %.2f s, %d bytes; Create: %.2f s, %d bytes",
		size>>20, pipeSeconds, pipeStat.Size(), ourSeconds, info.Size)

	// Both restore (ours checked against the counts taken with the dump;
	// the pipeline's file, having no metadata, against ours).
	ourRes, err := ours.Verify(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(ourRes.Mismatch) > 0 || ourRes.RowCounts["public.events"] != 1_000_000 {
		t.Fatalf("our snapshot restored wrong: %+v", ourRes)
	}
	pipe := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: pipeDir})
	pipeRes, err := pipe.Verify(ctx, pipeName)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(pipeRes.RowCounts, ourRes.RowCounts) {
		t.Fatalf("row counts differ: pipeline %v, ours %v", pipeRes.RowCounts, ourRes.RowCounts)
	}

	fmt.Printf("RESULT snapshot_speed_ratio=%.2f\n", pipeSeconds/ourSeconds)
	fmt.Printf("RESULT snapshot_size_ratio=%.3f\n", float64(info.Size)/float64(pipeStat.Size()))
}

// dumpFlags are Togather's pg_dump flags, for the shell baselines.
const dumpFlags = "--format=plain --no-owner --no-acl --clean --if-exists"

// seedBenchDB is a fresh database of at least 200 MB (benchSeedSQL) and
// its size.
func seedBenchDB(ctx context.Context, t *testing.T) (string, int64) {
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
	var size int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size < 200<<20 {
		t.Fatalf("database is %d MB, want at least 200", size>>20)
	}
	return dsn, size
}

// shellRunner runs a bash script with arguments, failing the test on error.
func shellRunner(ctx context.Context, t *testing.T) func(script string, args ...string) {
	return func(script string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "bash", append([]string{"-o", "pipefail", "-c", script, "bash"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
}

// TestBenchRemoteSnapshot compares Snapshotter.Create on an ssh:// host
// (the dump streamed through the connection's forward, compressed on the
// bot, written back over SFTP) with what an operator would type,
// `ssh host 'pg_dump … | gzip > file'`, on one database of at least 200 MB,
// verifies ours, and prints the speed ratio (ssh pipeline seconds / ours).
func TestBenchRemoteSnapshot(t *testing.T) {
	requireBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dsn, size := seedBenchDB(ctx, t)
	sshd := testenv.StartSSHD(t)
	h, err := host.NewSSH(host.SSHConfig{URL: sshd.URL(), IdentityFile: sshd.IdentityFile, KnownHosts: sshd.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host, err = h.Reach(u.Host); err != nil {
		t.Fatal(err)
	}
	shell := shellRunner(ctx, t)
	target, err := url.Parse(sshd.URL())
	if err != nil {
		t.Fatal(err)
	}
	sshCmd := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o BatchMode=yes -p %s %s@%s", sshd.IdentityFile, sshd.KnownHosts, target.Port(), target.User.Username(), target.Hostname())
	shell(`pg_dump --dbname="$1" `+dumpFlags+` >/dev/null`, dsn) // warm the caches for both runs

	pipeDir, ourDir := t.TempDir(), t.TempDir()
	ours := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: u.String(), Dir: ourDir, Env: "production", Files: h.Files()})
	var (
		info                    ops.SnapshotInfo
		pipeSeconds, ourSeconds = math.Inf(1), math.Inf(1)
	)
	for i := range 2 {
		start := time.Now()
		shell(sshCmd+` "pg_dump --dbname='$1' `+dumpFlags+` | gzip > $2/pipeline.sql.gz"`, dsn, pipeDir)
		pipeSeconds = min(pipeSeconds, time.Since(start).Seconds())

		start = time.Now()
		if info, err = ours.Create(ctx, fmt.Sprintf("bench-%d", i), nil); err != nil {
			t.Fatal(err)
		}
		ourSeconds = min(ourSeconds, time.Since(start).Seconds())
	}
	res, err := ours.Verify(ctx, info.Name)
	if err != nil || len(res.Mismatch) > 0 || res.RowCounts["public.events"] != 1_000_000 {
		t.Fatalf("our remote snapshot restored wrong: %+v, %v", res, err)
	}
	t.Logf("database %d MB; ssh pg_dump | gzip: %.2f s; Create through SSH: %.2f s, %d bytes", size>>20, pipeSeconds, ourSeconds, info.Size)
	fmt.Printf("RESULT remote_snapshot_speed_ratio=%.2f\n", pipeSeconds/ourSeconds)
}
