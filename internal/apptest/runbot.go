package apptest

import (
	"context"
	"io"
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
	log := zerolog.New(zerolog.MultiLevelWriter(append([]io.Writer{zerolog.NewTestWriter(t)}, logs...)...)).Level(zerolog.WarnLevel)
	before := fake.Opens()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app.Run: %v", err)
		}
	})
	waitCtx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	if err := fake.WaitOpens(waitCtx, before+1); err != nil {
		t.Fatal(err)
	}
	return a
}
