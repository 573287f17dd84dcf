// Package incidents is the alerting and incident domain of togather-chatops:
// threshold rules with durations that fire once and resolve without
// flapping, alert groups, SEV1–SEV3 incidents with their update template,
// reminders, escalation, timeline and report. It knows nothing of Slack,
// Docker or SQL; decisions take `now` explicitly.
package incidents

import "time"

// Severity is how loud an alert is.
type Severity string

// Alert severities (DESIGN.md §6): critical pages on-call, warning goes to
// the team channel.
const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Alert is one alert group as the bot tracks it: one chat message each,
// edited as the group changes.
type Alert struct {
	Key      string            `json:"key"`    // group identity: "<env>/<rule>" for monitors, the groupKey for Alertmanager
	Source   string            `json:"source"` // "monitor" or "alertmanager"
	Env      string            `json:"env,omitempty"`
	Name     string            `json:"name"` // rule name or alertname
	Severity Severity          `json:"severity"`
	Firing   bool              `json:"firing"`
	Summary  string            `json:"summary"`
	Labels   map[string]string `json:"labels,omitempty"`
	Count    int               `json:"count"` // alerts in the group
	StartsAt time.Time         `json:"starts_at"`
	EndsAt   time.Time         `json:"ends_at,omitzero"`
}

// Sev is an incident's severity level.
type Sev string

// Incident severities (DESIGN.md §6).
const (
	SEV1 Sev = "sev1" // outage, data loss, breach: page now, update every 30 min
	SEV2 Sev = "sev2" // partial outage: respond in 15 min, escalate after 30, update hourly
	SEV3 Sev = "sev3" // minor: within 2 h, next status update
)
