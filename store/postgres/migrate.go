package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// database driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is the table in which golang-migrate records the schema
// version. It is not the default schema_migrations, so the bot's state can
// share a database with an application that has its own migrations.
const MigrationsTable = "chatops_schema_migrations"

// MigrateUp applies every migration not yet applied. An up-to-date schema is
// not an error.
func MigrateUp(ctx context.Context, dsn string) error {
	if err := withMigrate(ctx, dsn, (*migrate.Migrate).Up); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown reverts every applied migration, dropping the bot's tables.
func MigrateDown(ctx context.Context, dsn string) error {
	if err := withMigrate(ctx, dsn, (*migrate.Migrate).Down); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrateSteps applies n migrations up when n > 0, or reverts -n when n < 0.
// Asking for more steps than exist applies those that do, then returns an
// error.
func MigrateSteps(ctx context.Context, dsn string, n int) error {
	err := withMigrate(ctx, dsn, func(m *migrate.Migrate) error { return m.Steps(n) })
	if err != nil {
		return fmt.Errorf("migrate %+d steps: %w", n, err)
	}
	return nil
}

// MigrationVersion reports the applied schema version and whether a failed
// migration left it dirty. A database without any migration reports 0.
func MigrationVersion(ctx context.Context, dsn string) (version uint, dirty bool, err error) {
	err = withMigrate(ctx, dsn, func(m *migrate.Migrate) error {
		var err error
		version, dirty, err = m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("migration version: %w", err)
	}
	return version, dirty, nil
}

// withMigrate runs fn on a migrator over the embedded migrations and dsn.
// Cancelling ctx stops between two migrations (golang-migrate cannot
// interrupt one); connecting obeys the DSN's connect_timeout.
// migrate.ErrNoChange is not an error.
func withMigrate(ctx context.Context, dsn string, fn func(*migrate.Migrate) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dbURL, err := migrateURL(dsn)
	if err != nil {
		return err
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, dbURL)
	if err != nil {
		return errors.Join(fmt.Errorf("open: %w", err), src.Close())
	}
	defer func() {
		srcErr, dbErr := m.Close()
		err = errors.Join(err, srcErr, dbErr)
	}()

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true // buffered; the only send
		case <-done:
		}
	}()

	err = fn(m)
	if errors.Is(err, migrate.ErrNoChange) {
		err = nil
	}
	if err == nil {
		err = ctx.Err() // a graceful stop returns nil
	}
	return err
}

// migrateURL turns a postgres:// URL into the pgx5:// URL the golang-migrate
// driver expects, pointing it at MigrationsTable.
func migrateURL(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// url.Parse's error quotes the DSN, password included: leave it out.
		return "", errors.New("dsn must be a postgres:// URL")
	}
	u.Scheme = "pgx5"
	q := u.Query()
	q.Set("x-migrations-table", MigrationsTable)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
