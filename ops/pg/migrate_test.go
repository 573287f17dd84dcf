package pg_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// migrationDir writes files (name → SQL) into a new directory.
func migrationDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, sql := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sql), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	createUp   = "CREATE TABLE things (id int PRIMARY KEY);"
	createDown = "DROP TABLE things;"
	brokenUp   = "ALTER TABLE things ADD COLUMN name text;\nALTER TABLE things ADD COLUMN oops nosuchtype;"
)

func assertVersion(t *testing.T, m *pg.Migrator, wantVersion uint, wantDirty bool) {
	t.Helper()
	v, dirty, err := m.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != wantVersion || dirty != wantDirty {
		t.Fatalf("Version = %d (dirty %v), want %d (dirty %v)", v, dirty, wantVersion, wantDirty)
	}
}

func TestMigratorUp(t *testing.T) {
	m := pg.NewMigrator(testenv.Postgres(t))
	dir := migrationDir(t, map[string]string{
		"000001_create_things.up.sql":   createUp,
		"000001_create_things.down.sql": createDown,
		"000002_seed.up.sql":            "INSERT INTO things VALUES (1), (2);",
		"README.md":                     "not a migration",
	})
	assertVersion(t, m, 0, false) // no schema_migrations table yet

	pending, err := m.Pending(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []ops.Migration{
		{Version: 1, Name: "create_things", UpSQL: createUp, HasDown: true},
		{Version: 2, Name: "seed", UpSQL: "INSERT INTO things VALUES (1), (2);"},
	}
	if !reflect.DeepEqual(pending, want) {
		t.Fatalf("Pending = %+v, want %+v", pending, want)
	}
	if err := m.Up(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	assertVersion(t, m, 2, false)
	if pending, err := m.Pending(t.Context(), dir); err != nil || len(pending) != 0 {
		t.Errorf("Pending after Up = %+v, %v; want none", pending, err)
	}
	if err := m.Up(t.Context(), dir); err != nil {
		t.Errorf("Up with nothing pending: %v", err)
	}
	if size, err := m.Size(t.Context()); err != nil || size < 1<<20 {
		t.Errorf("Size = %d, %v; want a database size", size, err)
	}
	if err := m.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestMigratorFailureLeavesDirty(t *testing.T) {
	m := pg.NewMigrator(testenv.Postgres(t))
	dir := migrationDir(t, map[string]string{
		"000001_create_things.up.sql":   createUp,
		"000001_create_things.down.sql": createDown,
		"000002_add_column.up.sql":      brokenUp,
		"000003_later.up.sql":           "SELECT 1;",
	})
	err := m.Up(t.Context(), dir)
	if err == nil {
		t.Fatal("Up with a broken migration succeeded")
	}
	for _, want := range []string{"migration 2 add_column failed", `type "nosuchtype" does not exist`, "dirty at version 2", "reset schema_migrations"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Up error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "ADD COLUMN name") {
		t.Errorf("Up error quotes the migration: %v", err)
	}
	assertVersion(t, m, 2, true)

	pending, err := m.Pending(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Version != 3 {
		t.Errorf("Pending on a dirty database = %+v, want only version 3", pending)
	}
	err = m.Up(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "dirty at version 2") {
		t.Errorf("Up on a dirty database: %v, want a dirty error", err)
	}
}

func TestMigratorErrors(t *testing.T) {
	dsn := testenv.Postgres(t)
	tests := []struct {
		name, dsn string
		files     map[string]string
		wantErr   string
	}{
		{"duplicate version", dsn, map[string]string{"1_a.up.sql": "", "001_b.up.sql": ""}, "share version 1"},
		{"not a postgres URL", "mysql://x@127.0.0.1/db", map[string]string{"1_a.up.sql": ""}, "connect"},
		{"unreachable", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2", map[string]string{"1_a.up.sql": ""}, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pg.NewMigrator(tt.dsn).Up(t.Context(), migrationDir(t, tt.files))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Up: %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if err := pg.NewMigrator("postgres://u:secret@127.0.0.1:1/db").Ping(t.Context()); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
}
