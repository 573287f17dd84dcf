package apptest

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// RunBot runs the whole bot for cfg against fake until the test ends,
// logging warnings and errors to the test and to logs, and returns it once
// it is connected. Run's error fails the test.
func RunBot(t testing.TB, fake *slackfake.Fake, cfg *config.Config, logs ...io.Writer) *app.App {
	t.Helper()
	a, _ := RunBotWith(t, fake, cfg, app.Options{}, logs...)
	return a
}

// RunBotWith is RunBot with options (o.Logger is set here), and returns a
// stop function too: it ends the bot as a restart would, and waits for it.
func RunBotWith(t testing.TB, fake *slackfake.Fake, cfg *config.Config, o app.Options, logs ...io.Writer) (*app.App, func()) {
	t.Helper()
	o.Logger = zerolog.New(zerolog.MultiLevelWriter(append([]io.Writer{zerolog.NewTestWriter(t)}, logs...)...)).Level(zerolog.WarnLevel)
	before := fake.Opens()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitCtx, stopWait := context.WithTimeout(ctx, 20*time.Second)
	defer stopWait()
	if err := fake.WaitOpens(waitCtx, before+1); err != nil {
		t.Fatal(err)
	}
	return a, stop
}
