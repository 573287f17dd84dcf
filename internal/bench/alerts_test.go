package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// The alert storm: this many distinct groups, sent evenly over spread with
// at most stormInFlight webhooks in flight.
const (
	stormGroups   = 1000
	stormSpread   = 10 * time.Second
	stormInFlight = 32
	stormToken    = "bench-alertmanager-token"
)

// alertChannels are the channels of botConfig the alerts go to.
var alertChannels = []string{"CWARN", "CCRIT"}

// TestBenchAlertStorm sends 1 000 distinct firing alert groups through the
// Alertmanager webhook in 10 s to a bot whose Slack throttles each channel
// to about a message a second, waits until every group shows in a message,
// and prints how many messages Slack showed or edited in the alert
// channels. None may be lost and no rate limit may surface as an error.
func TestBenchAlertStorm(t *testing.T) {
	requireBench(t)
	fake := slackfake.New(slackfake.WithRealisticRateLimit(true))
	t.Cleanup(fake.Close)
	// No incidents: the figure counts the alert channels only.
	cfg, err := config.Parse(append(botConfig(t, testenv.FreePort(t)), "alerts: {auto_incident: false}\n"...))
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.Postgres(t)
	env := secrets(fake, dsn)
	env[config.EnvAlertmanagerToken] = stormToken
	cfg.LoadSecrets(func(name string) string { return env[name] })
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("config problems: %v", problems)
	}
	logs := &syncBuffer{}
	a := apptest.RunBot(t, fake, cfg, logs)

	events, stop := fake.Subscribe()
	defer stop()
	summaries := sendStorm(t, "http://"+a.Addr()+"/alertmanager")
	if t.Failed() {
		return
	}
	if missing := awaitShown(t, fake, events, summaries); len(missing) > 0 {
		t.Errorf("%d of %d alert groups never shown after a minute, e.g. %q", len(missing), len(summaries), missing[0])
	}
	awaitRecorded(t, dsn, len(summaries))
	if r := fake.Rejections(); len(r) > 0 {
		t.Errorf("Slack would have rejected: %+v", r)
	}
	if out := logs.String(); strings.Contains(out, "posting alerts failed") || strings.Contains(out, "ratelimited") {
		t.Errorf("a rate limit surfaced in the bot's log:\n%s", out)
	}

	posts, edits := 0, 0
	for _, ch := range alertChannels {
		var sizes []int
		for _, m := range fake.Messages(ch) {
			posts++
			edits += len(m.Edits)
			sizes = append(sizes, strings.Count(slackfake.Render(m), "storm group "))
		}
		t.Logf("%s: groups per message %v", ch, sizes)
	}
	t.Logf("%d messages posted and %d edits in the alert channels; %d chat.postMessage calls answered 429 and retried",
		posts, edits, len(fake.Calls("chat.postMessage"))-posts)
	if t.Failed() {
		return
	}
	printResult("alert_storm_messages", float64(posts+edits))
}

// sendStorm posts stormGroups distinct firing groups to url, evenly over
// stormSpread, fails t for any answer but 200, and returns the groups'
// summaries.
func sendStorm(t *testing.T, url string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: stormInFlight}}
	defer client.CloseIdleConnections()
	summaries := make([]string, stormGroups)
	errs := make([]error, stormGroups)
	slots := make(chan struct{}, stormInFlight)
	tick := time.NewTicker(stormSpread / stormGroups)
	defer tick.Stop()
	began := time.Now()
	var wg sync.WaitGroup
	for i := range stormGroups {
		if i > 0 {
			<-tick.C
		}
		var body []byte
		body, summaries[i] = stormPayload(i)
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = postAlert(ctx, client, url, body)
		})
	}
	wg.Wait()
	t.Logf("%d alert groups sent in %.1fs", stormGroups, time.Since(began).Seconds())
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Errorf("alert group %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d webhooks failed", failed, stormGroups)
	}
	return summaries
}

// stormPayload is Alertmanager's webhook for storm group i, one firing
// alert in staging, critical for every other group; it returns the body and
// the group's summary.
func stormPayload(i int) ([]byte, string) {
	name, summary := fmt.Sprintf("Storm%04d", i), fmt.Sprintf("storm group %04d is firing", i)
	severity := "warning"
	if i%2 == 0 {
		severity = "critical"
	}
	labels := map[string]string{"alertname": name, "environment": "staging", "severity": severity, "job": "togather-server"}
	annotations := map[string]string{"summary": summary}
	body, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": fmt.Sprintf(`{}:{alertname=%q}`, name), "truncatedAlerts": 0, "status": "firing",
		"receiver": "togather-chatops", "groupLabels": map[string]string{"alertname": name},
		"commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://alertmanager.local:9093",
		"alerts": []map[string]any{{
			"status": "firing", "labels": labels, "annotations": annotations,
			"startsAt": time.Now().UTC().Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
			"fingerprint": fmt.Sprintf("%016x", i),
		}},
	})
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return body, summary
}

