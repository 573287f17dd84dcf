package incidents_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
)

var t0 = time.Date(2026, 6, 16, 14, 0, 0, 0, time.UTC)

// wantDefaults are the thresholds of DESIGN.md §6, written out here so the
// test does not take them from the code under test.
var wantDefaults = []struct {
	name, metric, op string
	value            float64
	hold             time.Duration
	sev              incidents.Severity
}{
	{"health-unhealthy", "health_unhealthy", ">", 0, 2 * time.Minute, incidents.Critical},
	{"error-rate", "error_rate", ">", 0.05, 2 * time.Minute, incidents.Critical},
	{"db-errors", "db_errors", ">", 0, time.Minute, incidents.Critical},
	{"disk-critical", "disk_free_ratio", "<", 0.10, time.Minute, incidents.Critical},
	{"restarts", "restarts_10m", ">", 3, 0, incidents.Critical},
	{"health-degraded", "health_degraded", ">", 0, 5 * time.Minute, incidents.Warning},
	{"latency-p95", "p95_seconds", ">", 1, 5 * time.Minute, incidents.Warning},
	{"db-pool", "db_pool_ratio", ">", 0.8, 5 * time.Minute, incidents.Warning},
	{"disk-low", "disk_free_ratio", "<", 0.20, 5 * time.Minute, incidents.Warning},
	{"memory", "memory_ratio", ">", 0.85, 5 * time.Minute, incidents.Warning},
	{"snapshot-stale", "snapshot_age_hours", ">", 24, 0, incidents.Warning},
	{"host-unreachable", "host_unreachable", ">", 0, 30 * time.Second, incidents.Critical},
	{"proxy-unreadable", "proxy_unreadable", ">", 0, time.Minute, incidents.Critical},
}

func TestDefaultRules(t *testing.T) {
	rules := incidents.DefaultRules()
	if len(rules) != len(wantDefaults) {
		t.Fatalf("%d default rules, want %d", len(rules), len(wantDefaults))
	}
	for i, w := range wantDefaults {
		r := rules[i]
		if r.Name != w.name || r.Metric != w.metric || r.Op != w.op || r.Value != w.value || r.For != w.hold || r.Severity != w.sev {
			t.Errorf("rule %d = %+v, want %+v", i, r, w)
		}
		if r.Summary == "" {
			t.Errorf("rule %s has no summary", r.Name)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("rule %s: %v", r.Name, err)
		}
	}
}

// only keeps the transitions of one rule.
func only(ts []incidents.Transition, rule string) []incidents.Transition {
	var out []incidents.Transition
	for _, tr := range ts {
		if tr.Rule.Name == rule {
			out = append(out, tr)
		}
	}
	return out
}

// TestDefaultRulesFire drives every default rule at, just below and just
// above its threshold and its duration.
func TestDefaultRulesFire(t *testing.T) {
	const eps = 1e-9
	for _, w := range wantDefaults {
		// bad is a value meeting the condition; the others do not.
		bad, good := w.value+eps, w.value-eps
		if w.op == "<" {
			bad, good = good, bad
		}
		t.Run(w.name, func(t *testing.T) {
			for _, c := range []struct {
				what  string
				value float64
				fires bool
			}{
				{"at the threshold", w.value, false},
				{"on the good side", good, false},
				{"past the threshold", bad, true},
			} {
				e := incidents.NewEngine(incidents.DefaultRules())
				got := only(e.Observe(incidents.Sample{Env: "production", Metric: w.metric, Value: c.value, At: t0}), w.name)
				got = append(got, only(e.Observe(incidents.Sample{Env: "production", Metric: w.metric, Value: c.value, At: t0.Add(w.hold)}), w.name)...)
				if (len(got) == 1) != c.fires || len(got) > 1 {
					t.Errorf("%s (%v): %d transitions, want fired=%v", c.what, c.value, len(got), c.fires)
				}
			}

			e := incidents.NewEngine(incidents.DefaultRules())
			observe := func(d time.Duration) []incidents.Transition {
				return only(e.Observe(incidents.Sample{Env: "production", Metric: w.metric, Value: bad, At: t0.Add(d), Detail: "seen"}), w.name)
			}
			if w.hold > 0 {
				if got := observe(0); len(got) != 0 {
					t.Fatalf("fired on the first sample: %+v", got)
				}
				if got := observe(w.hold - time.Second); len(got) != 0 {
					t.Fatalf("fired 1s before %s: %+v", w.hold, got)
				}
			}
			got := observe(w.hold)
			if len(got) != 1 || !got[0].Firing || !got[0].Since.Equal(t0) || got[0].Env != "production" || got[0].Value != bad || got[0].Detail != "seen" {
				t.Fatalf("at %s: %+v, want one firing transition since %s", w.hold, got, t0)
			}
			if got := observe(w.hold + time.Second); len(got) != 0 {
				t.Fatalf("fired again 1s after %s: %+v", w.hold, got)
			}

			if w.hold == 0 {
				return // fired on the first sample above
			}
			late := incidents.NewEngine(incidents.DefaultRules())
			late.Observe(incidents.Sample{Env: "production", Metric: w.metric, Value: bad, At: t0})
			if got := only(late.Observe(incidents.Sample{Env: "production", Metric: w.metric, Value: bad, At: t0.Add(w.hold + time.Second)}), w.name); len(got) != 1 {
				t.Fatalf("next sample 1s after %s: %d transitions, want 1", w.hold, len(got))
			}
		})
	}
}

