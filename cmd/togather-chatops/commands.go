package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, path := flagSet("serve", "serve [--config FILE] [--log-level info]", stderr)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path, secretVars...)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("migrate", "migrate up|down|version [--config FILE]\n\nThe store is DATABASE_URL; without a config file DATABASE_URL alone is enough.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want exactly one of up, down, version"}
	}
	dsn := os.Getenv("DATABASE_URL")
	if *path != "" {
		cfg, err := loadConfig(*path, config.EnvDatabaseURL)
		if err != nil {
			return err
		}
		dsn = cfg.Secrets.DatabaseURL
	}
	if dsn == "" {
		return usageError{"DATABASE_URL is not set: it names the bot's own PostgreSQL database"}
	}
	switch fs.Arg(0) {
	case "up":
		if err := postgres.MigrateUp(ctx, dsn); err != nil {
			return err
		}
	case "down":
		if err := postgres.MigrateDown(ctx, dsn); err != nil {
			return err
		}
	case "version":
	default:
		return usageError{fmt.Sprintf("unknown migrate action %q: want up, down or version", fs.Arg(0))}
	}
	v, dirty, err := postgres.MigrationVersion(ctx, dsn)
	if err != nil {
		return err
	}
	state := "clean"
	if dirty {
		state = "DIRTY: a migration failed half-way; fix the schema by hand, then run migrate again"
	}
	_, err = fmt.Fprintf(stdout, "store schema version %d (%s)\n", v, state)
	return err
}

func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("config", "config check [--config FILE] [--print]", stderr)
	print := fs.Bool("print", false, "print the effective configuration with secrets redacted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "check" {
		return usageError{"usage: config check [--config FILE] [--print]"}
	}
	if *path == "" {
		return usageError{"no configuration: pass --config FILE or set TOGATHER_CHATOPS_CONFIG"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	cfg.LoadSecrets(os.Getenv)
	problems := cfg.Validate()
	if *print {
		fmt.Fprintln(stdout, cfg.Redacted())
	}
	if len(problems) == 0 {
		_, err := fmt.Fprintf(stdout, "%s: ok (%d environments: %v)\n", *path, len(cfg.Environments), cfg.EnvironmentNames())
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p.String())
	}
	return fmt.Errorf("%s has %d problem(s)", *path, len(problems))
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("status", "status <env> [--config FILE] [--json]", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one environment: status <env>"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	o, err := app.NewOps(cfg, app.OpsOptions{})
	if err != nil {
		return err
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := o.Status(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	_, err = fmt.Fprintln(stdout, bot.RenderStatus(st).PlainText())
	return err
}

// parseFlags parses flags anywhere among the positionals, so
// `deploy staging v2 --reason "x"` works like `deploy --reason "x" staging v2`
// (the flag package stops at the first positional).
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
