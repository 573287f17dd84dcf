// Command testapp serves the stand-in Togather server of package testapp on
// :$PORT (default 8080), configured from the environment (SLOT, VERSION,
// GIT_COMMIT, BUILD_DATE, TESTAPP_MODE).
//
// Like the real server it can refuse to start: with TESTAPP_REQUIRE_TABLES
// (a comma-separated list, e.g. river_queue,river_job) it first connects to
// DATABASE_URL and exits 1 unless the tables exist; mode crash-at-start
// logs its configuration, a screenful, and exits 1. Its release commands,
// run as one-off containers: `testapp migrate-river` creates the River
// tables and `testapp sync` stands in for `server scrape sync --json` (it
// fails when TESTAPP_SYNC_FAIL is set).
//
// SIGTERM or SIGINT starts a graceful shutdown: /health answers 503
// shutting_down, the listener stays open for SHUTDOWN_DELAY (default 0) so
// probes can see it, in-flight requests finish, and the process exits 0. In
// mode crash-after=<d> the process exits 1 once d has passed.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/testapp"
)

func main() { exit(run(os.Args[1:])) }

// exit ends the process as the real server does: 1 with the error logged.
func exit(err error) {
	if err != nil {
		log.Printf("testapp: %v", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch cmd := strings.Join(args, " "); cmd {
	case "":
	case "migrate-river":
		return testapp.MigrateRiver(ctx, os.Getenv("DATABASE_URL"), os.Stdout)
	case "sync":
		return testapp.Sync(ctx, os.Getenv("DATABASE_URL"), os.Getenv("TESTAPP_SYNC_FAIL") != "", os.Stdout)
	default:
		return fmt.Errorf("unknown command %q (want no command to serve, migrate-river or sync)", cmd)
	}
	opts, err := testapp.OptionsFromEnv()
	if err != nil {
		return err
	}
	if opts.Mode.Name == testapp.ModeCrashAtStart {
		// A screenful, as the real server logs its configuration in JSON
		// lines before it fails: more than a chat message holds at once.
		log.Printf("testapp: starting version %s", opts.Version)
		for _, key := range []string{"ENVIRONMENT", "SLOT", "HTTP_ADDR", "DATABASE_URL", "DATABASE_MAX_CONNS", "JWT_ISSUER",
			"RIVER_QUEUES", "SCRAPE_SOURCES_DIR", "GEOCODER", "CORS_ORIGINS", "RATE_LIMIT", "LOG_LEVEL"} {
			log.Printf(`{"level":"info","component":"config","setting":%q,"source":"env","message":"configuration loaded"}`, key)
		}
		return errors.New("fatal: crashing at start as asked by mode " + opts.Mode.String())
	}
	if tables := os.Getenv("TESTAPP_REQUIRE_TABLES"); tables != "" {
		log.Printf("testapp: checking the database for %s", tables)
		if err := testapp.RequireTables(ctx, os.Getenv("DATABASE_URL"), strings.Split(tables, ",")); err != nil {
			return fmt.Errorf("fatal: job queue: %w", err)
		}
	}
	var drain time.Duration
	if s := os.Getenv("SHUTDOWN_DELAY"); s != "" {
		if drain, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("SHUTDOWN_DELAY: %w", err)
		}
	}
	ln, err := net.Listen("tcp", ":"+cmp.Or(os.Getenv("PORT"), "8080"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	app := testapp.New(opts)
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Printf("testapp: listening on %s slot=%q version=%s mode=%s", ln.Addr(), opts.Slot, opts.Version, opts.Mode)

	if opts.Mode.Name == testapp.ModeCrashAfter {
		time.AfterFunc(opts.Mode.After, func() {
			log.Printf("testapp: crashing as asked by mode %s", opts.Mode)
			os.Exit(1)
		})
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Printf("testapp: shutting down (drain %s)", drain)
	app.StartShutdown()
	time.Sleep(drain) // keep accepting so health probes see shutting_down
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Printf("testapp: stopped")
	return nil
}
