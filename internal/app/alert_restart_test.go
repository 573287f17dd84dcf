package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// TestAlertResolvedAfterARestartEditsItsMessage fires an Alertmanager alert,
// restarts the bot (a new leader, with nothing in memory), then resolves
// the alert: the alert's own message is edited to resolved, with one
// resolution reply in its thread and no "Update:" reply instead of the edit.
func TestAlertResolvedAfterARestartEditsItsMessage(t *testing.T) {
	m := startMaintenanceChat(t, time.Date(2027, 3, 28, 1, 5, 0, 0, time.UTC))
	m.alert(t, "firing")
	top := m.waitMessage(t, slackfake.InChannel("CCRIT"), slackfake.TextContains("DiskAlmostFull"))
	m.restart(t)
	m.alert(t, "resolved")
	m.waitMessage(t, slackfake.InThread(top.TS), slackfake.TextContains("Resolved:"))
	now := m.waitEdit(t, top, "resolved")
	if strings.Contains(slackfake.Render(now), ":red_circle:") {
		t.Errorf("the alert's message still shows it firing:\n%s", slackfake.Render(now))
	}
	if n := m.count(top, "Resolved:"); n != 1 {
		t.Errorf("%d resolution replies, want 1", n)
	}
	if n := m.count(top, "Update:"); n != 0 {
		t.Errorf("%d \"Update:\" replies instead of the edit, want 0", n)
	}
}
