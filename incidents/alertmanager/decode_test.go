package alertmanager_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/incidents/alertmanager"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// assertAlert compares two alerts, times by instant rather than location.
func assertAlert(t *testing.T, got, want incidents.Alert) {
	t.Helper()
	if !got.StartsAt.Equal(want.StartsAt) {
		t.Errorf("StartsAt = %v, want %v", got.StartsAt, want.StartsAt)
	}
	if !got.EndsAt.Equal(want.EndsAt) {
		t.Errorf("EndsAt = %v, want %v", got.EndsAt, want.EndsAt)
	}
	got.StartsAt, got.EndsAt, want.StartsAt, want.EndsAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alert =\n  %+v\nwant\n  %+v", got, want)
	}
}

func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    incidents.Alert
	}{
		{"firing.json", incidents.Alert{
			Key:      `am:{}:{alertname="HighErrorRate"}`,
			Source:   "alertmanager",
			Env:      "production",
			Name:     "HighErrorRate",
			Severity: incidents.Critical,
			Firing:   true,
			Summary:  "error rate above 5% for 2m",
			Labels:   map[string]string{"alertname": "HighErrorRate", "environment": "production", "severity": "critical", "job": "togather-server"},
			Count:    1,
			StartsAt: mustTime(t, "2025-03-01T10:00:00.123456789Z"),
		}},
		{"resolved.json", incidents.Alert{
			Key:      `am:{}:{alertname="DiskLow"}`,
			Source:   "alertmanager",
			Env:      "staging",
			Name:     "DiskLow",
			Severity: incidents.Warning,
			Firing:   false,
			Summary:  "free disk space back above 20%",
			Labels:   map[string]string{"alertname": "DiskLow", "env": "staging", "severity": "warning"},
			Count:    2,
			StartsAt: mustTime(t, "2025-03-01T07:30:00Z"), // 08:30+01:00, earlier than 09:00Z
			EndsAt:   mustTime(t, "2025-03-01T09:45:00Z"),
		}},
		// Three alerts without common name, severity or annotations; the
		// third is resolved and so neither counted nor summarised.
		{"grouped.json", incidents.Alert{
			Key:      `am:{}/{env="production"}:{job="togather-server"}`,
			Source:   "alertmanager",
			Env:      "production",
			Name:     "HighLatency",
			Severity: incidents.Critical, // the second alert is severity=page
			Firing:   true,
			Summary:  "p95 above 1s for 5m; more than 3 restarts in 10m",
			Labels:   map[string]string{"job": "togather-server", "env": "production"},
			Count:    2,
			StartsAt: mustTime(t, "2025-03-01T10:01:00Z"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := alertmanager.Decode(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertAlert(t, got, tt.want)
		})
	}
}

// webhook builds a one-alert firing body with the given labels JSON and
// extra top-level fields.
func webhook(labels, extra string) []byte {
	return fmt.Appendf(nil, `{"version":"4","groupKey":"g","status":"firing",%s"commonLabels":%s,
		"alerts":[{"status":"firing","labels":%s,"startsAt":"2025-03-01T10:00:00Z"}]}`, extra, labels, labels)
}

func TestDecodeSeverity(t *testing.T) {
	tests := []struct {
		labels string
		want   incidents.Severity
	}{
		{`{"severity":"critical"}`, incidents.Critical},
		{`{"severity":"CRITICAL"}`, incidents.Critical},
		{`{"severity":"page"}`, incidents.Critical},
		{`{"severity":" Page "}`, incidents.Critical},
		{`{"severity":"warning"}`, incidents.Warning},
		{`{"severity":"warn"}`, incidents.Warning},
		{`{"severity":"info"}`, incidents.Warning},
		{`{"severity":"error"}`, incidents.Warning},
		{`{"severity":""}`, incidents.Warning},
		{`{}`, incidents.Warning},
	}
	for _, tt := range tests {
		t.Run(tt.labels, func(t *testing.T) {
			got, err := alertmanager.Decode(webhook(tt.labels, ""))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Severity != tt.want {
				t.Errorf("Severity = %q, want %q", got.Severity, tt.want)
			}
		})
	}
}

func TestDecodeSummaryAndCount(t *testing.T) {
	long := strings.Repeat("é", 600)
	tests := []struct {
		name        string
		body        []byte
		wantSummary string
		wantCount   int
	}{
		{"alertname when no annotations", webhook(`{"alertname":"DBDown"}`, ""), "DBDown", 1},
		{"truncated alerts are counted and mentioned", webhook(`{"alertname":"DBDown"}`, `"truncatedAlerts":2,`), "DBDown (+2 more not shown)", 3},
		{"long summary is cut to 500 runes", webhook(`{}`, `"commonAnnotations":{"summary":"`+long+`"},`), strings.Repeat("é", 499) + "…", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alertmanager.Decode(tt.body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", got.Summary, tt.wantSummary)
			}
			if n := utf8.RuneCountInString(got.Summary); n > 500 {
				t.Errorf("Summary has %d runes, want at most 500", n)
			}
			if got.Count != tt.wantCount {
				t.Errorf("Count = %d, want %d", got.Count, tt.wantCount)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		fixture string
		wantErr string
	}{
		{"not-json.json", "body is not JSON: "},
		{"array.json", "body is not JSON: "},
		{"labels-not-strings.json", "body is not JSON: "},
		{"wrong-version.json", `version must be "4"`},
		{"no-groupkey.json", "groupKey is missing"},
		{"bad-status.json", `status must be "firing" or "resolved"`},
		{"bad-alert-status.json", `alerts[0].status must be "firing" or "resolved"`},
		{"negative-truncated.json", "truncatedAlerts is out of range"},
		{"empty-alerts.json", "alerts is empty"},
		{"missing-starts-at.json", "alerts[0].startsAt is missing"},
		{"bad-starts-at.json", `alerts[0].startsAt: not an RFC 3339 time: "yesterday"`},
		{"bad-ends-at.json", `alerts[0].endsAt: not an RFC 3339 time: "2025-03-01 10:00:00"`},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			a, err := alertmanager.Decode(readFixture(t, filepath.Join("malformed", tt.fixture)))
			if err == nil {
				t.Fatalf("Decode succeeded with %+v, want error %q", a, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"testdata/*.json", "testdata/malformed/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seed fixtures for %s (err %v)", pattern, err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := alertmanager.Decode(body)
		if err != nil {
			return
		}
		if a.Key == "" || a.Key == "am:" {
			t.Errorf("decoded alert has an empty key: %+v", a)
		}
		if a.Severity != incidents.Warning && a.Severity != incidents.Critical {
			t.Errorf("Severity = %q", a.Severity)
		}
		if n := utf8.RuneCountInString(a.Summary); n > 500 {
			t.Errorf("Summary has %d runes", n)
		}
		if a.Count < 0 {
			t.Errorf("Count = %d", a.Count)
		}
	})
}
