package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The --config flag belongs to the subcommand: `togather-chatops --config F
// <command>` is an unknown command, so neither the docs nor a usage line may
// show it.
var configBeforeCommand = regexp.MustCompile(`togather-chatops\s+\[?--config`)

func TestDocsPutConfigAfterTheCommand(t *testing.T) {
	files := []string{"../../README.md", "../../deploy/config.example.yaml"}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, docs...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if configBeforeCommand.MatchString(line) {
				t.Errorf("%s:%d puts --config before the command: %s", f, i+1, line)
			}
		}
	}
}

func TestChatTwinUsagePutsConfigAfterTheCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"maintenance", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("maintenance --help exited %d: %s", code, stderr.String())
	}
	usage := stderr.String()
	if configBeforeCommand.MatchString(usage) {
		t.Errorf("usage puts --config before the command:\n%s", usage)
	}
	if !strings.Contains(usage, "togather-chatops maintenance list [--config FILE]") {
		t.Errorf("usage does not show `maintenance list [--config FILE]`:\n%s", usage)
	}
}

// configFile writes a minimal valid configuration and returns its path.
func configFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := `timezone: UTC
channels: {deploys: C01DEPLOYS, alerts_warning: C01WARN, alerts_critical: C01CRIT, incidents: C01INC, announcements: C01ANN}
environments:
  staging: {}
roles:
  - {name: admins, users: [U0123ABC], commands: ["*"], environments: ["*"]}
paging: {}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheckWithoutSlackTokensWarns(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://bot@localhost/chatops")
	t.Setenv("SLACK_BOT_TOKEN", "")
	t.Setenv("SLACK_APP_TOKEN", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"config", "check", "--config", configFile(t)}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("config check exited %d without the Slack tokens:\n%s%s", code, out, stderr.String())
	}
	want := "warning: SLACK_APP_TOKEN and SLACK_BOT_TOKEN are not set: fine for the terminal commands; `serve` needs them"
	if !strings.Contains(out, want) {
		t.Errorf("config check output lacks %q:\n%s", want, out)
	}
}

func TestConfigCheckRefusesAMalformedSlackToken(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://bot@localhost/chatops")
	t.Setenv("SLACK_BOT_TOKEN", "xapp-wrong-kind")
	t.Setenv("SLACK_APP_TOKEN", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"config", "check", "--config", configFile(t)}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "SLACK_BOT_TOKEN: must start with xoxb-") {
		t.Errorf("config check exited %d, want 1 with the bad token named:\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), "warning: SLACK_APP_TOKEN is not set: fine for the terminal commands; `serve` needs it") {
		t.Errorf("config check does not warn of the missing app token:\n%s", stdout.String())
	}
}

func TestServeStillNeedsTheSlackTokens(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://bot@localhost/chatops")
	t.Setenv("SLACK_BOT_TOKEN", "")
	t.Setenv("SLACK_APP_TOKEN", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--config", configFile(t)}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "SLACK_APP_TOKEN: not set") || !strings.Contains(stderr.String(), "SLACK_BOT_TOKEN: not set") {
		t.Errorf("serve exited %d without the Slack tokens, want 1 naming both:\n%s", code, stderr.String())
	}
}

func TestReconcileWaitNoticeSaysEachReasonOnce(t *testing.T) {
	var out bytes.Buffer
	w := waitNotice{out: &out, every: 30 * time.Second}
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	held := "dep_1 holds staging until 10:01:00"
	for s := range 10 { // a poll a second
		w.show(held, t0.Add(time.Duration(s)*time.Second))
	}
	w.show("dep_1 is still running", t0.Add(10*time.Second))
	w.show("dep_1 is still running", t0.Add(39*time.Second))
	w.show("dep_1 is still running", t0.Add(40*time.Second))
	want := held + "; waiting\n" + "dep_1 is still running; waiting\n" + "dep_1 is still running; waiting\n"
	if got := out.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
}
