package postgres_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// latestVersion is the highest migration number in migrations/.
func latestVersion(t *testing.T) uint {
	t.Helper()
	latest, _ := lastVersions(t)
	return latest
}

// lastVersions are the highest migration number in migrations/ and the one
// below it (0 when there is one migration): numbers need not be contiguous
// while branches that each add one are merged.
func lastVersions(t *testing.T) (latest, previous uint) {
	t.Helper()
	files, err := filepath.Glob("migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no up migrations found (%v)", err)
	}
	for _, f := range files {
		prefix, _, _ := strings.Cut(filepath.Base(f), "_")
		v, err := strconv.ParseUint(prefix, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		if uint(v) > latest {
			latest, previous = uint(v), latest
		} else {
			previous = max(previous, uint(v))
		}
	}
	return latest, previous
}

// tables reports which of names (tables or sequences) exist in the database at dsn.
func tables(t *testing.T, dsn string, names ...string) map[string]bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	exist := make(map[string]bool)
	for _, n := range names {
		var ok bool
		if err := conn.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, n).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		exist[n] = ok
	}
	return exist
}

func TestMigrations(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := t.Context()
	latest, previous := lastVersions(t)

	// introducedBy maps each table (and sequence) of the bot to the migration
	// creating it.
	introducedBy := map[string]uint{
		"audit_log":           1,
		"processed_envelopes": 1,
		"operations":          2,
		"operation_journal":   2,
		"env_locks":           2,
		"alert_groups":        3,
		"incidents":           3,
		"incident_seq":        3,
		"incident_timeline":   3,
		"secret_rotations":    4,
		"maintenance_windows": 5,
		"maintenance_events":  5,
		"maintenance_alerts":  5,
		"job_runs":            6,
		"db_size_history":     6,
		"leader_terms":        8,
		"page_outbox":         9,
		"message_outbox":      12,
	}
	names := []string{postgres.MigrationsTable, "schema_migrations"}
	for name := range introducedBy {
		names = append(names, name)
	}

	steps := []struct {
		name    string
		run     func() error
		version uint
	}{
		{"fresh", func() error { return nil }, 0},
		{"up", func() error { return postgres.MigrateUp(ctx, dsn) }, latest},
		{"up again", func() error { return postgres.MigrateUp(ctx, dsn) }, latest},
		{"down", func() error { return postgres.MigrateDown(ctx, dsn) }, 0},
		{"down again", func() error { return postgres.MigrateDown(ctx, dsn) }, 0},
		{"one step up", func() error { return postgres.MigrateSteps(ctx, dsn, 1) }, 1},
		{"one step down", func() error { return postgres.MigrateSteps(ctx, dsn, -1) }, 0},
		{"up after down", func() error { return postgres.MigrateUp(ctx, dsn) }, latest},
		{"one step back", func() error { return postgres.MigrateSteps(ctx, dsn, -1) }, previous},
		{"up again after a step back", func() error { return postgres.MigrateUp(ctx, dsn) }, latest},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		version, dirty, err := postgres.MigrationVersion(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: version: %v", step.name, err)
		}
		if version != step.version || dirty {
			t.Errorf("%s: version = %d, dirty %v; want %d, clean", step.name, version, dirty, step.version)
		}
		got := tables(t, dsn, names...)
		want := map[string]bool{
			postgres.MigrationsTable: true,
			"schema_migrations":      false, // left to the application
		}
		for name, v := range introducedBy {
			want[name] = step.version >= v
		}
		for name, exists := range want {
			if got[name] != exists {
				t.Errorf("%s: table %s exists = %v, want %v", step.name, name, got[name], exists)
			}
		}
	}
}

func TestMigrateErrors(t *testing.T) {
	dsn := testenv.Postgres(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	if err := postgres.MigrateUp(t.Context(), "host=127.0.0.1 user=postgres"); err == nil {
		t.Error("MigrateUp with a keyword/value DSN: got nil error")
	}
	if err := postgres.MigrateUp(cancelled, dsn); err == nil {
		t.Error("MigrateUp with a cancelled context: got nil error")
	}
	if tables(t, dsn, "audit_log")["audit_log"] {
		t.Error("a failed MigrateUp created audit_log")
	}

	latest := latestVersion(t)
	if err := postgres.MigrateSteps(t.Context(), dsn, int(latest)+1); err == nil {
		t.Errorf("MigrateSteps(%d) with %d migrations: got nil error", latest+1, latest)
	}
	if version, dirty, err := postgres.MigrationVersion(t.Context(), dsn); err != nil || version != latest || dirty {
		t.Errorf("after too many steps: version = %d, %v, %v; want %d, clean", version, dirty, err, latest)
	}
}
