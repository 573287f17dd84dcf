package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testclock"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

const announcements = "CANN"

// maintenanceRoles: alice runs maintenance and incidents; bob only reads.
const maintenanceRoles = `timezone: Europe/Berlin
alerts: {sev1_every: 2s}
roles:
  - {name: maintainers, users: [UALICE], commands: [status, "maintenance.*", "snapshot.*", "db.*", "incident.*"], environments: ["*"]}
  - {name: readers, users: [UBOB], commands: [status, maintenance.list], environments: ["*"]}
`

// maintenanceChat is a real environment whose bot runs on a settable clock
// and can be restarted.
type maintenanceChat struct {
	*chatEnv
	clock *testclock.Clock
	bot   *app.App
	stop  func()
}

func startMaintenanceChat(t *testing.T, now time.Time) *maintenanceChat {
	t.Helper()
	return startMaintenanceChatWith(t, now, "")
}

// startMaintenanceChatWith adds extra top-level YAML to the configuration.
func startMaintenanceChatWith(t *testing.T, now time.Time, extra string) *maintenanceChat {
	t.Helper()
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", maintenanceRoles+extra, 1)
	})
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	cfg := e.Cfg
	cfg.Secrets.SlackAppToken, cfg.Secrets.SlackBotToken = fake.AppToken(), fake.BotToken()
	cfg.Secrets.AlertmanagerToken = "am-token"
	cfg.Slack.APIURL = fake.APIURL()
	cfg.HTTP.Listen = "127.0.0.1:0"
	m := &maintenanceChat{chatEnv: &chatEnv{DeployEnv: e, fake: fake}, clock: testclock.New(now)}
	m.restart(t)
	return m
}

// restart stops the running bot, if any, and starts a new one on the same
// store, Slack and clock.
func (m *maintenanceChat) restart(t *testing.T) {
	t.Helper()
	if m.stop != nil {
		m.stop()
	}
	m.bot, m.stop = apptest.RunBotWith(t, m.fake, m.Cfg, app.Options{Now: m.clock.Now})
}

// at sets the clock to a wall-clock time in Berlin.
func (m *maintenanceChat) at(t *testing.T, wall string) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/Berlin")
	v, err := time.ParseInLocation("2006-01-02T15:04", wall, loc)
	if err != nil {
		t.Fatal(err)
	}
	m.clock.Set(v)
}

// alert posts the Alertmanager group DiskAlmostFull for staging.
func (m *maintenanceChat) alert(t *testing.T, status string) {
	t.Helper()
	m.alertNamed(t, "DiskAlmostFull", "critical", status)
}

