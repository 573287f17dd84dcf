package incidents

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Metric names the monitors report and DefaultRules watch.
const (
	MetricHealthUnhealthy  = "health_unhealthy"   // 1 when /health is unhealthy or unreachable, else 0
	MetricHealthDegraded   = "health_degraded"    // 1 when /health is degraded, else 0
	MetricErrorRate        = "error_rate"         // fraction of requests failing, 0–1
	MetricDBErrors         = "db_errors"          // database connection failures since the last sample
	MetricDiskFreeRatio    = "disk_free_ratio"    // free disk space, 0–1
	MetricRestarts10m      = "restarts_10m"       // container restarts in the last 10 minutes
	MetricP95Seconds       = "p95_seconds"        // p95 response time
	MetricDBPoolRatio      = "db_pool_ratio"      // database pool in use, 0–1
	MetricMemoryRatio      = "memory_ratio"       // container memory usage over its limit, 0–1
	MetricSnapshotAgeHours = "snapshot_age_hours" // age of the newest database snapshot
	MetricHostUnreachable  = "host_unreachable"   // 1 when the environment's host cannot be reached, else 0
	MetricProxyUnreadable  = "proxy_unreadable"   // 1 when the live slot cannot be read from the proxy's configuration, else 0
)

// Rule is a threshold on one metric that must hold for a duration before
// it fires: the condition is "Metric Op Value".
type Rule struct {
	Name     string
	Metric   string
	Op       string // ">", "<", ">=" or "<="
	Value    float64
	For      time.Duration // how long the condition must hold; 0 fires on the first sample
	Severity Severity
	Summary  string // e.g. "health unhealthy for more than 2m"
}

// Sample is one observation of a metric in an environment.
type Sample struct {
	Env, Metric string
	Value       float64
	At          time.Time
	Detail      string // what the monitor saw, e.g. the failing health check
}

// Transition is a rule starting or stopping to fire in an environment.
type Transition struct {
	Rule   Rule
	Env    string
	Firing bool
	Since  time.Time // when the condition started to hold
	Ended  time.Time // zero while firing; when the condition stopped holding on resolution
	Value  float64   // the latest sample's value
	Detail string    // the latest sample's detail
}

// DefaultRules are the thresholds of DESIGN.md §6.
func DefaultRules() []Rule {
	return []Rule{
		{"health-unhealthy", MetricHealthUnhealthy, ">", 0, 2 * time.Minute, Critical, "health unhealthy for more than 2m"},
		{"error-rate", MetricErrorRate, ">", 0.05, 2 * time.Minute, Critical, "error rate above 5% for more than 2m"},
		{"db-errors", MetricDBErrors, ">", 0, time.Minute, Critical, "database connection failures for more than 1m"},
		{"disk-critical", MetricDiskFreeRatio, "<", 0.10, time.Minute, Critical, "disk free below 10%"},
		{"restarts", MetricRestarts10m, ">", 3, 0, Critical, "more than 3 container restarts in 10m"},
		{"health-degraded", MetricHealthDegraded, ">", 0, 5 * time.Minute, Warning, "health degraded for more than 5m"},
		{"latency-p95", MetricP95Seconds, ">", 1, 5 * time.Minute, Warning, "p95 response time above 1s for more than 5m"},
		{"db-pool", MetricDBPoolRatio, ">", 0.8, 5 * time.Minute, Warning, "database pool more than 80% used for more than 5m"},
		{"disk-low", MetricDiskFreeRatio, "<", 0.20, 5 * time.Minute, Warning, "disk free below 20%"},
		{"memory", MetricMemoryRatio, ">", 0.85, 5 * time.Minute, Warning, "memory above 85% of its limit for more than 5m"},
		{"snapshot-stale", MetricSnapshotAgeHours, ">", 24, 0, Warning, "no database snapshot in the last 24h"},
		{"host-unreachable", MetricHostUnreachable, ">", 0, 30 * time.Second, Critical, "host unreachable for more than 30s"},
		{"proxy-unreadable", MetricProxyUnreadable, ">", 0, time.Minute, Critical, "live slot unreadable from the proxy configuration for more than 1m"},
	}
}

// Validate reports what is wrong with a rule, such as one read from
// configuration.
func (r Rule) Validate() error {
	switch {
	case r.Name == "":
		return errors.New("rule without a name")
	case r.Metric == "":
		return fmt.Errorf("rule %s: no metric", r.Name)
	case r.Op != ">" && r.Op != "<" && r.Op != ">=" && r.Op != "<=":
		return fmt.Errorf("rule %s: operator %q (want >, <, >= or <=)", r.Name, r.Op)
	case r.For < 0:
		return fmt.Errorf("rule %s: negative duration %s", r.Name, r.For)
	case r.Severity != Warning && r.Severity != Critical:
		return fmt.Errorf("rule %s: severity %q (want warning or critical)", r.Name, r.Severity)
	}
	return nil
}

