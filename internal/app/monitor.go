package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
)

// rules are the built-in alert rules with the configured durations.
func (a *App) rules() []incidents.Rule {
	rules := incidents.DefaultRules()
	for i, r := range rules {
		if d, ok := a.cfg.Alerts.For[r.Name]; ok {
			rules[i].For = d
			rules[i].Summary = strings.Replace(r.Summary, shortDur(r.For), shortDur(d), 1)
		}
	}
	return rules
}

// shortDur writes 2m0s as 2m, as the rules' summaries do.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// monitor watches one environment's live slot on the leader: /health
// (every health interval, faster while not healthy), the database pool from
// its details, container restarts and memory, and the age of the newest
// snapshot. Samples go through the rule engine; each transition becomes an
// alert through the bot.
func (a *App) monitor(ctx context.Context, eo *EnvOps, engine *incidents.Engine) {
	restarts := restartWindow{}
	for {
		now := time.Now()
		samples, healthy := a.sample(ctx, eo, now, &restarts)
		for _, s := range samples {
			for _, t := range engine.Observe(s) {
				if err := a.bot.HandleAlert(ctx, t.Alert()); err != nil && ctx.Err() == nil {
					a.log.Error().Err(err).Str("env", eo.Env.Name).Str("rule", t.Rule.Name).Msg("handling an alert failed")
				}
			}
		}
		wait := a.cfg.Alerts.HealthInterval
		if !healthy {
			wait = a.cfg.Alerts.UnhealthyInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// sample reads what the rules need; it reports whether the live slot is
// healthy.
func (a *App) sample(ctx context.Context, eo *EnvOps, now time.Time, restarts *restartWindow) ([]incidents.Sample, bool) {
	env := eo.Env.Name
	live, _, err := eo.Proxy.LiveSlot(ctx)
	if err != nil {
		return nil, true // the proxy configuration is status's business; no live slot to watch
	}
	spec := eo.Env.Slots[live]
	h := ops.HTTPProber{}.Probe(ctx, spec.HealthURL)
	sample := func(metric string, v float64, detail string) incidents.Sample {
		return incidents.Sample{Env: env, Metric: metric, Value: v, At: now, Detail: detail}
	}
	detail := fmt.Sprintf("%s is %s", live, h.Status)
	if h.Problem != "" {
		detail += ": " + h.Problem
	}
	for _, c := range h.Failing() {
		detail += fmt.Sprintf("; %s %s %s", c.Name, c.Status, c.Message)
	}
	out := []incidents.Sample{
		sample(incidents.MetricHealthUnhealthy, b2f(!h.Status.Serving()), detail),
		sample(incidents.MetricHealthDegraded, b2f(h.Status == ops.Degraded), detail),
	}
	if db, ok := h.Check("database"); ok {
		acquired, _ := db.Details["acquired_connections"].(float64)
		maxConns, _ := db.Details["max_connections"].(float64)
		if maxConns > 0 {
			out = append(out, sample(incidents.MetricDBPoolRatio, acquired/maxConns, fmt.Sprintf("%.0f of %.0f connections in use", acquired, maxConns)))
		}
		out = append(out, sample(incidents.MetricDBErrors, b2f(db.Status == "fail"), "database check: "+db.Message))
	}
	if info, err := eo.Engine.Inspect(ctx, spec.Container); err == nil && info.Exists {
		n := restarts.observe(info.ID, info.RestartCount, now)
		out = append(out, sample(incidents.MetricRestarts10m, float64(n), fmt.Sprintf("%s restarted %d times in 10m", spec.Container, n)))
		if info.Running {
			if st, err := eo.Engine.Stats(ctx, spec.Container); err == nil && st.MemLimit > 0 {
				out = append(out, sample(incidents.MetricMemoryRatio, st.MemPercent/100, fmt.Sprintf("memory %.0f%% of its limit", st.MemPercent)))
			}
		}
	}
	if list, err := eo.Snapshots.List(ctx); err == nil && len(list) > 0 {
		age := now.Sub(list[0].CreatedAt).Hours()
		out = append(out, sample(incidents.MetricSnapshotAgeHours, age, fmt.Sprintf("newest snapshot %s is %.0fh old", list[0].Name, age)))
	}
	return out, h.Status == ops.Healthy
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// restartWindow counts a container's restarts over the last 10 minutes from
// Docker's cumulative restart count.
type restartWindow struct {
	id     string
	counts []struct {
		at time.Time
		n  int
	}
}

func (w *restartWindow) observe(id string, count int, now time.Time) int {
	if id != w.id { // a new container starts a new count
		w.id, w.counts = id, nil
	}
	w.counts = append(w.counts, struct {
		at time.Time
		n  int
	}{now, count})
	for len(w.counts) > 1 && now.Sub(w.counts[0].at) > 10*time.Minute {
		w.counts = w.counts[1:]
	}
	return count - w.counts[0].n
}
