// Package localenv finds and prepares the services a developer machine or CI
// runner provides (PostgreSQL for now) for tests and the demo. It does not
// depend on package testing.
package localenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminDSN is the PostgreSQL superuser DSN used when TOGATHER_TEST_PG
// is not set; .ci/postgres.sh prepares a server that accepts it.
const DefaultAdminDSN = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN returns the DSN of a PostgreSQL role allowed to create databases:
// $TOGATHER_TEST_PG, or DefaultAdminDSN.
func AdminDSN() string {
	if dsn := os.Getenv("TOGATHER_TEST_PG"); dsn != "" {
		return dsn
	}
	return DefaultAdminDSN
}

// CreateDatabase creates the database name through adminDSN and returns the
// DSN that reaches it with the same credentials.
func CreateDatabase(ctx context.Context, adminDSN, name string) (dsn string, err error) {
	if err := adminExec(ctx, adminDSN, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return WithDatabase(adminDSN, name), nil
}

// DropDatabase drops the database name, if it exists, disconnecting its
// sessions first.
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	if err := adminExec(ctx, adminDSN, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// WithDatabase returns dsn pointing at database db instead. dsn is a
// postgres:// URL or a keyword/value string ("host=... user=...").
func WithDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Keyword/value form: a repeated keyword overrides the earlier one.
		quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db)
		return dsn + " dbname='" + quoted + "'"
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

// adminExec runs one statement on a short-lived connection to adminDSN.
func adminExec(ctx context.Context, adminDSN, sql string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
