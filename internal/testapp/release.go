package testapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RiverTables are the tables of the second migration set the stand-in
// requires at start when asked to (TESTAPP_REQUIRE_TABLES), as the real
// server requires River's queue tables.
var RiverTables = []string{"river_queue", "river_job"}

// RequireTables connects to dsn and fails, in the words PostgreSQL would
// use, unless every table exists.
func RequireTables(ctx context.Context, dsn string, tables []string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, t := range tables {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t).Scan(&exists); err != nil {
			return fmt.Errorf("look for %s: %w", t, err)
		}
		if !exists {
			return fmt.Errorf(`relation "%s" does not exist`, t)
		}
	}
	return nil
}

// MigrateRiver creates the RiverTables in dsn's database; running it again
// changes nothing.
func MigrateRiver(ctx context.Context, dsn string, out io.Writer) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS river_queue (name text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS river_job (id bigserial PRIMARY KEY, queue text NOT NULL DEFAULT 'default', kind text NOT NULL);`)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	fmt.Fprintf(out, "river: applied migrations, tables %s\n", strings.Join(RiverTables, ", "))
	return nil
}

// SyncResult is the last line `server scrape sync --json` prints.
type SyncResult struct {
	SourcesFound int `json:"sources_found"`
	Total        int `json:"total"`
	Created      int `json:"created"`
	Updated      int `json:"updated"`
	Warnings     int `json:"warnings"`
	Errors       int `json:"errors"`
}

// Sync stands in for `server scrape sync --json`: it needs the River
// tables, prints a progress line and the JSON result, and fails when
// fail is set.
func Sync(ctx context.Context, dsn string, fail bool, out io.Writer) error {
	if err := RequireTables(ctx, dsn, RiverTables); err != nil {
		return err
	}
	fmt.Fprintln(out, "sync: reading configs/sources")
	res := SyncResult{SourcesFound: 3, Total: 3, Created: 1, Updated: 2}
	if fail {
		res.Errors = 1
	}
	if err := json.NewEncoder(out).Encode(res); err != nil {
		return err
	}
	if fail {
		return fmt.Errorf("sync: %d source(s) failed", res.Errors)
	}
	return nil
}
