package pg_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// seedSQL makes a small database with awkward names and text.
const seedSQL = `
CREATE TABLE events (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO events SELECT g, 'event ' || g FROM generate_series(1, 1000) g;
UPDATE events SET title = E'line one\nline\ttwo \\ «três»' WHERE id = 7;
CREATE SCHEMA "odd schema";
CREATE TABLE "odd schema"."Mixed Case" (v text);
INSERT INTO "odd schema"."Mixed Case" VALUES ('a'), ('b'), (NULL);
`

var wantCounts = map[string]int64{"public.events": 1000, "odd schema.Mixed Case": 3}

// seededDB returns the DSN of a fresh database holding seedSQL.
func seededDB(t *testing.T) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	execSQL(t, dsn, seedSQL)
	return dsn
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// state is what a test compares before and after a restore.
type state struct {
	Counts map[string]int64
	Title7 string
}

func readState(t *testing.T, dsn string) state {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s := state{Counts: map[string]int64{}}
	for _, table := range []pgx.Identifier{{"public", "events"}, {"odd schema", "Mixed Case"}} {
		var n int64
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		s.Counts[table[0]+"."+table[1]] = n
	}
	if err := conn.QueryRow(t.Context(), "SELECT title FROM events WHERE id = 7").Scan(&s.Title7); err != nil {
		t.Fatal(err)
	}
	return s
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// metaFile reads a snapshot's metadata as plain JSON.
func metaFile(t *testing.T, info ops.SnapshotInfo) map[string]any {
	t.Helper()
	data, err := os.ReadFile(strings.TrimSuffix(info.Path, ".sql.gz") + ".meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSnapshotLifecycle(t *testing.T) {
	dsn := seededDB(t)
	db := dbName(t, dsn)
	dir := t.TempDir()
	taken := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir, Env: "staging", Now: func() time.Time { return taken }})
	before := readState(t, dsn)

	info, err := s.Create(t.Context(), "Pre-deploy staging!", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantName := "togather_" + db + "_20250102_030405_pre-deploy-staging.sql.gz"
	if info.Name != wantName || info.Path != filepath.Join(dir, wantName) {
		t.Fatalf("Create named %s (%s), want %s in %s", info.Name, info.Path, wantName, dir)
	}
	data, err := os.ReadFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	wantInfo := ops.SnapshotInfo{
		Name: wantName, Path: info.Path, Database: db, Reason: "pre-deploy-staging",
		CreatedAt: taken, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		ExpiresAt: taken.AddDate(0, 0, 7),
	}
	if !reflect.DeepEqual(info, wantInfo) {
		t.Errorf("Create = %+v\nwant     %+v", info, wantInfo)
	}
	m := metaFile(t, info)
	wantMeta := map[string]any{
		"snapshot_name": wantName, "database": db, "host": "127.0.0.1", "port": "5432",
		"timestamp": "2025-01-02T03:04:05Z", "reason": "pre-deploy-staging", "retention_days": 7.0,
		"expires_at": "2025-01-09T03:04:05Z", "sha256": info.SHA256, "size_bytes": float64(len(data)),
		"row_counts": map[string]any{"public.events": 1000.0, "odd schema.Mixed Case": 3.0},
	}
	for k, want := range wantMeta {
		if !reflect.DeepEqual(m[k], want) {
			t.Errorf("meta %s = %#v, want %#v", k, m[k], want)
		}
	}
	for _, k := range []string{"size_mb", "duration_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("meta has no %s", k)
		}
	}
	if got := dirNames(t, dir); len(got) != 2 {
		t.Errorf("directory holds %v, want the snapshot and its metadata", got)
	}

	second, err := s.Create(t.Context(), "pre-deploy-staging", nil)
	if err != nil || !strings.HasSuffix(second.Name, "_pre-deploy-staging-2.sql.gz") {
		t.Errorf("second Create in the same second: %q, %v; want a numbered name", second.Name, err)
	}
	for _, f := range []string{second.Path, strings.TrimSuffix(second.Path, ".sql.gz") + ".meta.json"} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	// An unfinished file is not a snapshot.
	if err := os.WriteFile(filepath.Join(dir, "togather_"+db+"_20250102_030406_x.sql.gz.partial"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !reflect.DeepEqual(list[0], wantInfo) {
		t.Errorf("List = %+v, want [%+v]", list, wantInfo)
	}

	t.Run("restore brings the data back", func(t *testing.T) {
		execSQL(t, dsn, `DELETE FROM events WHERE id > 10; UPDATE events SET title = 'changed' WHERE id = 7;
			DROP TABLE "odd schema"."Mixed Case"`)
		if err := s.Restore(t.Context(), info.Name, nil); err != nil {
			t.Fatal(err)
		}
		if after := readState(t, dsn); !reflect.DeepEqual(after, before) {
			t.Errorf("after restore %+v, want %+v", after, before)
		}
	})

	t.Run("verify", func(t *testing.T) {
		res, err := s.Verify(t.Context(), info.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := ops.VerifyResult{Snapshot: info.Name, Tables: 2, RowCounts: wantCounts}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("Verify = %+v, want %+v", res, want)
		}
		assertNoScratch(t, dsn, db)
	})

	t.Run("verify finds a count mismatch", func(t *testing.T) {
		metaPath := strings.TrimSuffix(info.Path, ".sql.gz") + ".meta.json"
		orig, err := os.ReadFile(metaPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(metaPath, orig, 0o600) })
		tampered := metaFile(t, info)
		tampered["row_counts"] = map[string]any{"public.events": 999, "odd schema.Mixed Case": 3, "public.gone": 5}
		data, _ := json.Marshal(tampered)
		if err := os.WriteFile(metaPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := s.Verify(t.Context(), info.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"public.events: restored 1000 rows, expected 999",
			"public.gone: missing after restore (expected 5 rows)",
		}
		if !reflect.DeepEqual(res.Mismatch, want) {
			t.Errorf("Mismatch = %q, want %q", res.Mismatch, want)
		}
		assertNoScratch(t, dsn, db)
	})

	t.Run("gunzip | psql restores it", func(t *testing.T) {
		target := testenv.Postgres(t)
		cmd := exec.CommandContext(t.Context(), "bash", "-o", "pipefail", "-c",
			`gunzip -c "$1" | psql -X -q -v ON_ERROR_STOP=1 "$2" >/dev/null`, "bash", info.Path, target)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gunzip | psql: %v\n%s", err, out)
		}
		if got := readState(t, target); !reflect.DeepEqual(got, before) {
			t.Errorf("restored by the shell: %+v, want %+v", got, before)
		}
	})

	t.Run("corrupt file refused", func(t *testing.T) {
		corrupt := "togather_" + db + "_20250102_030406_corrupt.sql.gz"
		bad := append([]byte(nil), data...)
		bad[len(bad)/2] ^= 0xff
		if err := os.WriteFile(filepath.Join(dir, corrupt), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		meta, _ := os.ReadFile(strings.TrimSuffix(info.Path, ".sql.gz") + ".meta.json")
		if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(corrupt, ".sql.gz")+".meta.json"), meta, 0o600); err != nil {
			t.Fatal(err)
		}
		execSQL(t, dsn, "DELETE FROM events WHERE id = 1")
		if err := s.Restore(t.Context(), corrupt, nil); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("Restore of a corrupt file: %v, want a corruption error", err)
		}
		if _, err := s.Verify(t.Context(), corrupt); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("Verify of a corrupt file: %v, want a corruption error", err)
		}
		if got := readState(t, dsn).Counts["public.events"]; got != 999 {
			t.Errorf("the database was touched: %d events, want 999", got)
		}
	})

	t.Run("psql errors are reported", func(t *testing.T) {
		execSQL(t, dsn, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET default_transaction_read_only = on")
		err := s.Restore(t.Context(), info.Name, nil)
		execSQL(t, dsn, "BEGIN READ WRITE; ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" RESET default_transaction_read_only; COMMIT")
		if err == nil || !strings.Contains(err.Error(), "psql: exit status 3: ") || !strings.Contains(err.Error(), "read-only transaction") {
			t.Errorf("Restore into a read-only database: %v, want psql's error", err)
		}
	})

	t.Run("bad names", func(t *testing.T) {
		for _, name := range []string{"togather_x_20250101_000000_none.sql.gz", "../" + info.Name, "", info.Name + "/x", strings.TrimSuffix(info.Name, ".gz")} {
			err := s.Restore(t.Context(), name, nil)
			if err == nil {
				t.Errorf("Restore(%q) succeeded", name)
			}
			wellFormed := !strings.Contains(name, "/") && strings.HasSuffix(name, ".sql.gz")
			if errors.Is(err, ops.ErrNotFound) != wellFormed {
				t.Errorf("Restore(%q) = %v; want ErrNotFound only for a well-formed name", name, err)
			}
		}
	})
}

// assertNoScratch fails if a verify database of db is left on the server.
func assertNoScratch(t *testing.T, dsn, db string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)", db+"_verify_").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d scratch databases left behind", n)
	}
}

