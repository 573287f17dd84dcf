package pg

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/ops"
)

// clientVersion matches the major version in `pg_dump --version`, e.g.
// "pg_dump (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)".
var clientVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// DumpVersions reports the major versions of the pg_dump this Snapshotter
// runs and of the database's server, and where pg_dump runs: pg_dump
// refuses a newer server, so a snapshot needs client >= server.
func (s *Snapshotter) DumpVersions(ctx context.Context) (ops.DumpClient, error) {
	srv, err := parseServer(s.opts.DatabaseURL)
	if err != nil {
		return ops.DumpClient{}, err
	}
	d := ops.DumpClient{Where: s.client.where()}
	var out bytes.Buffer
	if err := s.run(ctx, srv, srv.database, "pg_dump", []string{"--version"}, nil, &out); err != nil {
		return d, fmt.Errorf("pg_dump --version: %w", err)
	}
	if d.Client, err = parseClientMajor(out.String()); err != nil {
		return d, err
	}
	conn, err := pgx.Connect(ctx, s.opts.DatabaseURL)
	if err != nil {
		return d, fmt.Errorf("connect to the app database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return d, fmt.Errorf("read the server version: %w", err)
	}
	d.Server = num / 10000
	return d, nil
}

// parseClientMajor reads the major version out of a client's --version.
func parseClientMajor(out string) (int, error) {
	m := clientVersion.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unrecognised pg_dump version %q", out)
	}
	return strconv.Atoi(m[1])
}