var testRule = incidents.Rule{Name: "errors", Metric: "m", Op: ">", Value: 0, For: 2 * time.Minute, Severity: incidents.Critical, Summary: "errors for 2m"}

// feed observes v at each offset from t0 and returns all transitions.
func feed(e *incidents.Engine, env string, v float64, offsets ...time.Duration) []incidents.Transition {
	var out []incidents.Transition
	for _, d := range offsets {
		out = append(out, e.Observe(incidents.Sample{Env: env, Metric: "m", Value: v, At: t0.Add(d)})...)
	}
	return out
}

func TestEngineNoFlapping(t *testing.T) {
	e := incidents.NewEngine([]incidents.Rule{testRule})
	// The condition alternates every 30 s for 20 min: it never holds for 2 min.
	for i := range 40 {
		if got := feed(e, "production", float64(i%2), time.Duration(i)*30*time.Second); len(got) != 0 {
			t.Fatalf("alternating condition fired at sample %d: %+v", i, got)
		}
	}
	start := 20 * time.Minute
	if got := feed(e, "production", 1, start, start+time.Minute, start+2*time.Minute); len(got) != 1 || !got[0].Firing {
		t.Fatalf("held 2m: %+v, want one firing transition", got)
	}
	// Good samples shorter than the 30 s clear period, then bad ones again.
	for i := range 30 {
		d := start + 2*time.Minute + time.Duration(i+1)*20*time.Second
		if got := feed(e, "production", float64((i+1)%2), d); len(got) != 0 {
			t.Fatalf("alternating condition resolved or fired again at %s: %+v", d, got)
		}
	}
	if n := len(e.Firing()); n != 1 {
		t.Fatalf("%d firing after flapping, want 1", n)
	}
}

func TestEngineResolves(t *testing.T) {
	for _, c := range []struct {
		hold, clear time.Duration
	}{
		{0, 30 * time.Second},               // For/4 below the 30 s floor
		{4 * time.Minute, time.Minute},      // For/4
		{5 * time.Minute, 75 * time.Second}, // For/4
		{10 * time.Minute, 2 * time.Minute}, // For/4 above the 2 min cap
	} {
		t.Run(c.hold.String(), func(t *testing.T) {
			r := testRule
			r.For = c.hold
			at := c.hold + time.Minute // the condition stops holding
			// resolved returns an engine whose rule fired and has just resolved.
			resolved := func(t *testing.T) *incidents.Engine {
				t.Helper()
				e := incidents.NewEngine([]incidents.Rule{r})
				if got := feed(e, "production", 1, 0, c.hold); len(got) != 1 {
					t.Fatalf("%d transitions firing, want 1", len(got))
				}
				if got := feed(e, "production", 0, at, at+c.clear-time.Second); len(got) != 0 {
					t.Fatalf("resolved before the %s clear period: %+v", c.clear, got)
				}
				got := feed(e, "production", 0, at+c.clear)
				if len(got) != 1 || got[0].Firing || !got[0].Since.Equal(t0) || !got[0].Ended.Equal(t0.Add(at)) {
					t.Fatalf("after the clear period: %+v, want one resolution since %s ended %s", got, t0, t0.Add(at))
				}
				return e
			}

			e := resolved(t)
			if got := feed(e, "production", 0, at+c.clear+time.Second, at+10*time.Minute); len(got) != 0 {
				t.Fatalf("resolved again: %+v", got)
			}
			if n := len(e.Firing()); n != 0 {
				t.Fatalf("%d firing after resolution", n)
			}

			// Firing again takes the whole duration again, even right after
			// the resolution.
			e = resolved(t)
			again := at + c.clear + time.Second
			if c.hold > 0 {
				if got := feed(e, "production", 1, again, again+c.hold-time.Second); len(got) != 0 {
					t.Fatalf("fired again before %s: %+v", c.hold, got)
				}
			}
			if got := feed(e, "production", 1, again+c.hold); len(got) != 1 || !got[0].Since.Equal(t0.Add(again)) {
				t.Fatalf("fired again: %+v, want one since %s", got, t0.Add(again))
			}
		})
	}
}

func TestEngineEnvironmentsIndependent(t *testing.T) {
	e := incidents.NewEngine([]incidents.Rule{testRule})
	feed(e, "staging", 1, 0)
	feed(e, "production", 1, time.Minute)
	if got := feed(e, "staging", 1, 2*time.Minute); len(got) != 1 || got[0].Env != "staging" {
		t.Fatalf("staging at 2m: %+v", got)
	}
	if got := feed(e, "production", 1, 2*time.Minute); len(got) != 0 {
		t.Fatalf("production fired after 1m: %+v", got)
	}
	if got := feed(e, "production", 1, 3*time.Minute); len(got) != 1 || got[0].Env != "production" {
		t.Fatalf("production at 3m: %+v", got)
	}
	if got := feed(e, "staging", 0, 4*time.Minute, 5*time.Minute); len(got) != 1 || got[0].Env != "staging" || got[0].Firing {
		t.Fatalf("staging clear: %+v", got)
	}
	firing := e.Firing()
	if len(firing) != 1 || firing[0].Env != "production" {
		t.Fatalf("firing: %+v, want production only", firing)
	}
}