func TestSnapshotPrune(t *testing.T) {
	dsn := seededDB(t)
	dir := t.TempDir()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	create := func(age time.Duration, retentionDays int) ops.SnapshotInfo {
		t.Helper()
		s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir, RetentionDays: retentionDays,
			Now: func() time.Time { return now.Add(-age) }})
		info, err := s.Create(t.Context(), "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	day := 24 * time.Hour
	expired := create(40*day, 7)
	kept := create(20*day, 30) // its own retention keeps it
	expired2 := create(10*day, 7)
	newest := create(8*day, 7) // expired, but the newest is never removed

	// A snapshot without metadata is described from its name; the
	// Snapshotter's retention applies to it.
	data, err := os.ReadFile(newest.Path)
	if err != nil {
		t.Fatal(err)
	}
	bare := "togather_" + dbName(t, dsn) + "_20250530_000000_manual.sql.gz"
	if err := os.WriteFile(filepath.Join(dir, bare), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir, Env: "development"}) // 1 day
	list, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	names := func(l []ops.SnapshotInfo) []string {
		var out []string
		for _, i := range l {
			out = append(out, i.Name)
		}
		return out
	}
	if got, want := names(list), []string{bare, newest.Name, expired2.Name, kept.Name, expired.Name}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	wantBare := ops.SnapshotInfo{Name: bare, Path: filepath.Join(dir, bare), Database: dbName(t, dsn), Reason: "manual",
		CreatedAt: time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC), Size: int64(len(data)), ExpiresAt: time.Date(2025, 5, 31, 0, 0, 0, 0, time.UTC)}
	if !reflect.DeepEqual(list[0], wantBare) {
		t.Errorf("snapshot without metadata: %+v, want %+v", list[0], wantBare)
	}

	// Now the bare one is the newest; all but kept are expired.
	wantRemoved := []string{newest.Name, expired2.Name, expired.Name}
	dry, err := s.Prune(t.Context(), now, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(dry); !reflect.DeepEqual(got, wantRemoved) {
		t.Errorf("Prune dry run = %v, want %v", got, wantRemoved)
	}
	if got := dirNames(t, dir); len(got) != 9 {
		t.Errorf("dry run removed files: %v", got)
	}
	removed, err := s.Prune(t.Context(), now, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(removed); !reflect.DeepEqual(got, wantRemoved) {
		t.Errorf("Prune = %v, want %v", got, wantRemoved)
	}
	left := dirNames(t, dir)
	wantLeft := []string{bare, kept.Name, strings.TrimSuffix(kept.Name, ".sql.gz") + ".meta.json"}
	if !sameSet(left, wantLeft) {
		t.Errorf("left %v, want %v", left, wantLeft)
	}
}

func sameSet(a, b []string) bool {
	set := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	return len(a) == len(b) && maps.Equal(set(a), set(b))
}

// fakePgDump writes an executable script standing in for pg_dump.
func fakePgDump(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSnapshotCreateFailureLeavesNothing(t *testing.T) {
	dsn := seededDB(t)
	wrongPassword, _ := url.Parse(dsn)
	wrongPassword.User = url.UserPassword(wrongPassword.User.Username(), "wrong")
	tests := []struct {
		name, dsn, pgDump, reason, wantErr string
	}{
		{"pg_dump fails", dsn, fakePgDump(t, `echo "SET x = 1;"; echo "pg_dump: error: boom" >&2; exit 1`), "deploy", "boom"},
		{"pg_dump killed half-way", dsn, fakePgDump(t, `head -c 3000000 /dev/urandom; kill -9 $$`), "deploy", "killed"},
		{"wrong password", wrongPassword.String(), "", "deploy", "password authentication failed"},
		{"reason without letters", dsn, "", " !! ", "no letters or digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where the password file goes
			dir := filepath.Join(t.TempDir(), "snapshots")
			s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: tt.dsn, Dir: dir, PgDump: tt.pgDump})
			_, err := s.Create(t.Context(), tt.reason, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create: %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the password: %v", err)
			}
			if left := dirNames(t, dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if left := dirNames(t, tmp); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestSnapshotPgDumpSeesNoPassword(t *testing.T) {
	dsn := seededDB(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("PGPASSWORD", "inherited") // must not shadow the password file
	log := filepath.Join(t.TempDir(), "log")
	// Record the arguments, environment and password file mode, keep the
	// progress reporter busy for a moment, then dump for real.
	wrapper := fakePgDump(t, `{ printf '%s\n' "$@"; echo ---; env | grep '^PG' | sort; echo ---; stat -c %a "$PGPASSFILE"; cat "$PGPASSFILE"; } >`+log+`
sleep 1.2
exec pg_dump "$@"`)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: wrapper})
	var (
		mu    sync.Mutex
		calls []ops.Progress
	)
	info, err := s.Create(t.Context(), "deploy", func(p ops.Progress) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(out), "---\n")
	args := strings.Fields(parts[0])
	if len(args) != 6 || strings.Join(args[:5], " ") != "--format=plain --no-owner --no-acl --clean --if-exists" ||
		!regexp.MustCompile(`^--snapshot=\S+$`).MatchString(args[5]) {
		t.Errorf("pg_dump arguments %q, want Togather's flags and --snapshot", args)
	}
	env := parts[1]
	for _, want := range []string{"PGHOST=127.0.0.1\n", "PGPORT=5432\n", "PGUSER=postgres\n", "PGDATABASE=" + dbName(t, dsn) + "\n", "PGSSLMODE=disable\n", "PGPASSFILE=" + tmp} {
		if !strings.Contains(env, want) {
			t.Errorf("pg_dump environment lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "PGPASSWORD") {
		t.Errorf("pg_dump environment has PGPASSWORD:\n%s", env)
	}
	if pass := parts[2]; pass != "600\n*:*:*:*:postgres\n" {
		t.Errorf("password file (mode, content) = %q", pass)
	}
	if left := dirNames(t, tmp); len(left) != 0 {
		t.Errorf("password file not removed: %v", left)
	}
	if info.Size == 0 {
		t.Error("empty snapshot")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 2 || calls[len(calls)-1].Elapsed < calls[0].Elapsed || calls[0].Elapsed < 400*time.Millisecond {
		t.Errorf("progress calls %+v, want at least two, about 500 ms apart", calls)
	}
}
