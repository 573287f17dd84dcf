package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/localenv"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// consoleChannel is where console commands are typed.
const consoleChannel = "CCONSOLE"

// consoleUsers are the people of the console workspace; the demo
// configuration gives them different roles.
var consoleUsers = []slackfake.User{
	{ID: "UALICE", Name: "alice", RealName: "Alice (admin)"},
	{ID: "UBOB", Name: "bob", RealName: "Bob (on-call group)"},
	{ID: "UCAROL", Name: "carol", RealName: "Carol (no role)"},
}

func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("console", "console [--demo | --config FILE] [--user alice]\n\n"+
		"Runs the real bot against an in-process fake Slack. --demo also starts a stand-in\n"+
		"environment (testapp containers behind Caddy, a store database in the local PostgreSQL).", stderr)
	demo := fs.Bool("demo", false, "start a stand-in environment and use its configuration")
	user := fs.String("user", "alice", "who you are at start (alice, bob, carol)")
	level := fs.String("log-level", "warn", "bot log level (logs go to stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	fake := slackfake.New(
		slackfake.WithUsers(consoleUsers...),
		slackfake.WithGroups(map[string][]string{"SONCALL": {"UBOB"}}),
		slackfake.WithChannels(slackfake.Channel{ID: consoleChannel, Name: "console"}, slackfake.Channel{ID: "CDEPLOYS", Name: "deploys"},
			slackfake.Channel{ID: "CALERTS", Name: "alerts"}, slackfake.Channel{ID: "CPAGES", Name: "pages"},
			slackfake.Channel{ID: "CINCIDENTS", Name: "incidents"}, slackfake.Channel{ID: "CANNOUNCE", Name: "announcements"}),
	)
	defer fake.Close()

	var cfg *config.Config
	switch {
	case *demo:
		fmt.Fprintln(stdout, "Starting the demo environment (PostgreSQL database, testapp containers, Caddy)…")
		d, err := localenv.StartDemo(ctx, ".demo")
		if err != nil {
			return fmt.Errorf("start the demo environment: %w", err)
		}
		defer d.Stop()
		if cfg, err = config.Parse(d.ConfigYAML()); err != nil {
			return fmt.Errorf("demo configuration: %w", err)
		}
		cfg.Secrets.DatabaseURL = d.StoreDSN
		fmt.Fprintf(stdout, "Environment %q: Caddy on %s, slots %s.\n", d.Env, d.ProxyURL, d.SlotsSummary())
	case *path != "":
		if cfg, err = config.Load(*path); err != nil {
			return err
		}
		cfg.LoadSecrets(os.Getenv)
	default:
		return usageError{"pass --demo, or --config FILE (with DATABASE_URL set) to try your own configuration"}
	}
	cfg.Slack.APIURL = fake.APIURL()
	cfg.Secrets.SlackAppToken, cfg.Secrets.SlackBotToken = fake.AppToken(), fake.BotToken()
	if problems := cfg.Validate(); len(problems) > 0 {
		return fmt.Errorf("configuration has problems, first: %s", problems[0])
	}
	cfg.HTTP.Listen = "127.0.0.1:0" // any free port: several consoles may run

	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = fake.WaitConnected(wctx)
	wcancel()
	if err != nil {
		return fmt.Errorf("the bot did not connect to the fake Slack: %w", err)
	}

	c := &console{fake: fake, out: stdout, user: lookupUser(*user), seen: make(chan struct{}, 64)}
	if c.user.ID == "" {
		return usageError{fmt.Sprintf("unknown user %q: alice, bob or carol", *user)}
	}
	events, unsubscribe := fake.Subscribe()
	defer unsubscribe()
	go c.print(events)
	c.banner()
	err = c.loop(ctx, os.Stdin)
	cancel()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	return err
}

type console struct {
	fake *slackfake.Fake
	out  io.Writer
	user slackfake.User
	seen chan struct{} // signalled on every printed event

	mu      sync.Mutex
	buttons []msgRef // messages that had buttons, oldest first
}

// msgRef locates a message.
type msgRef struct{ channel, ts string }

func lookupUser(name string) slackfake.User {
	for _, u := range consoleUsers {
		if strings.EqualFold(u.Name, name) || u.ID == name {
			return u
		}
	}
	return slackfake.User{}
}

func (c *console) banner() {
	fmt.Fprintf(c.out, `
togather-chatops console — you are %s. Type:
  /togather <command>     e.g. /togather help, /togather status staging
  as <alice|bob|carol>    switch user (alice: admin; bob: on-call group, approves; carol: no role)
  e.g. /togather deploy staging v2.0.0, then: as bob, click Approve — progress follows in #deploys
  click <button> [n]      press a button by its label or action id (n-th newest message with it)
  wait [seconds]          wait until the bot has been quiet for 3 s (at most 60 s, or the seconds given)
  quit                    leave (Ctrl-D works too)
`, c.user.RealName)
}

func (c *console) loop(ctx context.Context, in io.Reader) error {
	sc := bufio.NewScanner(in)
	for {
		fmt.Fprintf(c.out, "%s> ", c.user.Name)
		if !sc.Scan() {
			fmt.Fprintln(c.out)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		if err := c.do(ctx, line); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			fmt.Fprintln(c.out, "console:", err)
		}
	}
}

