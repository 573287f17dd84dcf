package pg_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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

// catalog describes a database's schema objects (relations, constraints,
// indexes, triggers, functions, event triggers) and the row count of every
// table, one sorted line each.
func catalog(t *testing.T, dsn string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const user = `NOT IN (SELECT oid FROM pg_namespace WHERE nspname ~ '^pg_' OR nspname = 'information_schema')`
	rows, err := conn.Query(t.Context(), `
SELECT 'relation ' || oid::regclass || ' ' || relkind::text FROM pg_class WHERE relnamespace `+user+`
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace `+user+`
UNION ALL SELECT 'index ' || indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace `+user+`
UNION ALL SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc WHERE pronamespace `+user+`
UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger
UNION ALL SELECT 'schema ' || nspname || ' acl ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE oid `+user)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	rows, err = conn.Query(t.Context(), `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname !~ '^pg_' AND schemaname <> 'information_schema'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var n int64
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("rows %s %d", table, n))
	}
	slices.Sort(out)
	return out
}

func diffLines(a, b []string) string {
	var d []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			d = append(d, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			d = append(d, "+ "+l)
		}
	}
	return strings.Join(d, "\n")
}

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
	want := catalog(t, dsn)
	info, err := s.Create(t.Context(), "pre-deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, fkMigration)
	if err := s.Restore(t.Context(), info.Name, nil); err != nil {
		t.Fatalf("Restore across the migration: %v", err)
	}
	if got := catalog(t, dsn); !reflect.DeepEqual(got, want) {
		t.Errorf("after the restore the database differs from the snapshot:\n%s", diffLines(want, got))
	}
}

// failingSnapshot writes, next to info, a copy of snapshot src whose SQL
// fails after every table was dropped, recreated and loaded: the last
// statement divides by zero.
func failingSnapshot(t *testing.T, dir, src string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, src))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var sql bytes.Buffer
	if _, err := sql.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(sql.Bytes(), []byte(`\unrestrict`))
	if i < 0 {
		i = sql.Len()
	}
	body := slices.Concat(sql.Bytes()[:i], []byte("SELECT 1/0;\n"), sql.Bytes()[i:])
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(body)
	zw.Close()
	name := strings.Replace(src, "_pre-deploy", "_broken", 1)
	if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
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
	broken := failingSnapshot(t, dir, info.Name)
	execSQL(t, dsn, fkMigration)
	before := catalog(t, dsn)
	err = s.Restore(t.Context(), broken, nil)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("Restore of a failing snapshot = %v, want psql's division by zero", err)
	}
	if got := catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", diffLines(before, got))
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
	before := catalog(t, dsn)
	if _, err := s.Verify(t.Context(), info.Name); err == nil || !strings.Contains(err.Error(), "drops are disabled") {
		t.Errorf("Verify of a snapshot that cannot be restored over the current schema = %v, want the restore's error", err)
	}
	if err := s.Restore(t.Context(), info.Name, nil); err == nil {
		t.Errorf("Restore succeeded where verify must have failed")
	}
	if got := catalog(t, dsn); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", diffLines(before, got))
	}
	assertNoScratch(t, dsn, dbName(t, dsn))
}