func TestEngineIgnoresOlderSamples(t *testing.T) {
	e := incidents.NewEngine([]incidents.Rule{testRule})
	feed(e, "production", 1, 0, time.Minute)
	// A late good sample from before the newest one must not restart the timer.
	feed(e, "production", 0, 30*time.Second)
	if got := feed(e, "production", 1, 2*time.Minute); len(got) != 1 {
		t.Fatalf("%d transitions, want 1", len(got))
	}
}

func TestEngineFiringSorted(t *testing.T) {
	other := testRule
	other.Name = "another"
	e := incidents.NewEngine([]incidents.Rule{testRule, other})
	feed(e, "staging", 1, 0, 2*time.Minute)
	e.Observe(incidents.Sample{Env: "production", Metric: "m", Value: 1, At: t0})
	e.Observe(incidents.Sample{Env: "production", Metric: "m", Value: 7, At: t0.Add(3 * time.Minute), Detail: "7 errors"})
	var got []string
	for _, tr := range e.Firing() {
		got = append(got, fmt.Sprintf("%s/%s=%v %s", tr.Env, tr.Rule.Name, tr.Value, tr.Detail))
	}
	want := "production/another=7 7 errors|production/errors=7 7 errors|staging/another=1 |staging/errors=1 "
	if g := strings.Join(got, "|"); g != want {
		t.Fatalf("firing:\n got %s\nwant %s", g, want)
	}
}

func TestEngineConcurrent(t *testing.T) {
	e := incidents.NewEngine([]incidents.Rule{testRule})
	const envs = 8
	var wg sync.WaitGroup
	fired := make([]int, envs)
	for i := range envs {
		wg.Go(func() {
			env := fmt.Sprintf("env%d", i)
			for s := range 10 {
				fired[i] += len(feed(e, env, 1, time.Duration(s)*30*time.Second))
				e.Firing()
			}
		})
	}
	wg.Wait()
	for i, n := range fired {
		if n != 1 {
			t.Errorf("env%d: %d transitions, want 1", i, n)
		}
	}
	if n := len(e.Firing()); n != envs {
		t.Errorf("%d firing, want %d", n, envs)
	}
}

func TestTransitionAlert(t *testing.T) {
	firing := incidents.Transition{Rule: testRule, Env: "production", Firing: true, Since: t0, Value: 0.5, Detail: "db: connection refused"}
	a := firing.Alert()
	if a.Key != "production/errors" || a.Source != "monitor" || a.Env != "production" || a.Name != "errors" ||
		a.Severity != incidents.Critical || !a.Firing || a.Summary != "errors for 2m: db: connection refused" ||
		a.Count != 1 || !a.StartsAt.Equal(t0) || !a.EndsAt.IsZero() || a.Labels["metric"] != "m" || a.Labels["value"] != "0.5" {
		t.Errorf("firing alert = %+v", a)
	}
	resolved := incidents.Transition{Rule: testRule, Env: "staging", Since: t0, Ended: t0.Add(time.Hour)}
	a = resolved.Alert()
	if a.Key != "staging/errors" || a.Firing || a.Summary != "errors for 2m" || !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("resolved alert = %+v", a)
	}
}

func TestRuleValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*incidents.Rule)
		want string
	}{
		{func(r *incidents.Rule) { r.Name = "" }, "rule without a name"},
		{func(r *incidents.Rule) { r.Metric = "" }, "rule errors: no metric"},
		{func(r *incidents.Rule) { r.Op = "==" }, `rule errors: operator "==" (want >, <, >= or <=)`},
		{func(r *incidents.Rule) { r.For = -time.Second }, "rule errors: negative duration -1s"},
		{func(r *incidents.Rule) { r.Severity = "info" }, `rule errors: severity "info" (want warning or critical)`},
	} {
		r := testRule
		c.edit(&r)
		if err := r.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

func TestRuleOperators(t *testing.T) {
	for _, c := range []struct {
		op    string
		value float64
		fires bool
	}{
		{">=", 1, true}, {">=", 0.5, false},
		{"<=", 1, true}, {"<=", 1.5, false},
		{"!=", 2, false}, // unknown operators never hold
	} {
		r := testRule
		r.Op, r.Value, r.For = c.op, 1, 0
		e := incidents.NewEngine([]incidents.Rule{r})
		if got := feed(e, "production", c.value, 0); (len(got) == 1) != c.fires {
			t.Errorf("%v %s 1: %d transitions, want fired=%v", c.value, c.op, len(got), c.fires)
		}
	}
}
