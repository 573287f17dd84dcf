// Package pg is the application-database adapter of ops: Snapshotter takes,
// lists, restores, verifies and prunes pg_dump snapshots compressed in
// process (Togather's file names and metadata, restorable with
// `gunzip -c f | psql`), Migrator applies golang-migrate migrations, and
// Inspector reads the statistics views and runs ANALYZE and VACUUM.
// Client programs get the connection through PG* environment variables and a
// temporary password file, never through their command line.
package pg

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/ops/host"
)

// server is a database URL taken apart for libpq's client programs.
type server struct {
	url      *url.URL
	host     string // empty: libpq's default (a local socket)
	port     string
	user     string
	password string
	database string
	env      []string // KEY=VALUE of further libpq parameters (sslmode, ...)
}

// libpqEnv maps the URL query parameters client programs understand to
// their environment variables.
var libpqEnv = map[string]string{
	"sslmode":              "PGSSLMODE",
	"sslrootcert":          "PGSSLROOTCERT",
	"sslcert":              "PGSSLCERT",
	"sslkey":               "PGSSLKEY",
	"sslcrl":               "PGSSLCRL",
	"connect_timeout":      "PGCONNECT_TIMEOUT",
	"application_name":     "PGAPPNAME",
	"options":              "PGOPTIONS",
	"target_session_attrs": "PGTARGETSESSIONATTRS",
}

// parseServer parses a postgres:// (or postgresql://) URL with one host.
// Query parameters host, port, user, password and dbname override the
// URL's parts, as in libpq; unknown ones (pgx pool settings) are ignored.
func parseServer(raw string) (server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, fmt.Errorf("parse database URL: %w", redactURLError(err))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return server{}, fmt.Errorf("database URL must start with postgres:// or postgresql://, not %q", u.Scheme+"://")
	}
	s := server{url: u, host: u.Hostname(), port: u.Port(), database: strings.TrimPrefix(u.Path, "/")}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	q := u.Query()
	for key, dst := range map[string]*string{"host": &s.host, "port": &s.port, "user": &s.user, "password": &s.password, "dbname": &s.database} {
		if v := q.Get(key); v != "" {
			*dst = v
		}
	}
	if s.database == "" {
		return server{}, fmt.Errorf("database URL names no database")
	}
	for key, env := range libpqEnv {
		if v := q.Get(key); v != "" {
			s.env = append(s.env, env+"="+v)
		}
	}
	return s, nil
}

// redactURLError drops the URL (and so the password) from a parse error.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// portOrDefault is the port, or PostgreSQL's default.
func (s server) portOrDefault() string {
	if s.port == "" {
		return "5432"
	}
	return s.port
}

// withDatabase returns the URL of database db on the same server.
func (s server) withDatabase(db string) string {
	u := *s.url
	u.Path, u.RawPath = "/"+db, ""
	q := u.Query()
	if q.Has("dbname") {
		q.Set("dbname", db)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// connect opens a connection to database db of the server.
func (s server) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.withDatabase(db))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", db, err)
	}
	return conn, nil
}

// exec runs one statement on a short-lived connection to the database.
func (s server) exec(ctx context.Context, sql string) error {
	conn, err := s.connect(ctx, s.database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// clientEnv returns the environment of a client program connecting to
// database db: of this process's, the basics and the PG* variables (never
// the bot's secrets), with the connection in PG* variables and the
// password in a temporary password file (mode 0600) that cleanup removes.
func (s server) clientEnv(db string) (env []string, cleanup func(), err error) {
	env = host.ChildEnv("PG")
	if s.password != "" {
		// An inherited PGPASSWORD would win over the password file.
		env = withoutKey(env, "PGPASSWORD")
	}
	set := func(key, value string) {
		if value != "" {
			env = append(env, key+"="+value)
		}
	}
	set("PGHOST", s.host)
	set("PGPORT", s.port)
	set("PGUSER", s.user)
	set("PGDATABASE", db)
	env = append(env, s.env...)
	if s.password == "" {
		return env, func() {}, nil
	}
	f, err := os.CreateTemp("", "togather-pgpass-*") // created with mode 0600
	if err != nil {
		return nil, nil, fmt.Errorf("password file: %w", err)
	}
	cleanup = func() { os.Remove(f.Name()) }
	escaped := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s.password)
	_, err = f.WriteString("*:*:*:*:" + escaped + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("password file: %w", err)
	}
	return append(env, "PGPASSFILE="+f.Name()), cleanup, nil
}

// withoutKey returns env without the entries for key.
func withoutKey(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// userTablesSQL lists the tables whose rows a dump carries: ordinary tables
// outside the system schemas that no extension owns.
const userTablesSQL = `
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`

// querier is what counting rows needs of a connection or transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// rowCounts counts the rows of every user table, keyed schema.table.
func rowCounts(ctx context.Context, q querier) (map[string]int64, error) {
	rows, err := q.Query(ctx, userTablesSQL)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgx.Identifier{schema, name}, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	counts := make(map[string]int64, len(tables))
	for _, t := range tables {
		key := t[0] + "." + t[1]
		var n int64
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+t.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", key, err)
		}
		counts[key] = n
	}
	return counts, nil
}

// tailBuffer keeps the last max bytes written to it, for a child's stderr.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

// String is the kept text, trimmed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// stderrTail is how much of a client program's stderr an error carries.
const stderrTail = 4 << 10

// commandError describes a failed client program with what it printed.
func commandError(name string, err error, stderr *tailBuffer) error {
	if msg := stderr.String(); msg != "" {
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}
