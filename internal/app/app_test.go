package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

const channel = "COPS"

// harness is a whole bot wired as in production: a real Socket Mode
// connection to the fake Slack, a real store, real testapp containers behind
// a real Caddy.
type harness struct {
	fake  *slackfake.Fake
	app   *app.App
	dsn   string
	ports map[ops.Slot]int
}

// start brings up blue (healthy, live) and green (degraded) testapp
// containers behind Caddy, a store, the fake Slack and the bot.
func start(t *testing.T) *harness {
	t.Helper()
	cli := testenv.Docker(t)
	dsn := testenv.Postgres(t)
	h := &harness{dsn: dsn, ports: map[ops.Slot]int{ops.Blue: testenv.FreePort(t), ops.Green: testenv.FreePort(t)}}
	run := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	images := map[ops.Slot]string{
		ops.Blue:  testenv.TestappImage(t, cli, "v1.0.0", "healthy"),
		ops.Green: testenv.TestappImage(t, cli, "v1.1.0", "degraded"),
	}
	for _, s := range ops.Slots {
		testenv.RunTestapp(t, cli, run+"-"+string(s), images[s], h.ports[s], "SLOT="+string(s))
	}
	for _, s := range ops.Slots {
		testenv.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", h.ports[s]), 30*time.Second)
	}
	caddy, _ := testenv.Caddy(t, ops.Blue, h.ports)

	h.fake = slackfake.New(slackfake.WithGroups(map[string][]string{"SONCALL": {"UBOB"}}))
	t.Cleanup(h.fake.Close)
	cfg, err := config.Parse(fmt.Appendf(nil, `
channels: {deploys: CDEPLOYS, alerts_warning: CWARN, alerts_critical: CCRIT, incidents: CINC, announcements: CANN}
slack: {ping_interval: 1s}
http: {listen: "127.0.0.1:%d"}
environments:
  staging:
    docker_host: unix:///var/run/docker.sock
    migrations: {}
    caddy: {admin_url: %q, caddyfile: %q}
    slots:
      blue:  {container: %s-blue, host_port: %d}
      green: {container: %s-green, host_port: %d}
  production: {}
roles:
  - {name: admins, users: [UALICE], commands: ["*"], environments: ["*"]}
  - {name: oncall, groups: [SONCALL], commands: [status], environments: [staging]}
`, testenv.FreePort(t), caddy.AdminURL, caddy.CaddyfilePath, run, h.ports[ops.Blue], run, h.ports[ops.Green]))
	if err != nil {
		t.Fatal(err)
	}
	cfg.LoadSecrets(func(name string) string {
		return map[string]string{"SLACK_APP_TOKEN": h.fake.AppToken(), "SLACK_BOT_TOKEN": h.fake.BotToken(), "DATABASE_URL": dsn, "SLACK_API_URL": h.fake.APIURL()}[name]
	})
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("config problems: %v", problems)
	}
	h.app = apptest.RunBot(t, h.fake, cfg)
	return h
}

func wait(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		t.Fatal(err)
	}
}

// ask sends a slash command and returns the one reply the user sees.
func (h *harness) ask(t *testing.T, user, text string) slackfake.Message {
	t.Helper()
	_, m := h.send(t, user, text)
	return m
}

