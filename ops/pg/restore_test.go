package pg_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// richSQL adds to seedSQL the objects a restore must bring back exactly:
// a second table, an index, a trigger and its function.
const richSQL = `
CREATE TABLE attendees (id int PRIMARY KEY, event_id int NOT NULL, name text);
INSERT INTO attendees SELECT g, 1 + g % 1000, 'guest ' || g FROM generate_series(1, 3000) g;
CREATE INDEX attendees_event_idx ON attendees (event_id);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER attendees_touch BEFORE UPDATE ON attendees FOR EACH ROW EXECUTE FUNCTION touch();
`

// fkMigration is the deploy's migration: a foreign key added to an
// existing table, which the pre-deploy snapshot does not know. The dump's
// DROP CONSTRAINT events_pkey fails on it.
const fkMigration = `
ALTER TABLE attendees ADD CONSTRAINT attendees_event_fk FOREIGN KEY (event_id) REFERENCES events (id);
CREATE TABLE tickets (id int PRIMARY KEY, attendee_id int REFERENCES attendees (id));
INSERT INTO tickets SELECT g, g FROM generate_series(1, 50) g;
DELETE FROM events WHERE id > 900 AND NOT EXISTS (SELECT 1 FROM attendees WHERE event_id = events.id);
`

func richDB(t *testing.T) string {
	t.Helper()
	dsn := seededDB(t)
	execSQL(t, dsn, richSQL)
	return dsn
}

// TestRestoreAcrossForeignKeyMigration: a snapshot taken before a migration
// that adds a foreign key to an existing table restores completely over the
// migrated schema, and the database then equals the snapshot.
func TestRestoreAcrossForeignKeyMigration(t *testing.T) {
	dsn := richDB(t)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir()})
	want := testenv.Catalog(t, dsn)
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, fkMigration)
	if err := s.Restore(t.Context(), info.Name, nil); err != nil {
		t.Fatalf("Restore across the migration: %v", err)
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, want) {
		t.Errorf("after the restore the database differs from the snapshot:\n%s", testenv.DiffLines(want, got))
	}
}

// TestRestoreFailureLeavesDatabaseUntouched: a restore whose SQL fails after
// hundreds of statements ran leaves every object and row as it was.
func TestRestoreFailureLeavesDatabaseUntouched(t *testing.T) {
	dsn := richDB(t)
	dir := t.TempDir()
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: dir})
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	broken := testenv.FailingSnapshot(t, dir, info.Name)
	execSQL(t, dsn, fkMigration)
	before := testenv.Catalog(t, dsn)
	err = s.Restore(t.Context(), broken, nil)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("Restore of a failing snapshot = %v, want psql's division by zero", err)
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", testenv.DiffLines(before, got))
	}
}

// blockDrops is a later migration that makes the snapshot impossible to
// restore over the current schema: an event trigger refusing every DROP.
const blockDrops = `
CREATE FUNCTION no_drops() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'drops are disabled in this database'; END $$;
CREATE EVENT TRIGGER no_drops ON ddl_command_start WHEN TAG IN ('DROP SCHEMA', 'DROP TABLE') EXECUTE FUNCTION no_drops();
`

// TestVerifyAtCurrentSchema: verify restores into a scratch database that
// holds the environment's current schema, so it passes a snapshot exactly
// when the real restore would succeed.
func TestVerifyAtCurrentSchema(t *testing.T) {
	dsn := richDB(t)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir()})
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, fkMigration)
	res, err := s.Verify(t.Context(), info.Name)
	if err != nil {
		t.Fatalf("Verify over the migrated schema: %v", err)
	}
	if res.Tables != 3 || len(res.Mismatch) != 0 {
		t.Errorf("Verify = %+v, want 3 tables matching the snapshot", res)
	}

	execSQL(t, dsn, blockDrops)
	before := testenv.Catalog(t, dsn)
	if _, err := s.Verify(t.Context(), info.Name); err == nil || !strings.Contains(err.Error(), "drops are disabled") {
		t.Errorf("Verify of a snapshot that cannot be restored over the current schema = %v, want the restore's error", err)
	}
	if err := s.Restore(t.Context(), info.Name, nil); err == nil {
		t.Errorf("Restore succeeded where verify must have failed")
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", testenv.DiffLines(before, got))
	}
	assertNoScratch(t, dsn, dbName(t, dsn))
}

// TestRestoreKilledBackendLeavesDatabaseUntouched: the restore's backend
// killed while it loads rows (after every schema was dropped) leaves every
// object and row as it was.
func TestRestoreKilledBackendLeavesDatabaseUntouched(t *testing.T) {
	dsn := richDB(t)
	execSQL(t, dsn, `CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g`)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir()})
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, fkMigration)
	before := testenv.Catalog(t, dsn)

	done := make(chan error, 1)
	go func() { done <- s.Restore(t.Context(), info.Name, nil) }()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	killed := false
	for !killed {
		select {
		case err := <-done:
			t.Fatalf("the restore ended (%v) before its backend could be killed in a COPY", err)
		case <-time.After(5 * time.Millisecond):
		}
		if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'psql' AND query LIKE 'COPY%'`).Scan(&killed); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err == nil {
		t.Fatal("Restore reported success after its backend was killed")
	}
	if got := testenv.Catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a killed restore changed the database:\n%s", testenv.DiffLines(before, got))
	}
}
