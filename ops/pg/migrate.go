package pg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // the pgx5:// driver
	_ "github.com/golang-migrate/migrate/v4/source/file"     // the file:// source
	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Migrator applies golang-migrate migrations (NNNNNN_name.up.sql files) to
// the application database, recording them in the standard
// schema_migrations table as Togather's own tooling does.
type Migrator struct {
	url string
}

var _ ops.Migrator = (*Migrator)(nil)

// NewMigrator returns a Migrator of the database at databaseURL (postgres://).
func NewMigrator(databaseURL string) *Migrator {
	return &Migrator{url: databaseURL}
}

// migrationFile matches golang-migrate's file names.
var migrationFile = regexp.MustCompile(`^(\d+)_(.+)\.(up|down)\.sql$`)

// Version returns the applied version and whether the last migration failed
// half-way. A database never migrated is at version 0; Version only reads.
func (m *Migrator) Version(ctx context.Context) (uint, bool, error) {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return 0, false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	if !exists {
		return 0, false, nil
	}
	var (
		version int64
		dirty   bool
	)
	err = conn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	return uint(max(version, 0)), dirty, nil
}

// Pending lists the migrations in dir above the applied version, in order.
func (m *Migrator) Pending(ctx context.Context, dir string) ([]ops.Migration, error) {
	all, err := readMigrations(dir)
	if err != nil {
		return nil, err
	}
	applied, _, err := m.Version(ctx)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(all), func(i int) bool { return all[i].Version > applied })
	return all[i:], nil
}

// Up applies every pending migration in dir. It refuses a dirty database,
// and when a migration fails it says which one and how to recover.
func (m *Migrator) Up(ctx context.Context, dir string) error {
	version, dirty, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if dirty {
		return fmt.Errorf("the database is dirty at version %d (a migration failed half-way): %s", version, recoveryHint)
	}
	all, err := readMigrations(dir)
	if err != nil {
		return err
	}
	dbURL, err := pgx5URL(m.url)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("migrations directory: %w", err)
	}
	mg, err := migrate.New((&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), dbURL)
	if err != nil {
		return fmt.Errorf("open migrations: %w", redactURLError(err))
	}
	defer mg.Close()

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			mg.GracefulStop <- true // stops after the migration under way
		case <-done:
		}
	}()
	err = mg.Up()
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		return ctx.Err()
	case ctx.Err() != nil:
		return fmt.Errorf("migrate up: %w", context.Cause(ctx))
	}
	failed, dirty, verr := mg.Version()
	if verr != nil || !dirty {
		return fmt.Errorf("migrate up: %w", err)
	}
	var dbErr database.Error
	if errors.As(err, &dbErr) && dbErr.OrigErr != nil {
		err = dbErr.OrigErr // without the migration's whole text
	}
	return fmt.Errorf("migration %d %s failed: %w; the database is now dirty at version %d: %s",
		failed, migrationName(all, failed), err, failed, recoveryHint)
}

// recoveryHint is what to do about a dirty database.
const recoveryHint = "restore the pre-deploy snapshot, or repair the schema and reset schema_migrations by hand (docs/operations.md, \"A dirty migration\")"

// Size is the application database's size in bytes.
func (m *Migrator) Size(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var size int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	return size, nil
}

// Ping checks that the application database accepts connections.
func (m *Migrator) Ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// readMigrations reads the migrations of dir, sorted by version, with
// their up SQL.
func readMigrations(dir string) ([]ops.Migration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	byVersion := map[uint]*ops.Migration{}
	ups := map[uint]string{} // version → up file, to find duplicates
	for _, e := range entries {
		parts := migrationFile.FindStringSubmatch(e.Name())
		if parts == nil || e.IsDir() {
			continue
		}
		v, err := strconv.ParseUint(parts[1], 10, 0)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		version := uint(v)
		mig := byVersion[version]
		if mig == nil {
			mig = &ops.Migration{Version: version, Name: parts[2]}
			byVersion[version] = mig
		}
		if parts[3] == "down" {
			mig.HasDown = true
			continue
		}
		if prev, dup := ups[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), version)
		}
		ups[version] = e.Name()
		sql, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		mig.Name, mig.UpSQL = parts[2], string(sql)
	}
	list := make([]ops.Migration, 0, len(ups))
	for v := range ups {
		list = append(list, *byVersion[v])
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	return list, nil
}

// migrationName is the name of migration version in list, or "?".
func migrationName(list []ops.Migration, version uint) string {
	for _, m := range list {
		if m.Version == version {
			return m.Name
		}
	}
	return "?"
}

// pgx5URL turns a postgres:// URL into the pgx5:// URL golang-migrate's
// pgx v5 driver is registered under.
func pgx5URL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", redactURLError(err))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("database URL must start with postgres:// or postgresql://, not %q", u.Scheme+"://")
	}
	u.Scheme = "pgx5"
	return u.String(), nil
}
