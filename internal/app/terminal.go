package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	bslack "github.com/togather-foundation/togather-chatops/bot/slack"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// Terminal runs chat commands from a shell on the bot's host, as the
// terminal twins of commands that change something: the same grammar, the
// same code and the same audit log, with the shell's user as a trusted
// actor. What the command posts (announcements, thread updates, approval
// requests) goes to Slack through the Web API with the bot token; nothing
// listens for Slack events.
type Terminal struct {
	store *postgres.Store
	ops   *Ops
	bot   *bot.Bot
	actor string
}

// NewTerminal wires a Terminal for actor (e.g. "cli:alice"); it migrates and
// opens the bot's store.
func NewTerminal(ctx context.Context, cfg *config.Config, actor string, log zerolog.Logger) (*Terminal, error) {
	if err := postgres.MigrateUp(ctx, cfg.Secrets.DatabaseURL); err != nil {
		return nil, fmt.Errorf("migrate the bot's store: %w", err)
	}
	store, err := postgres.Open(ctx, cfg.Secrets.DatabaseURL)
	if err != nil {
		return nil, err
	}
	o, err := NewOps(cfg, OpsOptions{Store: store, Now: time.Now})
	if err != nil {
		store.Close()
		return nil, err
	}
	poster := bslack.New(bslack.Options{BotToken: cfg.Secrets.SlackBotToken, APIURL: cfg.Slack.APIURL, Logger: log})
	trusted := append(roles(cfg), bot.Role{Name: "terminal", Users: []string{actor}, Commands: []string{"*"}, Environments: []string{"*"}})
	b := newBot(cfg, store, o, trusted, poster, Options{Logger: log, Now: time.Now})
	b.SetPoster(poster)
	return &Terminal{store: store, ops: o, bot: b, actor: actor}, nil
}

// Run runs one command (the text after /togather) and writes its replies
// to out. It fails when the handler does or a reply says the command was
// refused or failed (:x:, :no_entry:), so the exit code tells.
func (t *Terminal) Run(ctx context.Context, text string, out io.Writer) error {
	var refused string
	replied := bot.ResponderFunc(func(_ context.Context, m bot.Message) error {
		plain := m.PlainText()
		if strings.HasPrefix(plain, ":x:") || strings.HasPrefix(plain, ":no_entry:") {
			refused = plain
		}
		_, err := fmt.Fprintln(out, plain)
		return err
	})
	err := t.bot.HandleCommand(ctx, bot.Request{ID: fmt.Sprintf("cli-%d", time.Now().UnixNano()), User: t.actor, Text: text, At: time.Now()}, replied)
	if err == nil && refused != "" {
		err = errors.New("the command did not run (see above)")
	}
	return err
}

// Close releases the store and the environments' clients.
func (t *Terminal) Close() {
	t.ops.Close()
	t.store.Close()
}
