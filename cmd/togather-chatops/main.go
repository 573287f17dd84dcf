// Command togather-chatops is the Togather operations bot: `serve` connects
// it to Slack over Socket Mode, `console` runs it against an in-process fake
// Slack for trying it locally, and the other subcommands are the terminal
// twins of the chat commands and the bot's own maintenance.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/config"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// usageError is a mistake on the command line: it exits 2 with a hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// liveError is a change that is live but left work undone (an after-switch
// command failed): it exits 3 with what to do.
type liveError struct{ msg string }

func (e liveError) Error() string { return e.msg }

// subcommand is one verb of the CLI.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":       {"connect to Slack over Socket Mode and serve commands", runServe},
		"console":     {"try the bot locally against an in-process fake Slack", runConsole},
		"migrate":     {"apply or roll back the bot's own store schema (up|down|version)", runMigrate},
		"config":      {"validate the configuration (config check [--connect])", runConfig},
		"host":        {"check every requirement of an environment's host (host check <env>)", runHost},
		"status":      {"show an environment's live slot, containers and health", runStatus},
		"preflight":   {"run the pre-flight checks of a version", runPreflight},
		"deploy":      {"blue/green deploy a version (pre-flight first; --dry-run only checks)", runDeploy},
		"rollback":    {"switch traffic back to the previous slot", runRollback},
		"snapshot":    {"create, list, restore, prune or verify database snapshots", runSnapshot},
		"reconcile":   {"recover interrupted operations and report drift", runReconcile},
		"history":     {"list an environment's recent operations", runHistory},
		"bake":        {"watch a finished deploy and stop the previous slot after the bake window", runBake},
		"maintenance": {"schedule, list, cancel, start or end maintenance windows (as in Slack)", viaBot(bot.NameMaintenance)},
		"db":          {"inspect or maintain an app database: connections, slow, size, analyze, vacuum… (as in Slack)", viaBot(bot.NameDB)},
		"version": {"print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "togather-chatops", version)
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	config.KnownPermissions = permissions()
	cmds := subcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sc, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "togather-chatops: unknown command %q\n\n", args[0])
		printUsage(stderr, cmds)
		return 2
	}
	err := sc.run(ctx, args[1:], stdout, stderr)
	var ue usageError
	var le liveError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "togather-chatops %s: %s\n", args[0], ue.msg)
		return 2
	case errors.As(err, &le):
		fmt.Fprintf(stderr, "togather-chatops %s: %s\n", args[0], le.msg)
		return 3
	default:
		fmt.Fprintf(stderr, "togather-chatops %s: %v\n", args[0], err)
		return 1
	}
}

func printUsage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "Usage: togather-chatops <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun `togather-chatops <command> --help` for a command's flags.")
}

// permissions lists every permission the grammar knows, for config checks.
func permissions() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range bot.Commands() {
		if !seen[c.Permission] {
			seen[c.Permission] = true
			out = append(out, c.Permission)
		}
	}
	return append(out, bot.ButtonPermissions...)
}

// flagSet returns a FlagSet with the shared --config flag that prints its
// usage to stderr.
func flagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("TOGATHER_CHATOPS_CONFIG"), "configuration file (env TOGATHER_CHATOPS_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: togather-chatops %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs, path
}

// secretVars are the configuration's secrets; a command enforces only those
// it uses, so `status` works the day Slack or the store is down.
var secretVars = []string{config.EnvSlackAppToken, config.EnvSlackBotToken, config.EnvDatabaseURL}

// loadConfig reads the file and the secrets from the environment and fails
// with every problem listed, ignoring secrets the command does not need.
func loadConfig(path string, needs ...string) (*config.Config, error) {
	if path == "" {
		return nil, usageError{"no configuration: pass --config FILE or set TOGATHER_CHATOPS_CONFIG (deploy/config.example.yaml documents every field)"}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	cfg.LoadSecrets(os.Getenv)
	var problems []config.Problem
	for _, p := range cfg.Validate() {
		if slices.Contains(secretVars, p.Path) && !slices.Contains(needs, p.Path) {
			continue
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s has %d problem(s):", path, len(problems))
		for _, p := range problems {
			b.WriteString("\n  " + p.String())
		}
		b.WriteString("\nRun `togather-chatops config check` after fixing them.")
		return nil, errors.New(b.String())
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
