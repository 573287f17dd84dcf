package slack_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/togather-foundation/togather-chatops/bot"
	bslack "github.com/togather-foundation/togather-chatops/bot/slack"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// handlerFunc answers commands with a function; actions are not used here.
type handlerFunc func(ctx context.Context, req bot.Request, rw bot.Responder) error

func (f handlerFunc) HandleCommand(ctx context.Context, req bot.Request, rw bot.Responder) error {
	return f(ctx, req, rw)
}

func (f handlerFunc) HandleAction(ctx context.Context, req bot.Request, rw bot.Responder) error {
	return f(ctx, req, rw)
}

// run connects an adapter to a fresh fake and returns both; the adapter
// stops when the test ends, and Run's error is checked.
func run(t *testing.T, h bslack.Handler) (*slackfake.Fake, *bslack.Adapter, context.CancelFunc) {
	t.Helper()
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	a := bslack.New(bslack.Options{
		AppToken: fake.AppToken(), BotToken: fake.BotToken(), APIURL: fake.APIURL(),
		PingInterval: time.Second, Workers: 2, Handler: h, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := fake.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return fake, a, cancel
}

func slash(t *testing.T, fake *slackfake.Fake, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := fake.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
}

func waitText(t *testing.T, fake *slackfake.Fake, text string) slackfake.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := fake.WaitMessage(ctx, slackfake.TextContains(text))
	if err != nil {
		t.Fatalf("no message containing %q: %v", text, err)
	}
	return m
}

func TestPostWaitsOutRateLimits(t *testing.T) {
	fake, a, _ := run(t, handlerFunc(func(context.Context, bot.Request, bot.Responder) error { return nil }))
	fake.RateLimit("chat.postMessage", 2, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ts, err := a.Post(ctx, "C1", "", bot.Textf("deploy finished"))
	if err != nil {
		t.Fatalf("Post through two 429s: %v", err)
	}
	m, ok := fake.Message("C1", ts)
	if !ok || m.Text != "deploy finished" {
		t.Fatalf("message %q not stored: %+v", ts, m)
	}
	if n := len(fake.Calls("chat.postMessage")); n != 3 {
		t.Errorf("chat.postMessage called %d times, want 3 (two 429s, then success)", n)
	}
}

func TestLongMessagesAreCutNotRejected(t *testing.T) {
	fake, a, _ := run(t, handlerFunc(func(context.Context, bot.Request, bot.Responder) error { return nil }))
	var blocks []bot.Block
	blocks = append(blocks, bot.Section{Text: strings.Repeat("x", 5000)}, bot.Preformatted{Text: strings.Repeat("log line\n", 800)})
	for i := range 60 {
		blocks = append(blocks, bot.Context{Text: "row " + string(rune('a'+i%26))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, err := a.Post(ctx, "C1", "", bot.Message{Text: strings.Repeat("y", 50000), Blocks: blocks})
	if err != nil {
		t.Fatalf("Post: %v (rejections %+v)", err, fake.Rejections())
	}
	m, _ := fake.Message("C1", ts)
	rendered := slackfake.Render(m)
	for _, want := range []string{"(cut: ", "more blocks not shown"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("the message does not say %q", want)
		}
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("Slack would reject: %+v", r)
	}
}

func TestPanicIsRecoveredAndAnswered(t *testing.T) {
	fake, _, _ := run(t, handlerFunc(func(ctx context.Context, req bot.Request, rw bot.Responder) error {
		if req.Text == "boom" {
			panic("handler bug")
		}
		return rw.Reply(ctx, bot.Textf("fine: "+req.Text))
	}))
	slash(t, fake, "boom")
	waitText(t, fake, "Something went wrong inside the bot")
	slash(t, fake, "again")
	waitText(t, fake, "fine: again")
}

func TestShutdownDrainsInFlightWork(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	fake, _, stop := run(t, handlerFunc(func(ctx context.Context, req bot.Request, rw bot.Responder) error {
		<-release
		finished.Store(true)
		return rw.Reply(ctx, bot.Textf("finished after shutdown began"))
	}))
	slash(t, fake, "long")
	stop() // Run is now draining: the handler must still finish and reply
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	waitText(t, fake, "finished after shutdown began")
	if !finished.Load() {
		t.Error("the handler did not finish")
	}
}

func TestSlackEscapesAreUndone(t *testing.T) {
	got := make(chan string, 1)
	fake, _, _ := run(t, handlerFunc(func(ctx context.Context, req bot.Request, rw bot.Responder) error {
		got <- req.Text
		return nil
	}))
	slash(t, fake, "lock staging db &amp; cache &lt;migration&gt;")
	if text := <-got; text != "lock staging db & cache <migration>" {
		t.Errorf("text = %q", text)
	}
}

// TestPreformattedIsShownWhole: a journal longer than a section is shown
// over several code blocks split between lines, its last line included;
// a ``` in it does not end its block, and a mention in it is text.
func TestPreformattedIsShownWhole(t *testing.T) {
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("%03d %s", i, strings.Repeat("j", 60)))
	}
	lines = append(lines, "output with ``` inside", "reason: <!channel> & co", "the last line says what failed")
	_, blocks := bslack.Render(bot.Message{Blocks: []bot.Block{bot.Preformatted{Text: strings.Join(lines, "\n")}}})
	var shown []string
	for _, b := range blocks {
		text := b.(*slack.SectionBlock).Text.Text
		if len([]rune(text)) > 3000 || !strings.HasPrefix(text, "```") || !strings.HasSuffix(text, "```") || strings.Count(text, "```") != 2 {
			t.Fatalf("not one code block within a section's 3000 characters: %q", text)
		}
		shown = append(shown, strings.Trim(text, "`"))
	}
	want := strings.NewReplacer("```", "'''", "<!channel> & co", "&lt;!channel&gt; &amp; co").Replace(strings.Join(lines, "\n"))
	if len(blocks) < 3 || strings.Join(shown, "\n") != want {
		t.Errorf("%d blocks show:\n%s\nwant the whole text", len(blocks), strings.Join(shown, "\n"))
	}
}