// postAlert sends one webhook as Alertmanager does and wants 200.
func postAlert(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+stormToken)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("webhook answered %d: %s", resp.StatusCode, msg)
	}
	return nil
}

// awaitShown waits up to a minute, rechecking on every message event, until
// every summary shows in an alert channel; it returns those that do not.
func awaitShown(t *testing.T, fake *slackfake.Fake, events <-chan slackfake.Event, summaries []string) []string {
	t.Helper()
	timeout := time.After(time.Minute)
	for missing := notShown(fake, summaries); ; {
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-events:
			missing = notShown(fake, missing)
		case <-timeout:
			return notShown(fake, missing)
		}
	}
}

// awaitRecorded waits until the bot's store at dsn knows the message of
// all n alert groups, so the bot is not stopped in the middle of a flush.
func awaitRecorded(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var recorded int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM alert_groups WHERE ts <> ''").Scan(&recorded); err != nil {
			t.Fatalf("count the alert groups with a message: %v", err)
		}
		if recorded == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d alert groups have their message recorded: %v", recorded, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// notShown returns the summaries that no alert channel message shows in
// its current state.
func notShown(fake *slackfake.Fake, summaries []string) []string {
	var b strings.Builder
	for _, ch := range alertChannels {
		for _, m := range fake.Messages(ch) {
			b.WriteString(slackfake.Render(m))
		}
	}
	shown := b.String()
	return slices.DeleteFunc(slices.Clone(summaries), func(s string) bool { return strings.Contains(shown, s) })
}

// Detection runs: at most detectRuns, and none started after nextRunBy
// from the test's start, since each takes most of a minute (the rule's
// 30 s clear period, then up to a health interval plus the rule's
// duration).
const (
	detectRuns = 3
	nextRunBy  = time.Minute
)

// detectAlerts keeps the default probe intervals and shortens the rule's
// duration, so that a run is short.
const detectAlerts = "alerts: {for: {health-unhealthy: 10s}}\n"

// TestBenchDetectDelay turns the live slot of a real environment unhealthy
// and measures how long after the rule's duration the critical alert is
// in Slack; it repeats after each resolution while time allows and prints
// the worst delay. Each run starts just after a probe (the monitor's first
// when the bot starts, then the one that resolved the previous run), so it
// sees the worst phase: nearly a whole health interval passes before the
// monitor notices.
func TestBenchDetectDelay(t *testing.T) {
	requireBench(t)
	start := time.Now()
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) { *yaml += detectAlerts })
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	cfg := e.Cfg
	cfg.Secrets.SlackAppToken, cfg.Secrets.SlackBotToken = fake.AppToken(), fake.BotToken()
	cfg.Slack.APIURL = fake.APIURL()
	cfg.HTTP.Listen = "127.0.0.1:0"
	apptest.RunBot(t, fake, cfg, io.Discard)

	rule := cfg.Alerts.For["health-unhealthy"]
	control := strings.TrimSuffix(e.Env.Env.Slots[ops.Blue].HealthURL, "/health") + "/_control"
	resolved := slackfake.TextContains("— resolved")
	firing := func(m slackfake.Message) bool { return !resolved(m) }
	var worst time.Duration
	for run := 1; ; run++ {
		t0 := time.Now()
		setHealth(t, control, "unhealthy")
		alert := waitAlert(t, fake, firing)
		delay := storedAt(alert).Sub(t0) - rule
		t.Logf("run %d: critical alert %.1fs after the slot turned unhealthy, %.1fs beyond the rule's %s", run, storedAt(alert).Sub(t0).Seconds(), delay.Seconds(), rule)
		worst = max(worst, delay)
		if run == detectRuns || time.Since(start) > nextRunBy {
			break
		}
		setHealth(t, control, "healthy")
		waitAlert(t, fake, resolved)
	}
	printResult("detect_delay_s", worst.Seconds())
}

// setHealth sets the health status the testapp behind control reports.
func setHealth(t *testing.T, control, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, control, strings.NewReader(`{"status":"`+status+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("turn the slot %s: %v", status, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("turn the slot %s: the control endpoint answered %d", status, resp.StatusCode)
	}
}

// waitAlert waits for the health-unhealthy alert message in the critical
// channel to be in the state state selects.
func waitAlert(t *testing.T, fake *slackfake.Fake, state slackfake.Pred) slackfake.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	topLevel := func(m slackfake.Message) bool { return m.ThreadTS == "" }
	m, err := fake.WaitMessage(ctx, slackfake.InChannel("CCRIT"), topLevel, slackfake.TextContains("health-unhealthy"), state)
	if err != nil {
		t.Fatalf("waiting for the health-unhealthy alert: %v", err)
	}
	return m
}

// storedAt is when the fake stored the message's current state: its last
// edit, else its post.
func storedAt(m slackfake.Message) time.Time {
	if len(m.Edits) > 0 {
		return m.Edits[len(m.Edits)-1].At
	}
	return m.At
}

// syncBuffer is a bytes.Buffer safe for the bot's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
