package slackfake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// testCtx is the deadline for everything one test waits for.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newFake starts a fake that fails the test on unknown calls and is closed
// at the end.
func newFake(t *testing.T, opts ...slackfake.Option) *slackfake.Fake {
	t.Helper()
	f := slackfake.New(append([]slackfake.Option{slackfake.WithLogger(t.Logf)}, opts...)...)
	t.Cleanup(func() {
		if calls := f.UnknownCalls(); len(calls) > 0 {
			t.Errorf("unknown Web API calls: %+v", calls)
		}
		f.Close()
	})
	return f
}

// newAPI is a Web API client wired to the fake exactly as production does.
func newAPI(f *slackfake.Fake, opts ...slack.Option) *slack.Client {
	base := []slack.Option{slack.OptionAppLevelToken(f.AppToken()), slack.OptionAPIURL(f.APIURL())}
	return slack.New(f.BotToken(), append(base, opts...)...)
}

// botConfig tunes a test bot.
type botConfig struct {
	pingInterval time.Duration                // the client's ping watchdog; default 2s
	ack          func(socketmode.Request) any // ack payload; nil acks bare
}

// bot is a socketmode client run against the fake; it acks every request
// and forwards it on requests.
type bot struct {
	api      *slack.Client
	sm       *socketmode.Client
	requests chan socketmode.Event
}

func startBot(t *testing.T, f *slackfake.Fake, cfg botConfig) *bot {
	t.Helper()
	if cfg.pingInterval == 0 {
		cfg.pingInterval = 2 * time.Second
	}
	api := newAPI(f)
	b := &bot{api: api, sm: socketmode.New(api, socketmode.OptionPingInterval(cfg.pingInterval)), requests: make(chan socketmode.Event, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- b.sm.RunContext(ctx) }()
	go b.consume(ctx, cfg.ack)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("socketmode RunContext: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("socketmode RunContext did not return after cancel")
		}
	})
	return b
}

func (b *bot) consume(ctx context.Context, ack func(socketmode.Request) any) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-b.sm.Events:
			switch evt.Type {
			case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
				var payload []any
				if ack != nil {
					payload = append(payload, ack(*evt.Request))
				}
				_ = b.sm.Ack(*evt.Request, payload...)
			case socketmode.EventTypeHello:
			default:
				continue
			}
			select {
			case b.requests <- evt:
			case <-ctx.Done():
				return
			}
		}
	}
}

// next returns the next request (or hello) the bot received.
func (b *bot) next(ctx context.Context, t *testing.T) socketmode.Event {
	t.Helper()
	select {
	case evt := <-b.requests:
		return evt
	case <-ctx.Done():
		t.Fatalf("no request reached the bot: %v", ctx.Err())
		return socketmode.Event{}
	}
}

// nextOf skips events until one of type typ.
func (b *bot) nextOf(ctx context.Context, t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	for {
		if evt := b.next(ctx, t); evt.Type == typ {
			return evt
		}
	}
}

// slackErr returns the Slack error code of err, or "" if it has none.
func slackErr(err error) string {
	if e, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return e.Err
	}
	return ""
}

func mustPost(ctx context.Context, t *testing.T, api *slack.Client, channel string, opts ...slack.MsgOption) string {
	t.Helper()
	_, ts, err := api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		t.Fatalf("post to %s: %v", channel, err)
	}
	return ts
}

func approvalBlocks() slack.MsgOption {
	return slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Deploy *v1.2.3* to production?", false, false), nil, nil),
		slack.NewActionBlock("",
			slack.NewButtonBlockElement("approve", "dep-42", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)),
			slack.NewButtonBlockElement("reject", "dep-42", slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)),
		),
	)
}
