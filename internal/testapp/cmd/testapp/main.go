// Command testapp serves the stand-in Togather server of package testapp on
// :$PORT (default 8080), configured from the environment (SLOT, VERSION,
// GIT_COMMIT, BUILD_DATE, TESTAPP_MODE).
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
	"syscall"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/testapp"
)

func main() {
	if err := run(); err != nil {
		log.Printf("testapp: %v", err)
		os.Exit(1)
	}
}

func run() error {
	opts, err := testapp.OptionsFromEnv()
	if err != nil {
		return err
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
