// Package alertmanager is the intake for Prometheus Alertmanager's webhook
// (payload version "4"): an authenticated HTTP handler that turns each
// notification, one alert group, into a single incidents.Alert.
package alertmanager

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/togather-foundation/togather-chatops/incidents"
)

// maxSummary is the longest Summary Decode produces, in runes.
const maxSummary = 500

// payload is the part of the webhook body Alertmanager posts
// (notify/webhook Message) that Decode uses; receiver, groupLabels,
// externalURL and each alert's generatorURL and fingerprint are ignored.
// Times are kept as strings so a bad one gets a precise error.
type payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	Alerts            []alert           `json:"alerts"`
}

// alert is one alert of the group.
type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt"`
	EndsAt      string            `json:"endsAt"`
}

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// Decode parses and validates one webhook body and maps the group to an
// incidents.Alert. The "counted" alerts are all of them when the group is
// resolved, and only the firing ones when it is firing.
//
//   - Key is "am:" + groupKey; Source is "alertmanager".
//   - Name is commonLabels.alertname, else the first counted alert's.
//   - Env is commonLabels.environment, else commonLabels.env, else empty.
//   - Severity comes from the severity label, case-insensitively: "critical"
//     and "page" are Critical; anything else ("warning", "warn", "info",
//     unknown values, or no label) is Warning. When the counted alerts
//     disagree (so commonLabels has no severity) the most severe one wins.
//   - Firing is status == "firing".
//   - Summary is commonAnnotations.summary, else .description, else the
//     distinct summaries (or descriptions, or alertnames) of the counted
//     alerts joined by "; "; it is cut to 500 runes.
//   - Labels is commonLabels.
//   - Count is the number of counted alerts plus truncatedAlerts, the
//     alerts Alertmanager left out of the body (max_alerts).
//   - StartsAt is the counted alerts' earliest startsAt; EndsAt is their
//     latest endsAt when the group is resolved, else zero.
//
// Its errors are short and safe to return to the sender.
func Decode(body []byte) (incidents.Alert, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return incidents.Alert{}, fmt.Errorf("body is not JSON: %w", err)
	}
	if err := p.validate(); err != nil {
		return incidents.Alert{}, err
	}
	a := incidents.Alert{
		Key:      "am:" + p.GroupKey,
		Source:   "alertmanager",
		Name:     p.CommonLabels["alertname"],
		Env:      cmp.Or(p.CommonLabels["environment"], p.CommonLabels["env"]),
		Severity: severity(p.CommonLabels["severity"]),
		Firing:   p.Status == statusFiring,
		Labels:   p.CommonLabels,
		Count:    p.TruncatedAlerts,
	}
	var summaries []string
	for i, al := range p.Alerts {
		startsAt, endsAt, err := al.times(i)
		if err != nil {
			return incidents.Alert{}, err
		}
		if a.Firing && al.Status != statusFiring {
			continue // a resolved member of a firing group
		}
		a.Count++
		a.Name = cmp.Or(a.Name, al.Labels["alertname"])
		if severity(al.Labels["severity"]) == incidents.Critical {
			a.Severity = incidents.Critical
		}
		if a.StartsAt.IsZero() || startsAt.Before(a.StartsAt) {
			a.StartsAt = startsAt
		}
		if !a.Firing && endsAt.After(a.EndsAt) {
			a.EndsAt = endsAt
		}
		s := cmp.Or(al.Annotations["summary"], al.Annotations["description"], al.Labels["alertname"])
		if s != "" && !slices.Contains(summaries, s) {
			summaries = append(summaries, s)
		}
	}
	summary := cmp.Or(p.CommonAnnotations["summary"], p.CommonAnnotations["description"])
	if summary == "" {
		summary = strings.Join(summaries, "; ")
		if p.TruncatedAlerts > 0 {
			summary += fmt.Sprintf(" (+%d more not shown)", p.TruncatedAlerts)
		}
	}
	a.Summary = cut(summary, maxSummary)
	return a, nil
}

// validate checks the fields Decode relies on.
func (p *payload) validate() error {
	switch {
	case p.Version != "4":
		return errors.New(`version must be "4"`)
	case p.GroupKey == "":
		return errors.New("groupKey is missing")
	case p.Status != statusFiring && p.Status != statusResolved:
		return errors.New(`status must be "firing" or "resolved"`)
	case p.TruncatedAlerts < 0 || p.TruncatedAlerts > math.MaxInt32:
		return errors.New("truncatedAlerts is out of range")
	case len(p.Alerts) == 0:
		return errors.New("alerts is empty")
	}
	for i, al := range p.Alerts {
		if al.Status != statusFiring && al.Status != statusResolved {
			return fmt.Errorf(`alerts[%d].status must be "firing" or "resolved"`, i)
		}
	}
	return nil
}

// times parses the alert's startsAt (required) and endsAt (optional;
// Alertmanager sends the zero time for alerts still firing).
func (al *alert) times(i int) (startsAt, endsAt time.Time, err error) {
	if al.StartsAt == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("alerts[%d].startsAt is missing", i)
	}
	if startsAt, err = parseTime(al.StartsAt); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("alerts[%d].startsAt: %w", i, err)
	}
	if al.EndsAt == "" {
		return startsAt, time.Time{}, nil
	}
	if endsAt, err = parseTime(al.EndsAt); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("alerts[%d].endsAt: %w", i, err)
	}
	return startsAt, endsAt, nil
}

// parseTime parses an RFC 3339 time without echoing a long bad value.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time: %.40q", s)
	}
	return t, nil
}

// severity maps an Alertmanager severity label to an incidents.Severity.
func severity(label string) incidents.Severity {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "critical", "page":
		return incidents.Critical
	default:
		return incidents.Warning
	}
}

// cut shortens s to at most n runes, ending with "…" when it cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
