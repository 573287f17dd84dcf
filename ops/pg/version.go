package pg

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// clientVersion matches the major version in `pg_dump --version`, e.g.
// "pg_dump (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)".
var clientVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// DumpVersions reports the major versions of the pg_dump this Snapshotter
// runs and of the database's server: pg_dump refuses a newer server, so
// a snapshot needs client >= server.
func (s *Snapshotter) DumpVersions(ctx context.Context) (client, server int, err error) {
	out, err := exec.CommandContext(ctx, s.opts.PgDump, "--version").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%s --version: %w", s.opts.PgDump, err)
	}
	if client, err = parseClientMajor(string(out)); err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, s.opts.DatabaseURL)
	if err != nil {
		return 0, 0, fmt.Errorf("connect to the app database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return 0, 0, fmt.Errorf("read the server version: %w", err)
	}
	return client, num / 10000, nil
}

// parseClientMajor reads the major version out of a client's --version.
func parseClientMajor(out string) (int, error) {
	m := clientVersion.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unrecognised pg_dump version %q", out)
	}
	return strconv.Atoi(m[1])
}