// send sends a slash command and returns its envelope id and the new reply
// the user sees.
func (h *harness) send(t *testing.T, user, text string) (string, slackfake.Message) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range h.fake.Ephemerals(channel, user) {
		seen[m.TS] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env, err := h.fake.SlashCommand(ctx, slackfake.Slash{User: user, Channel: channel, Command: "/togather", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := h.fake.WaitAck(ctx, env)
	if err != nil {
		t.Fatalf("no ack for %q: %v", text, err)
	}
	if len(ack.Payload) > 0 && string(ack.Payload) != "null" {
		t.Errorf("ack carried a payload %s; the bot must ack empty and answer through the API", ack.Payload)
	}
	m, err := h.fake.WaitMessage(ctx, slackfake.ForUser(user), func(m slackfake.Message) bool { return !seen[m.TS] })
	if err != nil {
		t.Fatalf("no reply to %q: %v", text, err)
	}
	return env, m
}

func contains(t *testing.T, m slackfake.Message, want ...string) {
	t.Helper()
	text := slackfake.Render(m)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("reply does not contain %q:\n%s", w, text)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: needs PostgreSQL, Docker and Caddy")
	}
	h := start(t)

	t.Run("status shows live slot, containers and health", func(t *testing.T) {
		m := h.ask(t, "UALICE", "status staging")
		contains(t, m, "staging · live slot: blue", "*blue* (live)", "running", "togather-server:v1.0.0",
			"health: *healthy* (HTTP 200)", "version `v1.0.0`",
			"*green*", "togather-server:v1.1.0", "health: *degraded* (HTTP 200)", "job_queue: warn")
		if !m.Ephemeral {
			t.Errorf("status reply should be visible to the requester only")
		}
	})
	t.Run("help lists what the caller may run", func(t *testing.T) {
		contains(t, h.ask(t, "UALICE", "help"), "status <env>", "deploy <env> <version>", "maintenance schedule <env> <start> <duration>")
		m := h.ask(t, "UBOB", "help")
		contains(t, m, "status <env>")
		if strings.Contains(slackfake.Render(m), "deploy") {
			t.Errorf("bob may only run status, but help lists deploy:\n%s", slackfake.Render(m))
		}
	})
	t.Run("unknown command and environment get suggestions", func(t *testing.T) {
		contains(t, h.ask(t, "UALICE", "stauts staging"), `unknown command "stauts". Did you mean "status"?`, "Usage: status <env>")
		contains(t, h.ask(t, "UALICE", "status stagin"), `unknown environment "stagin". Did you mean "staging"?`)
	})
	t.Run("unauthorised users are refused and audited", func(t *testing.T) {
		contains(t, h.ask(t, "UCAROL", "status staging"), "not allowed to run status in staging")
		contains(t, h.ask(t, "UBOB", "status production"), "not allowed to run status in production")
		store, err := postgres.Open(context.Background(), h.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		entries, err := store.AuditLog(context.Background(), postgres.AuditQuery{Actor: "UCAROL"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Decision != "denied" || entries[0].Action != "status" || entries[0].Environment != "staging" {
			t.Errorf("carol's audit entries = %+v, want one denied status in staging", entries)
		}
	})
	t.Run("a redelivered envelope gets one reply", func(t *testing.T) {
		env, _ := h.send(t, "UALICE", "status staging")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		before := len(h.fake.Ephemerals(channel, "UALICE"))
		if err := h.fake.Redeliver(ctx, env); err != nil {
			t.Fatal(err)
		}
		// The redelivery is acked too; then a later command is answered,
		// so the duplicate had every chance to produce a reply first.
		waitAcks(t, h.fake, env, 2)
		contains(t, h.ask(t, "UALICE", "help"), "status <env>")
		if got := len(h.fake.Ephemerals(channel, "UALICE")) - before; got != 1 {
			t.Errorf("%d replies after the redelivery and one help, want 1 (the redelivery must not answer)", got)
		}
	})
	t.Run("reconnects after a disconnect frame, a dropped socket and silence", func(t *testing.T) {
		for _, fault := range []struct {
			name string
			do   func()
		}{
			{"disconnect frame", func() { h.fake.Disconnect("refresh_requested") }},
			{"dropped socket", h.fake.DropConnection},
			{"no pings", h.fake.StopPings},
		} {
			opens := h.fake.Opens()
			fault.do()
			wait(t, func(ctx context.Context) error { return h.fake.WaitOpens(ctx, opens+1) })
			h.fake.ResumePings()
			contains(t, h.ask(t, "UALICE", "status staging"), "live slot: blue")
		}
	})
	t.Run("secret rotations are recorded and reminded of", func(t *testing.T) {
		// No rotation is recorded yet: the leader reminds once of each.
		wait(t, func(ctx context.Context) error {
			_, err := h.fake.WaitMessage(ctx, slackfake.InChannel("CDEPLOYS"),
				slackfake.TextContains("JWT_SECRET on staging was never recorded as rotated (policy 90 days)"))
			return err
		})
		_, err := h.fake.SlashCommand(context.Background(), slackfake.Slash{User: "UALICE", Channel: channel, Command: "/togather", Text: "secrets rotated staging JWT_SECRET"})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, func(ctx context.Context) error {
			_, err := h.fake.WaitMessage(ctx, slackfake.TextContains("JWT_SECRET on staging marked rotated by <@UALICE>"), slackfake.TextContains("; next reminder "))
			return err
		})
	})
	t.Run("metrics and healthz", func(t *testing.T) {
		resp, err := http.Get("http://" + h.app.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(t, resp))
		for _, w := range []string{"togather_chatops_requests_total", "togather_chatops_ack_seconds_bucket", "togather_chatops_reconnects_total"} {
			if !strings.Contains(b.String(), w) {
				t.Errorf("/metrics lacks %s", w)
			}
		}
		hz, err := http.Get("http://" + h.app.Addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		hz.Body.Close()
		if hz.StatusCode != http.StatusOK {
			t.Errorf("/healthz = %d", hz.StatusCode)
		}
	})
	if r := h.fake.Rejections(); len(r) > 0 {
		t.Errorf("Slack would have rejected: %+v", r)
	}
	if u := h.fake.UnknownCalls(); len(u) > 0 {
		t.Errorf("unknown API calls: %+v", u)
	}
}

func waitAcks(t *testing.T, f *slackfake.Fake, env string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		count := 0
		for _, a := range f.Acks() {
			if a.EnvelopeID == env {
				count++
			}
		}
		if count >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("envelope %s not acked %d times", env, n)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
