package pg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// secretValue is a secret the tests' redactors know, never written with a
// name beside it.
const secretValue = "sup3r-s3cret-value"

// TestClientProgramsGetAMinimalEnvironment runs pg_dump on the bot's
// machine with the bot's own secrets in its environment: the program sees
// PATH and its connection, not the bot's tokens.
func TestClientProgramsGetAMinimalEnvironment(t *testing.T) {
	dsn := testenv.Postgres(t)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-the-bots-own-token")
	t.Setenv("DATABASE_URL", "postgres://bot:bot-store-pw@store/chatops")
	log := filepath.Join(t.TempDir(), "env")
	dump := fakePgDump(t, "env > "+log+"\necho 'pg_dump (PostgreSQL) 15.4'")
	if _, err := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: dump}).DumpVersions(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, want := range []string{"PATH=", "PGHOST=", "PGUSER=", "PGPASSFILE="} {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, want) }) {
			t.Errorf("pg_dump's environment lacks %s:\n%s", want, out)
		}
	}
	for _, leak := range []string{"SLACK_BOT_TOKEN", "DATABASE_URL", "xoxb-the-bots-own-token", "bot-store-pw"} {
		if strings.Contains(string(out), leak) {
			t.Errorf("pg_dump's environment has %s:\n%s", leak, out)
		}
	}
}

// TestClientStderrIsRedacted: what a failing pg_dump prints on stderr
// reaches the error without the secrets the redactor knows.
func TestClientStderrIsRedacted(t *testing.T) {
	dsn := testenv.Postgres(t)
	dump := fakePgDump(t, `echo "pg_dump: error: role login with `+secretValue+` refused" >&2; exit 1`)
	s := pg.NewSnapshotter(pg.SnapshotOptions{DatabaseURL: dsn, Dir: t.TempDir(), PgDump: dump, Redactor: ops.NewRedactor(secretValue)})
	_, err := s.Create(t.Context(), "deploy", nil)
	if err == nil || !strings.Contains(err.Error(), "role login with *** refused") || strings.Contains(err.Error(), secretValue) {
		t.Fatalf("Create with a failing pg_dump: %v, want its stderr with the secret redacted", err)
	}
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("the redacted error lost its cause: %v", err)
	}
}

// TestSlowQueryTextIsRedacted: a running query that quotes a secret is
// listed with the secret redacted.
func TestSlowQueryTextIsRedacted(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pid := int(conn.PgConn().PID())
	sleepCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = conn.Exec(sleepCtx, "SELECT pg_sleep(30), '"+secretValue+"'")
	}()
	defer func() { stop(); <-done }()

	in := pg.NewInspector(dsn, ops.NewRedactor(secretValue))
	var got ops.SlowQuery
	eventually(t, "the sleeping query listed as slow", func() (bool, error) {
		list, err := in.Slow(ctx, time.Second)
		i := slices.IndexFunc(list, func(q ops.SlowQuery) bool { return q.PID == pid })
		if i >= 0 {
			got = list[i]
		}
		return i >= 0, err
	})
	if want := "SELECT pg_sleep(30), '***'"; got.Query != want {
		t.Errorf("slow query text = %q, want %q", got.Query, want)
	}
}
