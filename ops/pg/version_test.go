package pg_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// The snapshot client's major version is read from the pg_dump it runs and
// the server's from the database, so an older client is seen before a
// snapshot fails on it.
func TestDumpVersions(t *testing.T) {
	dsn := testenv.Postgres(t)
	d, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir()}).DumpVersions(t.Context())
	if err != nil || d.Client < 10 || d.Server < 10 || d.Where != "the bot's machine" {
		t.Fatalf("DumpVersions = %+v, %v", d, err)
	}
	// An older client, as on a bot host whose Debian lags the server.
	old := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: old}).DumpVersions(t.Context())
	if err != nil || o.Client != 9 || o.Server != d.Server {
		t.Fatalf("with pg_dump 9.6: %+v, %v; want 9, %d", o, err, d.Server)
	}
	bad := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'not a client'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: bad}).DumpVersions(t.Context()); err == nil {
		t.Fatal("an unrecognised --version was accepted")
	}
}
