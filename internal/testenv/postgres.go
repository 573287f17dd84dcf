package testenv

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
)

// Postgres creates a fresh, empty database with a unique name (t_<random>)
// on the server at localenv.AdminDSN, drops it when the test ends, and
// returns its DSN. An unreachable server is reported through Missing.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := localenv.AdminDSN()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	conn, err := pgx.Connect(ctx, admin)
	cancel()
	if err != nil {
		Missing(t, "PostgreSQL", err)
	}
	if err := conn.Close(t.Context()); err != nil {
		t.Fatalf("close admin connection: %v", err)
	}

	name := "t_" + strings.ToLower(rand.Text())
	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dsn, err := localenv.CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := localenv.DropDatabase(ctx, admin, name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}
