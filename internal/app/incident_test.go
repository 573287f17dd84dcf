package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
)

// TestUnhealthySlotToIncidentReport drives the whole alert and incident
// flow on real parts: the live testapp turns unhealthy through its control
// endpoint → a critical alert → an incident is declared → its update
// reminder comes due → an update through the form → resolve → the report
// in the incident's thread.
func TestUnhealthySlotToIncidentReport(t *testing.T) {
	c := startChatWith(t, false, `alerts:
  health_interval: 200ms
  unhealthy_interval: 200ms
  for: {health-unhealthy: 1s}
  sev2_every: 3s
`)
	health := c.Env.Env.Slots[ops.Blue].HealthURL
	control := strings.TrimSuffix(health, "/health") + "/_control"
	resp, err := http.Post(control, "application/json", bytes.NewBufferString(`{"status":"unhealthy","failing_checks":{"database":"connection refused"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	alert := c.waitMessage(t, slackfake.InChannel("CCRIT"), slackfake.TextContains("health-unhealthy"))
	if !strings.Contains(slackfake.Render(alert), "Acknowledge") {
		t.Errorf("the alert has no buttons:\n%s", slackfake.Render(alert))
	}
	parent := c.waitMessage(t, slackfake.InChannel("CINC"), slackfake.TextContains("INC-1"))
	c.waitMessage(t, slackfake.InThread(parent.TS), slackfake.TextContains("an update was due"))

	c.click(t, "UALICE", parent, "incident.update")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	view, err := c.fake.WaitView(ctx, "incident.update.form")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.fake.SubmitView(ctx, slackfake.ViewSubmit{User: "UALICE", ViewID: view.ID, Values: map[string]map[string]string{
		"in-status": {"status": "identified"}, "in-severity": {"severity": "sev2"}, "in-impact": {"impact": "all API calls fail"},
		"in-what_happened": {"what_happened": "the database check fails"}, "in-what_doing": {"what_doing": "restarting the pool"},
		"in-next_update": {"next_update": "in 30 minutes"},
	}}); err != nil {
		t.Fatal(err)
	}
	c.waitMessage(t, slackfake.InThread(parent.TS), slackfake.TextContains("restarting the pool"))

	c.click(t, "UALICE", parent, "incident.diagnostics")
	deadline := time.Now().Add(20 * time.Second)
	for len(c.fake.Uploads()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ups := c.fake.Uploads()
	if len(ups) != 1 || ups[0].ThreadTS != parent.TS || !strings.Contains(string(ups[0].Content), "Last 500 log lines") || !strings.Contains(string(ups[0].Content), `"status": "unhealthy"`) {
		t.Fatalf("diagnostics upload = %+v", ups)
	}

	c.slash(t, "UALICE", "incident resolve INC-1")
	report := c.waitMessage(t, slackfake.InThread(parent.TS), slackfake.TextContains("Report of INC-1"))
	text := slackfake.Render(report)
	for _, want := range []string{"Timeline", "declared", "Identified", "all API calls fail"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
}

// TestTwoReplicasRemindOnce runs a second bot on the same store and Slack:
// both hold Socket Mode connections, one is the leader, and each due
// reminder is posted once.
func TestTwoReplicasRemindOnce(t *testing.T) {
	c := startChatWith(t, false, "alerts:\n  sev2_every: 2s\n")
	second := *c.Cfg
	second.HTTP.Listen = "127.0.0.1:0"
	apptest.RunBot(t, c.fake, &second)

	c.slash(t, "UALICE", "incident declare sev2 checkout errors --env staging")
	parent := c.waitMessage(t, slackfake.InChannel("CINC"), slackfake.TextContains("INC-1"))
	c.waitMessage(t, slackfake.InThread(parent.TS), slackfake.TextContains("an update was due"))
	time.Sleep(3 * time.Second) // both replicas tick several times meanwhile
	reminders := 0
	for _, m := range c.fake.Thread(parent.Channel, parent.TS) {
		if strings.Contains(slackfake.Render(m), "an update was due") {
			reminders++
		}
	}
	if reminders != 1 {
		t.Errorf("%d reminders for one due time with two replicas, want 1", reminders)
	}
}

// TestConcurrentCriticalAlertsOpenOneIncident sends critical alerts for
// staging at once: one incident is declared, with one message in the
// incidents channel, and every alert is on its timeline.
func TestConcurrentCriticalAlertsOpenOneIncident(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 3, 28, 1, 5, 0, 0, time.UTC))
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { m.alertNamed(t, fmt.Sprintf("Critical%d", i), "critical", "firing") })
	}
	wg.Wait() // each webhook answers once its alert is handled

	m.wantOneIncident(t, n)
}

// TestConcurrentDeclareClicksOpenOneIncident presses the Declare button of
// several warning alerts of staging at once: one incident is declared, the
// other presses are told it is already open, and every alert is on its
// timeline.
func TestConcurrentDeclareClicksOpenOneIncident(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 3, 28, 1, 5, 0, 0, time.UTC))
	const n = 8
	var alerts []slackfake.Message
	for i := range n {
		name := fmt.Sprintf("Warning%d", i)
		m.alertNamed(t, name, "warning", "firing")
		alerts = append(alerts, m.waitMessage(t, slackfake.InChannel("CWARN"), slackfake.TextContains(name)))
	}
	var wg sync.WaitGroup
	for i, msg := range alerts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			env, err := m.fake.ClickButton(ctx, slackfake.Click{User: "UALICE", Channel: msg.Channel, MessageTS: msg.TS,
				ActionID: "alert.declare", Value: fmt.Sprintf(`am:{}:{alertname="Warning%d"}`, i)})
			if err == nil {
				_, err = m.fake.WaitAck(ctx, env)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	declared, joined := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for declared+joined < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		declared, joined = 0, 0
		for _, r := range m.fake.Ephemerals("CWARN", "UALICE") {
			text := slackfake.Render(r)
			switch {
			case strings.Contains(text, "declared from the alert"):
				declared++
			case strings.Contains(text, "is already open for staging"):
				joined++
			}
		}
	}
	if declared != 1 || joined != n-1 {
		t.Errorf("of %d Declare presses %d declared and %d were told one is open, want 1 and %d", n, declared, joined, n-1)
	}
	m.wantOneIncident(t, n)
}

// wantOneIncident checks that one incident is open, with alerts alerts on
// its timeline and one message in the incidents channel.
func (m *maintenanceChat) wantOneIncident(t *testing.T, alerts int) {
	t.Helper()
	open, err := m.Store.OpenIncidents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, inc := range open {
		ids = append(ids, inc.ID)
	}
	if len(open) != 1 {
		t.Fatalf("open incidents of staging = %q, want one", ids)
	}
	onTimeline := 0
	for _, e := range open[0].Timeline {
		if e.Kind == incidents.KindAlert {
			onTimeline++
		}
	}
	if onTimeline != alerts {
		t.Errorf("%s has %d alerts on its timeline, want %d:\n%+v", open[0].ID, onTimeline, alerts, open[0].Timeline)
	}
	var parents []string
	for _, msg := range m.fake.Messages("CINC") {
		if msg.ThreadTS == "" || msg.ThreadTS == msg.TS {
			parents = append(parents, slackfake.Render(msg))
		}
	}
	if len(parents) != 1 {
		t.Errorf("%d messages in the incidents channel, want one:\n%s", len(parents), strings.Join(parents, "\n---\n"))
	}
}

// TestDiagnosticsRedactSecretsByValue makes the live slot's /health quote,
// without their names, a secret-looking variable of the env file, a
// variable the rotation policy names and the bot's own Slack token: the
// diagnostics bundle shows none of them.
func TestDiagnosticsRedactSecretsByValue(t *testing.T) {
	c := startChatWith(t, false, "secret_rotation: {SIGNUP_PEPPER: 720h}\n")
	const sessionKey, pepper = "k3y-0f-the-sessi0ns-9f8e7d", "pepper-v4lue-5a4b3c"
	env, err := os.ReadFile(c.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	apptest.WriteFile(t, c.EnvFile, 0o600, string(env)+"SESSION_KEY="+sessionKey+"\nSIGNUP_PEPPER="+pepper+"\n")
	secrets := []string{sessionKey, pepper, c.fake.BotToken()}
	control := strings.TrimSuffix(c.Env.Env.Slots[ops.Blue].HealthURL, "/health") + "/_control"
	body := fmt.Sprintf(`{"status":"unhealthy","failing_checks":{"database":"login with %s, %s and %s refused"}}`, secrets[0], secrets[1], secrets[2])
	resp, err := http.Post(control, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	c.slash(t, "UALICE", "incident declare sev2 login fails --env staging")
	parent := c.waitMessage(t, slackfake.InChannel("CINC"), slackfake.TextContains("INC-1"))
	c.click(t, "UALICE", parent, "incident.diagnostics")
	deadline := time.Now().Add(20 * time.Second)
	for len(c.fake.Uploads()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ups := c.fake.Uploads()
	if len(ups) != 1 {
		t.Fatalf("diagnostics uploads = %+v, want one", ups)
	}
	content := string(ups[0].Content)
	if !strings.Contains(content, "login with ***, *** and *** refused") {
		t.Errorf("the diagnostics lack the redacted check message:\n%s", content)
	}
	for _, s := range secrets {
		if strings.Contains(content, s) {
			t.Errorf("the diagnostics show the secret %q:\n%s", s, content)
		}
	}
}
