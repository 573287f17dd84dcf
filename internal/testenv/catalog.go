package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Catalog describes a database's schema objects (relations, constraints,
// indexes, triggers, functions, event triggers) and the row count of every
// table, one sorted line each.
func Catalog(t *testing.T, dsn string) []string {
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

// DiffLines lists the lines only in a (-) and only in b (+).
func DiffLines(a, b []string) string {
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

// FailingSnapshot writes into dir a copy of the snapshot file src (a
// gzipped plain dump) named with _broken instead of its reason, whose SQL
// fails after every table was dropped, recreated and loaded: its last
// statement divides by zero. It returns the copy's name.
func FailingSnapshot(t *testing.T, dir, src string) string {
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
	name := brokenName(src)
	if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// brokenName is the snapshot name src with its reason replaced by broken.
func brokenName(src string) string {
	i := strings.LastIndex(src, "_")
	return src[:i] + "_broken.sql.gz"
}
