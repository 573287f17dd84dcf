package config_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/config"
)

func TestValidatePaging(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name   string
		target config.PagingTarget
		key    string
		want   []config.Problem
	}{
		{"valid", config.PagingTarget{Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"critical"}}, key, nil},
		{"key not set", config.PagingTarget{Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"critical"}}, "",
			[]config.Problem{{"PD_KEY", "not set (the routing key of paging target oncall)"}}},
		{"short key", config.PagingTarget{Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"critical"}}, "abc",
			[]config.Problem{{"PD_KEY", "a PagerDuty routing key is 32 characters, this one is 3"}}},
		{"bad fields", config.PagingTarget{Type: "opsgenie", RoutingKeyEnv: "PD_KEY", Severities: []string{"sev1"}, EventsURL: "ftp://x"}, key,
			[]config.Problem{
				{"paging.targets.oncall.events_url", "not a URL (want http:// or https://)"},
				{"paging.targets.oncall.severities[0]", `unknown severity "sev1" (want critical or warning)`},
				{"paging.targets.oncall.type", `unknown type "opsgenie" (want pagerduty)`},
			}},
		{"no env var", config.PagingTarget{Type: "pagerduty", Severities: []string{"critical"}}, key,
			[]config.Problem{{"paging.targets.oncall.routing_key_env", "required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, "testdata/good.yaml", secrets)
			c.Paging.Targets = map[string]config.PagingTarget{"oncall": tt.target}
			env := maps.Clone(secrets)
			env["PD_KEY"] = tt.key
			c.LoadSecrets(getenv(env))
			if got := c.Validate(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWarningsCriticalWithoutPaging(t *testing.T) {
	c := load(t, "testdata/good.yaml", secrets)
	if w := c.Warnings(); len(w) != 1 || w[0].Path != "paging" {
		t.Fatalf("no paging target: Warnings() = %q, want one about paging", w)
	}
	c.Paging.Targets = map[string]config.PagingTarget{"oncall": {Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"warning"}}}
	if w := c.Warnings(); len(w) != 1 {
		t.Fatalf("a target for warnings only: Warnings() = %q, want one", w)
	}
	c.Paging.Targets["oncall"] = config.PagingTarget{Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"critical"}}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("a critical target: Warnings() = %q, want none", w)
	}
}

func TestRedactedHidesRoutingKey(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	c := load(t, "testdata/good.yaml", secrets)
	c.Paging.Targets = map[string]config.PagingTarget{"oncall": {Type: "pagerduty", RoutingKeyEnv: "PD_KEY", Severities: []string{"critical"}}}
	env := maps.Clone(secrets)
	env["PD_KEY"] = key
	c.LoadSecrets(getenv(env))
	out := c.Redacted()
	if strings.Contains(out, key) || !strings.Contains(out, `PD_KEY: "<redacted (32 chars)>"`) {
		t.Errorf("Redacted() shows the routing key or does not name it:\n%s", out)
	}
}