// holds reports whether v meets the rule's condition; an unknown operator
// never holds.
func (r Rule) holds(v float64) bool {
	switch r.Op {
	case ">":
		return v > r.Value
	case "<":
		return v < r.Value
	case ">=":
		return v >= r.Value
	case "<=":
		return v <= r.Value
	}
	return false
}

// clearFor is how long a firing rule's condition must stay false before it
// resolves: a quarter of its For, at least 30 s (so a rule with For 0 does
// not resolve on one good sample) and at most 2 min (so a long For does not
// keep a recovered alert open for long).
func (r Rule) clearFor() time.Duration {
	return min(max(r.For/4, 30*time.Second), 2*time.Minute)
}

// Alert is the transition as an alert group keyed "<env>/<rule name>".
func (t Transition) Alert() Alert {
	summary := t.Rule.Summary
	if t.Detail != "" {
		summary += ": " + t.Detail
	}
	return Alert{
		Key:      t.Env + "/" + t.Rule.Name,
		Source:   "monitor",
		Env:      t.Env,
		Name:     t.Rule.Name,
		Severity: t.Rule.Severity,
		Firing:   t.Firing,
		Summary:  summary,
		Labels:   map[string]string{"metric": t.Rule.Metric, "value": strconv.FormatFloat(t.Value, 'g', -1, 64)},
		Count:    1,
		StartsAt: t.Since,
		EndsAt:   t.Ended,
	}
}

// Engine evaluates samples against rules, per rule and environment. A rule
// fires once when its condition has held continuously for For (a sample
// exactly For after the first one that held counts) and resolves once when
// the condition has been false for the rule's clear period (For/4, between
// 30 s and 2 min). A sample that breaks the condition before For restarts
// the hold timer, and one that meets it again before the clear period
// restarts the clear timer, so an alternating condition neither fires nor
// resolves repeatedly. Between samples the last observed state counts. It
// is safe for concurrent use.
type Engine struct {
	rules    []Rule
	byMetric map[string][]int // metric → indexes into rules

	mu    sync.Mutex
	state map[stateKey]*ruleState
}

type stateKey struct {
	rule int
	env  string
}

// ruleState is one rule in one environment.
type ruleState struct {
	last       time.Time // the newest sample seen; older ones are ignored
	holdSince  time.Time // when the condition started to hold; zero while it does not
	clearSince time.Time // while firing, when the condition stopped holding; zero while it holds
	firing     bool
	value      float64
	detail     string
}

// NewEngine returns an engine for rules; rules are not validated here (see
// Rule.Validate) and one with an unknown operator never fires.
func NewEngine(rules []Rule) *Engine {
	e := &Engine{rules: slices.Clone(rules), byMetric: map[string][]int{}, state: map[stateKey]*ruleState{}}
	for i, r := range e.rules {
		e.byMetric[r.Metric] = append(e.byMetric[r.Metric], i)
	}
	return e
}

// Observe records a sample and returns the rules that started or stopped
// firing because of it. A sample older than the newest one already seen
// for a rule and environment is ignored.
func (e *Engine) Observe(s Sample) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	for _, i := range e.byMetric[s.Metric] {
		r := e.rules[i]
		k := stateKey{i, s.Env}
		st := e.state[k]
		if st == nil {
			st = &ruleState{}
			e.state[k] = st
		}
		if s.At.Before(st.last) {
			continue
		}
		st.last, st.value, st.detail = s.At, s.Value, s.Detail
		if r.holds(s.Value) {
			st.clearSince = time.Time{}
			if st.holdSince.IsZero() {
				st.holdSince = s.At
			}
			if !st.firing && s.At.Sub(st.holdSince) >= r.For {
				st.firing = true
				out = append(out, st.transition(r, s.Env))
			}
			continue
		}
		if !st.firing {
			st.holdSince = time.Time{}
			continue
		}
		if st.clearSince.IsZero() {
			st.clearSince = s.At
		}
		if s.At.Sub(st.clearSince) >= r.clearFor() {
			st.firing = false
			out = append(out, st.transition(r, s.Env))
			st.holdSince, st.clearSince = time.Time{}, time.Time{}
		}
	}
	return out
}

// Firing returns the rules currently firing, ordered by environment and
// rule name.
func (e *Engine) Firing() []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	for k, st := range e.state {
		if st.firing {
			out = append(out, st.transition(e.rules[k.rule], k.env))
		}
	}
	slices.SortFunc(out, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(a.Env, b.Env), cmp.Compare(a.Rule.Name, b.Rule.Name))
	})
	return out
}

func (st *ruleState) transition(r Rule, env string) Transition {
	t := Transition{Rule: r, Env: env, Firing: st.firing, Since: st.holdSince, Value: st.value, Detail: st.detail}
	if !st.firing {
		t.Ended = st.clearSince
	}
	return t
}
