package bench

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

// TestBenchAck measures how long Slack waits for the ack of a slash command
// when 50 are in flight at once: from just before the fake sends the
// envelope to the moment it reads the ack, over several bursts.
func TestBenchAck(t *testing.T) {
	requireBench(t)
	const bursts, inFlight = 5, 50
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	startBot(t, fake)
	answers, stop := fake.Subscribe()
	defer stop()

	var latencies []time.Duration
	for range bursts {
		latencies = append(latencies, burst(t, fake, answers, inFlight)...)
	}
	if r := fake.Rejections(); len(r) > 0 {
		t.Errorf("Slack would have rejected: %+v", r)
	}
	if u := fake.UnknownCalls(); len(u) > 0 {
		t.Errorf("unknown API calls: %+v", u)
	}
	if t.Failed() {
		return
	}
	printResult("ack_p99_ms", float64(percentile(latencies, 0.99))/float64(time.Millisecond))
}

// burst sends n help commands at once, waits for every ack and every answer,
// and returns each command's time to ack.
func burst(t *testing.T, fake *slackfake.Fake, answers <-chan slackfake.Event, n int) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	envs := make([]string, n)
	sent := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			sent[i] = time.Now()
			envs[i], errs[i] = fake.SlashCommand(ctx, slackfake.Slash{User: benchUser, Channel: "CBENCH", Command: "/togather", Text: "help"})
		})
	}
	close(start)
	wg.Wait()
	latencies := make([]time.Duration, 0, n)
	for i, env := range envs {
		if errs[i] != nil {
			t.Fatalf("send command %d: %v", i, errs[i])
		}
		ack, err := fake.WaitAck(ctx, env)
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		latencies = append(latencies, ack.At.Sub(sent[i]))
	}
	for answered := 0; answered < n; {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d commands answered: %v", answered, n, context.Cause(ctx))
		case ev := <-answers:
			if ev.Kind != slackfake.EventResponse {
				continue
			}
			if text := slackfake.Render(ev.Message); ev.Message.User != benchUser || !strings.Contains(text, "/togather status <env>") {
				t.Fatalf("unexpected answer to help for %s:\n%s", ev.Message.User, text)
			}
			answered++
		}
	}
	return latencies
}

// startBot runs the whole bot in this process against fake, with a fresh
// store, until the test ends.
func startBot(t *testing.T, fake *slackfake.Fake) {
	t.Helper()
	dsn := testenv.Postgres(t)
	cfg, err := config.Parse(botConfig(t, testenv.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	env := secrets(fake, dsn)
	cfg.LoadSecrets(func(name string) string { return env[name] })
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("config problems: %v", problems)
	}
	apptest.RunBot(t, fake, cfg)
}

// percentile returns the nearest-rank q-quantile (0 < q ≤ 1) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}