// alertNamed posts one Alertmanager group, alertname name of severity, for
// staging and returns once the bot has handled it.
func (m *maintenanceChat) alertNamed(t *testing.T, name, severity, status string) {
	t.Helper()
	body := `{"version":"4","groupKey":"{}:{alertname=\"` + name + `\"}","status":"` + status + `","receiver":"chatops",
	  "groupLabels":{"alertname":"` + name + `"},"commonLabels":{"alertname":"` + name + `","severity":"` + severity + `","env":"staging"},
	  "commonAnnotations":{"summary":"disk 4 % free"},"externalURL":"http://am",
	  "alerts":[{"status":"` + status + `","labels":{"alertname":"` + name + `","severity":"` + severity + `","env":"staging"},
	  "annotations":{"summary":"disk 4 % free"},"startsAt":"2027-03-28T01:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"` + name + `"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+m.bot.Addr()+"/alertmanager", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer am-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("alertmanager webhook: %s %s", resp.Status, b)
	}
}

// count is how many messages of the thread of root contain text.
func (m *maintenanceChat) count(root slackfake.Message, text string) int {
	n := 0
	for _, msg := range m.fake.Thread(root.Channel, root.TS) {
		if msg.TS != root.TS && strings.Contains(slackfake.Render(msg), text) {
			n++
		}
	}
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMaintenanceWindowLifecycle drives a window with a 503 page across the
// spring daylight-saving change in Berlin on a settable clock, through the
// real bot, Slack protocol, PostgreSQL, Caddy and Docker: the 7/3/1-day
// announcements in one thread, a restart before the last one and another in
// the middle of the window (no post repeated), the pre-maintenance
// snapshot, the 503 page and its removal, an alert muted during the window
// and summed up at its end, VACUUM FULL refused before the window and run
// inside it, and the summary of the watch after it.
func TestMaintenanceWindowLifecycle(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 3, 18, 11, 0, 0, 0, time.UTC)) // Thu 12:00 CET
	before, err := os.ReadFile(m.Caddyfile)
	if err != nil {
		t.Fatal(err)
	}

	m.slash(t, "UALICE", "maintenance schedule staging 2027-03-28T01:30 2h Postgres upgrade --mode 503")
	root := m.waitMessage(t, slackfake.InChannel(announcements), slackfake.TextContains("MW-1"))
	text := slackfake.Render(root)
	for _, want := range []string{"Scheduled", "Sun 2027-03-28 01:30–04:30 CEST", "Postgres upgrade", "HTTP 503", "<@UALICE>"} {
		if !strings.Contains(text, want) {
			t.Errorf("the announcement lacks %q:\n%s", want, text)
		}
	}

	m.at(t, "2027-03-21T01:30")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("starts in 7 days"))
	m.at(t, "2027-03-25T01:30")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("starts in 3 days"))
	m.restart(t)
	m.at(t, "2027-03-27T01:30")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("starts in 1 day"))

	m.slash(t, "UALICE", "db staging vacuum --full")
	m.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("only inside a maintenance window of staging"))

	m.at(t, "2027-03-28T01:30")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("Maintenance in progress"))
	m.slash(t, "UALICE", "db staging vacuum --full")
	m.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("VACUUM (FULL, ANALYZE) on staging finished"))
	m.slash(t, "UBOB", "status staging")
	m.waitMessage(t, slackfake.ForUser("UBOB"), slackfake.TextContains("Maintenance MW-1 in progress until 04:30 CEST"))
	m.waitEdit(t, root, "In progress")
	if code, body := get(t, m.ProxyURL+"/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, "down for maintenance") {
		t.Errorf("during the window the proxy answers %d %q, want 503 and the maintenance page", code, body)
	}
	snaps, _ := filepath.Glob(filepath.Join(m.Snapshots, "*pre-maintenance.sql.gz"))
	if len(snaps) != 1 {
		t.Errorf("pre-maintenance snapshots: %v, want one", snaps)
	}

	m.alert(t, "firing")
	m.restart(t)                // in the middle of the window
	m.at(t, "2027-03-28T04:30") // CEST: two hours after 01:30 CET
	end := m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("Maintenance complete"))
	text = slackfake.Render(end)
	for _, want := range []string{"after 2h", "DiskAlmostFull", "fired 1 time(s)", "still firing", "1 still firing: look at them now", "Watching staging for 30m"} {
		if !strings.Contains(text, want) {
			t.Errorf("the end post lacks %q:\n%s", want, text)
		}
	}
	m.waitEdit(t, root, "Complete")
	for _, ch := range []string{"CCRIT", "CWARN"} {
		for _, msg := range m.fake.Messages(ch) {
			if strings.Contains(slackfake.Render(msg), "DiskAlmostFull") {
				t.Errorf("an alert muted by the window was posted:\n%s", slackfake.Render(msg))
			}
		}
	}
	if code, _ := get(t, m.ProxyURL+"/health"); code != http.StatusOK {
		t.Errorf("after the window the proxy answers %d, want 200 from the app", code)
	}
	if after, _ := os.ReadFile(m.Caddyfile); !bytes.Equal(after, before) {
		t.Errorf("the Caddyfile after the window differs from before:\n%s\nwant:\n%s", after, before)
	}

	m.at(t, "2027-03-28T05:00")
	watch := m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("after MW-1"))
	if text := slackfake.Render(watch); !strings.Contains(text, "live slot blue is healthy") {
		t.Errorf("the watch summary lacks the health:\n%s", text)
	}

	for _, post := range []string{"starts in 7 days", "starts in 3 days", "starts in 1 day", "Maintenance in progress", "Maintenance complete", "after MW-1"} {
		if n := m.count(root, post); n != 1 {
			t.Errorf("%q was posted %d times in the thread, want once", post, n)
		}
	}
}

// TestMaintenanceConfirmAndCancel: a start in business hours waits for its
// owner's confirmation; a cancelled window's announcement is edited and its
// thread told; someone else cannot confirm.
func TestMaintenanceConfirmAndCancel(t *testing.T) {
	// Carol runs production's maintenance only (an environment this
	// configuration lacks: only the in-process bot reads it unvalidated).
	m := startMaintenanceChatWith(t, time.Date(2027, 4, 1, 10, 0, 0, 0, time.UTC),
		"  - {name: prod-maintainers, users: [UCAROL], commands: [\"maintenance.*\"], environments: [production]}\n")

	m.slash(t, "UALICE", "maintenance schedule staging 2027-04-07T10:00 5h Reindex everything")
	ask := m.waitMessage(t, slackfake.HasButton("maint.confirm"))
	text := slackfake.Render(ask)
	for _, want := range []string{"business hours", "lasts 5h", "not scheduled yet"} {
		if !strings.Contains(text, want) {
			t.Errorf("the warning lacks %q:\n%s", want, text)
		}
	}
	if len(m.fake.Messages(announcements)) != 0 {
		t.Fatal("an unconfirmed window was announced")
	}
	m.click(t, "UBOB", ask, "maint.confirm")
	m.waitMessage(t, slackfake.TextContains("Only <@UALICE>"))
	m.click(t, "UALICE", ask, "maint.confirm")
	root := m.waitMessage(t, slackfake.InChannel(announcements), slackfake.TextContains("MW-1"))
	m.click(t, "UALICE", ask, "maint.confirm") // a second click does nothing
	m.waitMessage(t, slackfake.TextContains("already confirmed or discarded"))

	m.slash(t, "UBOB", "maintenance cancel MW-1")
	m.waitMessage(t, slackfake.TextContains("not allowed to run maintenance.cancel"))
	m.slash(t, "UCAROL", "maintenance cancel MW-1")
	m.waitMessage(t, slackfake.ForUser("UCAROL"), slackfake.TextContains("not allowed to run maintenance.cancel in staging"))
	m.slash(t, "UALICE", "maintenance cancel MW-1")
	m.waitEdit(t, root, "Cancelled")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("cancelled by <@UALICE>"))

	m.slash(t, "UBOB", "maintenance list")
	m.waitMessage(t, slackfake.TextContains("No maintenance windows are scheduled"))
	var top []slackfake.Message
	for _, msg := range m.fake.Messages(announcements) {
		if msg.ThreadTS == "" || msg.ThreadTS == msg.TS {
			top = append(top, msg)
		}
	}
	if len(top) != 1 {
		t.Errorf("%d announcements, want the one cancelled: %+v", len(top), top)
	}
}

// TestMaintenanceFromTheTerminal runs the terminal twins of the maintenance
// and db commands, the real binary, with only the Slack Web API reachable:
// schedule (confirming its warnings), start early, VACUUM FULL inside the
// window, end, and VACUUM FULL refused after it with a failing exit code.
func TestMaintenanceFromTheTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Docker and Caddy")
	}
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", maintenanceRoles, 1)
	})
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--config", e.ConfigPath)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN, "SLACK_BOT_TOKEN="+fake.BotToken(), "SLACK_API_URL="+fake.APIURL())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustRun := func(want string, args ...string) {
		t.Helper()
		out, err := run(args...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("togather-chatops %s: %v\n%s\nwant %q", strings.Join(args, " "), err, out, want)
		}
	}

	mustRun("confirmed although it starts inside business hours", "maintenance", "schedule", "staging", "2030-01-08T10:00", "5h", "Disk swap", "--confirm")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	root, err := fake.WaitMessage(ctx, slackfake.InChannel(announcements), slackfake.TextContains("Disk swap"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun("Starting MW-1", "maintenance", "start", "MW-1")
	if _, err := fake.WaitMessage(ctx, slackfake.InThread(root.TS), slackfake.TextContains("started by cli:")); err != nil {
		t.Fatalf("no start post in the thread: %v", err)
	}
	mustRun("VACUUM (FULL, ANALYZE) on staging finished", "db", "staging", "vacuum", "--full")
	mustRun("", "maintenance", "end", "MW-1")
	if _, err := fake.WaitMessage(ctx, slackfake.InThread(root.TS), slackfake.TextContains("Maintenance complete")); err != nil {
		t.Fatalf("no end post in the thread: %v", err)
	}
	out, err := run("db", "staging", "vacuum", "--full")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "only inside a maintenance window") {
		t.Errorf("VACUUM FULL after the window: %v\n%s\nwant exit 1 and the refusal", err, out)
	}
	out, err = run("db", "stagin", "vacuum")
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, `Did you mean "staging"?`) {
		t.Errorf("a mistyped environment: %v\n%s\nwant exit 2 and the grammar's suggestion", err, out)
	}
	entries, err := e.Store.AuditLog(ctx, postgres.AuditQuery{Actor: "cli:" + currentUser(t), Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]bool{}
	for _, a := range entries {
		actors[a.Actor+" "+a.Action] = true
	}
	for _, want := range []string{"maintenance.schedule", "maintenance.start", "maintenance.end", "db.vacuum"} {
		if !actors["cli:"+currentUser(t)+" "+want] {
			t.Errorf("no audit entry of %s by the terminal's user: %v", want, actors)
		}
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestMaintenanceStartHeldWhenTheSnapshotFails: without its
// pre-maintenance snapshot a window does not start: the owner is told why
// in the thread, alerts are not muted, and a start by hand once it is
// fixed goes ahead.
func TestMaintenanceStartHeldWhenTheSnapshotFails(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC))
	m.slash(t, "UALICE", "maintenance schedule staging 2027-04-03T02:00 1h Kernel update")
	root := m.waitMessage(t, slackfake.InChannel(announcements), slackfake.TextContains("MW-1"))
	// The snapshot directory cannot be created: a file stands in its way.
	if err := os.RemoveAll(m.Snapshots); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Snapshots, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}

	m.at(t, "2027-04-03T02:00")
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("<@UALICE>, the start of MW-1 on staging is held: the pre-maintenance snapshot failed"))
	m.alert(t, "firing")
	m.waitMessage(t, slackfake.InChannel("CCRIT"), slackfake.TextContains("DiskAlmostFull"))

	if err := os.Remove(m.Snapshots); err != nil {
		t.Fatal(err)
	}
	m.slash(t, "UALICE", "maintenance start MW-1")
	m.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("MW-1 is in progress"))
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("started by <@UALICE>"))
}

// TestMaintenanceMissedWhileDown: a window whose whole span passed while
// the bot was down is not started late; its owner is told.
func TestMaintenanceMissedWhileDown(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC))
	m.slash(t, "UALICE", "maintenance schedule staging 2027-04-03T02:00 1h Kernel update --mode 503")
	root := m.waitMessage(t, slackfake.InChannel(announcements), slackfake.TextContains("MW-1"))
	m.stop()
	m.at(t, "2027-04-03T03:30")
	m.restart(t)
	m.waitMessage(t, slackfake.InThread(root.TS), slackfake.TextContains("MW-1 did not start"))
	m.waitEdit(t, root, "Missed")
	if code, _ := get(t, m.ProxyURL+"/health"); code != http.StatusOK {
		t.Errorf("the proxy answers %d after a missed window, want the app's 200", code)
	}
	snaps, _ := filepath.Glob(filepath.Join(m.Snapshots, "*pre-maintenance.sql.gz"))
	if len(snaps) != 0 {
		t.Errorf("a missed window took snapshots: %v", snaps)
	}
}
