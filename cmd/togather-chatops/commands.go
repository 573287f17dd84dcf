package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/ops"
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

func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("config", "config check [--config FILE] [--print] [--connect]", stderr)
	print := fs.Bool("print", false, "print the effective configuration with secrets redacted")
	connect := fs.Bool("connect", false, "also reach every environment's host, Docker, Caddy admin, files and database")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "check" {
		return usageError{"usage: config check [--config FILE] [--print] [--connect]"}
	}
	if *path == "" {
		return usageError{"no configuration: pass --config FILE or set TOGATHER_CHATOPS_CONFIG"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	cfg.LoadSecrets(os.Getenv)
	problems, unset := withoutUnsetSlackTokens(cfg, cfg.Validate())
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, "warning: "+w.String())
	}
	if w := unsetSlackTokensWarning(unset); w != "" {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	if *print {
		fmt.Fprintln(stdout, cfg.Redacted())
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stdout, p.String())
		}
		return fmt.Errorf("%s has %d problem(s)", *path, len(problems))
	}
	if _, err := fmt.Fprintf(stdout, "%s: ok (%d environments: %v)\n", *path, len(cfg.Environments), cfg.EnvironmentNames()); err != nil || !*connect {
		return err
	}
	return checkHosts(ctx, cfg, cfg.EnvironmentNames(), stdout)
}

// withoutUnsetSlackTokens drops the problems of Slack tokens that are not
// set: the terminal commands work without them, only `serve` (and the chat
// twins, which post) need them, and those refuse to start without.
// A token set to a wrong value stays a problem.
func withoutUnsetSlackTokens(cfg *config.Config, problems []config.Problem) (kept []config.Problem, unset []string) {
	tokens := map[string]string{config.EnvSlackAppToken: cfg.Secrets.SlackAppToken, config.EnvSlackBotToken: cfg.Secrets.SlackBotToken}
	for _, p := range problems {
		if v, ok := tokens[p.Path]; ok && v == "" {
			unset = append(unset, p.Path)
			continue
		}
		kept = append(kept, p)
	}
	return kept, unset
}

// unsetSlackTokensWarning says which commands need the unset tokens; ""
// when none is unset.
func unsetSlackTokensWarning(unset []string) string {
	var w string
	switch len(unset) {
	case 0:
		return ""
	case 1:
		w = unset[0] + " is not set: fine for the terminal commands; `serve` needs it"
	default:
		w = strings.Join(unset, " and ") + " are not set: fine for the terminal commands; `serve` needs them"
	}
	if slices.Contains(unset, config.EnvSlackBotToken) {
		w += ", and so do `maintenance` and `db`, which post to Slack"
	}
	return w
}

func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("host", "host check [<env>...] [--config FILE]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.Arg(0) != "check" {
		return usageError{"usage: host check [<env>...] (every environment when none is named)"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	envs := fs.Args()[1:]
	if len(envs) == 0 {
		envs = cfg.EnvironmentNames()
	}
	return checkHosts(ctx, cfg, envs, stdout)
}

// checkHosts prints every host requirement of each environment, one line
// per item with its remedy; it fails when one of them failed.
func checkHosts(ctx context.Context, cfg *config.Config, envs []string, stdout io.Writer) error {
	o, err := app.NewOps(cfg, app.OpsOptions{})
	if err != nil {
		return err
	}
	defer o.Close()
	failed := 0
	for _, name := range envs {
		eo, err := o.Env(name)
		if err != nil {
			return usageError{err.Error()}
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		checks, err := o.CheckHost(cctx, name)
		cancel()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s on %s\n", name, eo.Host.Name())
		for _, c := range checks {
			fmt.Fprintf(stdout, "  %-4s %-22s %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
			if c.Remediation != "" {
				fmt.Fprintf(stdout, "       %-22s fix: %s\n", "", c.Remediation)
			}
			if c.Status == ops.CheckFail {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d host requirement(s) failed: fix them as shown above", failed)
	}
	return nil
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