func (c *console) do(ctx context.Context, line string) error {
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case line == "":
		return nil
	case word == "quit" || word == "exit":
		return io.EOF
	case word == "as":
		u := lookupUser(rest)
		if u.ID == "" {
			return fmt.Errorf("unknown user %q: alice, bob or carol", rest)
		}
		c.user = u
		fmt.Fprintf(c.out, "you are now %s\n", u.RealName)
		return nil
	case strings.HasPrefix(word, "/"):
		_, err := c.fake.SlashCommand(ctx, slackfake.Slash{User: c.user.ID, Channel: consoleChannel, Command: word, Text: rest})
		if err != nil {
			return err
		}
		c.settle(ctx)
		return nil
	case word == "click":
		return c.click(ctx, rest)
	case word == "wait":
		secs := 60
		if rest != "" {
			if _, err := fmt.Sscanf(rest, "%d", &secs); err != nil {
				return fmt.Errorf("wait takes a number of seconds: %q", rest)
			}
		}
		c.quiet(ctx, time.Duration(secs)*time.Second, 3*time.Second)
		return nil
	}
	return fmt.Errorf("unknown input %q: start commands with /togather, or use as, click, quit", line)
}

// settle waits until the bot has answered and gone quiet, so scripted
// sessions print every answer before the next command.
func (c *console) settle(ctx context.Context) {
	first := time.NewTimer(30 * time.Second)
	defer first.Stop()
	select {
	case <-c.seen:
	case <-first.C:
		fmt.Fprintln(c.out, "(no answer from the bot within 30 s)")
		return
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-c.seen:
		case <-time.After(1500 * time.Millisecond):
			return
		case <-ctx.Done():
			return
		}
	}
}

// quiet waits until the bot has said nothing for gap, or at most max.
func (c *console) quiet(ctx context.Context, max, gap time.Duration) {
	limit := time.After(max)
	for {
		select {
		case <-c.seen:
		case <-time.After(gap):
			return
		case <-limit:
			return
		case <-ctx.Done():
			return
		}
	}
}

// click presses the button whose label or action id matches, on the n-th
// newest message (1 by default) that has one.
func (c *console) click(ctx context.Context, arg string) error {
	fields := strings.Fields(arg)
	if len(fields) == 0 {
		return errors.New("click what? e.g. click Approve")
	}
	n := 1
	if len(fields) > 1 {
		if _, err := fmt.Sscanf(fields[len(fields)-1], "%d", &n); err == nil {
			fields = fields[:len(fields)-1]
		}
	}
	want := strings.Join(fields, " ")
	c.mu.Lock()
	refs := append([]msgRef(nil), c.buttons...)
	c.mu.Unlock()
	for i := len(refs) - 1; i >= 0; i-- {
		m, ok := c.fake.Message(refs[i].channel, refs[i].ts)
		if !ok {
			continue
		}
		if actionID, blockID, value, ok := findButton(m.Blocks, want); ok {
			if n--; n > 0 {
				continue
			}
			_, err := c.fake.ClickButton(ctx, slackfake.Click{User: c.user.ID, Channel: m.Channel, MessageTS: m.TS, ActionID: actionID, BlockID: blockID, Value: value})
			if err == nil {
				c.settle(ctx)
			}
			return err
		}
	}
	return fmt.Errorf("no message has a %q button (buttons are shown as [Label](action_id))", want)
}

func findButton(blocks json.RawMessage, want string) (actionID, blockID, value string, ok bool) {
	var bs []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string          `json:"type"`
			ActionID string          `json:"action_id"`
			Value    string          `json:"value"`
			Text     json.RawMessage `json:"text"` // an object on buttons, a string on context elements
		} `json:"elements"`
	}
	if json.Unmarshal(blocks, &bs) != nil {
		return "", "", "", false
	}
	for _, b := range bs {
		for _, e := range b.Elements {
			var label struct{ Text string }
			_ = json.Unmarshal(e.Text, &label)
			if e.Type == "button" && (strings.EqualFold(label.Text, want) || e.ActionID == want) {
				return e.ActionID, b.BlockID, e.Value, true
			}
		}
	}
	return "", "", "", false
}

// print writes everything the bot does, as Slack would show it.
func (c *console) print(events <-chan slackfake.Event) {
	for ev := range events {
		var head string
		switch ev.Kind {
		case slackfake.EventPost, slackfake.EventResponse:
			head = "#" + channelName(ev.Message.Channel)
			if ev.Message.ThreadTS != "" && ev.Message.ThreadTS != ev.Message.TS {
				head += " (thread)"
			}
			if ev.Message.Ephemeral {
				head += " (only visible to you)"
			}
		case slackfake.EventEphemeral:
			head = "#" + channelName(ev.Message.Channel) + " (only visible to you)"
		case slackfake.EventEdit:
			head = "#" + channelName(ev.Message.Channel) + " (message updated)"
		case slackfake.EventUpload:
			head = "file uploaded: " + ev.Upload.Filename
		default:
			head = string(ev.Kind)
		}
		fmt.Fprintf(c.out, "\n── %s ──\n%s\n", head, slackfake.Render(ev.Message))
		if strings.Contains(string(ev.Message.Blocks), `"button"`) {
			c.mu.Lock()
			c.buttons = append(c.buttons, msgRef{ev.Message.Channel, ev.Message.TS})
			c.mu.Unlock()
		}
		select {
		case c.seen <- struct{}{}:
		default:
		}
	}
}

func channelName(id string) string {
	if name, ok := map[string]string{consoleChannel: "console", "CDEPLOYS": "deploys", "CALERTS": "alerts", "CPAGES": "pages", "CINCIDENTS": "incidents"}[id]; ok {
		return name
	}
	return id
}
