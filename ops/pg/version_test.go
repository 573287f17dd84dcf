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
	client, server, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir()}).DumpVersions(t.Context())
	if err != nil || client < 10 || server < 10 {
		t.Fatalf("DumpVersions = %d, %d, %v", client, server, err)
	}
	// An older client, as on a bot host whose Debian lags the server.
	old := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, s, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: old}).DumpVersions(t.Context())
	if err != nil || c != 9 || s != server {
		t.Fatalf("with pg_dump 9.6: %d, %d, %v; want 9, %d", c, s, err, server)
	}
	bad := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'not a client'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: bad}).DumpVersions(t.Context()); err == nil {
		t.Fatal("an unrecognised --version was accepted")
	}
}
