package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
)

// viaBot is the terminal twin of the chat command word: the arguments are
// read by the chat grammar and run by the bot's own handler, as the trusted
// actor cli:<unix user>; what it posts goes to Slack.
func viaBot(word bot.Name) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		path, rest := configFlag(args)
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" {
			fmt.Fprintf(stderr, "Usage: togather-chatops %s [--config FILE]\n\nAs in Slack, without /togather.\n",
				strings.ReplaceAll(bot.Usage(word), "\n", " [--config FILE]\n       togather-chatops "))
			if len(rest) == 0 {
				return usageError{"want a subcommand"}
			}
			return nil
		}
		cfg, err := loadConfig(path, config.EnvDatabaseURL, config.EnvSlackBotToken)
		if err != nil {
			return err
		}
		text := word.String() + " " + quoteArgs(rest)
		if res := bot.Parse(text, cfg.EnvironmentNames()); res.Command == nil {
			return usageError{res.Reply} // the grammar's own message: what is wrong and the usage
		}
		log, err := newLogger(stderr, "warn")
		if err != nil {
			return err
		}
		name := "unknown"
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		t, err := app.NewTerminal(ctx, cfg, "cli:"+name, log)
		if err != nil {
			return err
		}
		defer t.Close()
		return t.Run(ctx, text, stdout)
	}
}

// configFlag takes --config FILE (or --config=FILE) out of args; the rest
// belongs to the chat grammar. Without it, TOGATHER_CHATOPS_CONFIG.
func configFlag(args []string) (string, []string) {
	path := os.Getenv("TOGATHER_CHATOPS_CONFIG")
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--config" || a == "-config") && i+1 < len(args):
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			path = strings.TrimPrefix(a, "--config=")
		default:
			rest = append(rest, a)
		}
	}
	return path, rest
}

// quoteArgs joins the shell's words back into a command line the chat
// grammar splits the same way: a word with spaces or quotes is quoted.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a != "" && !strings.ContainsAny(a, " \t\n\"'"):
			out[i] = a
		case !strings.Contains(a, `"`):
			out[i] = `"` + a + `"`
		default:
			out[i] = "'" + a + "'"
		}
	}
	return strings.Join(out, " ")
}
