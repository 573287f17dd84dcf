package app_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/pagerdutyfake"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
)

// TestCriticalAlertPagesPagerDuty drives paging on real parts: the live
// testapp turns unhealthy → the monitors fire a critical alert → PagerDuty
// (the contract fake, over HTTP) gets one trigger; the alert is
// acknowledged in Slack → one acknowledge; the slot recovers → one resolve,
// all of the same dedup key.
func TestCriticalAlertPagesPagerDuty(t *testing.T) {
	pd := pagerdutyfake.New()
	t.Cleanup(pd.Close)
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", chatRoles+`alerts:
  health_interval: 200ms
  unhealthy_interval: 200ms
  for: {health-unhealthy: 1s}
paging:
  targets:
    oncall: {type: pagerduty, routing_key_env: PD_KEY, severities: [critical], events_url: "`+pd.URL()+`"}
`, 1)
	})
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	cfg := e.Cfg
	cfg.Secrets.SlackAppToken, cfg.Secrets.SlackBotToken = fake.AppToken(), fake.BotToken()
	cfg.Secrets.PagingKeys = map[string]string{"oncall": "0123456789abcdef0123456789abcdef"}
	cfg.Slack.APIURL = fake.APIURL()
	cfg.HTTP.Listen = "127.0.0.1:0"
	c := &chatEnv{DeployEnv: e, fake: fake, app: apptest.RunBot(t, fake, cfg)}

	control := strings.TrimSuffix(c.Env.Env.Slots[ops.Blue].HealthURL, "/health") + "/_control"
	setHealth := func(body string) {
		t.Helper()
		resp, err := http.Post(control, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitPages := func(n int) []pagerdutyfake.Event {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for len(pd.Accepted()) < n && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		acc := pd.Accepted()
		if len(acc) != n {
			t.Fatalf("PagerDuty got %d events, want %d: %+v", len(acc), n, acc)
		}
		return acc
	}

	setHealth(`{"status":"unhealthy","failing_checks":{"database":"connection refused"}}`)
	alert := c.waitMessage(t, slackfake.InChannel("CCRIT"), slackfake.TextContains("health-unhealthy"))
	trig := waitPages(1)[0]
	if trig.Action != "trigger" || !strings.HasSuffix(trig.DedupKey, "/health-unhealthy") ||
		trig.Payload.Severity != "critical" || trig.RoutingKey != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("trigger = %+v", trig)
	}

	c.click(t, "UALICE", alert, "alert.ack")
	if ack := waitPages(2)[1]; ack.Action != "acknowledge" || ack.DedupKey != trig.DedupKey ||
		len(ack.Links) != 1 || !strings.Contains(ack.Links[0].Href, "/archives/CCRIT/p") {
		t.Fatalf("acknowledge = %+v", ack)
	}

	setHealth(`{"status":"healthy","failing_checks":{}}`)
	if res := waitPages(3)[2]; res.Action != "resolve" || res.DedupKey != trig.DedupKey {
		t.Fatalf("resolve = %+v", res)
	}
}
