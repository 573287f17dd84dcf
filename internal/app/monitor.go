package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
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

// resourceEvery is how often the slower readings are taken: container
// restarts and memory (Docker stats takes a second or two) and the age of
// the newest snapshot.
const resourceEvery = 30 * time.Second

// monitor watches one environment's live slot on the leader until ctx
// ends. /health is probed at a fixed rate — every health interval, every
// unhealthy interval while it is not healthy — and its samples reach the
// rules at once; the slower readings run on their own loop so they never
// delay detection. Each rule transition becomes an alert through the bot.
// It returns once both loops have.
func (a *App) monitor(ctx context.Context, eo *EnvOps, engine *incidents.Engine) {
	observe := func(samples []incidents.Sample) {
		for _, s := range samples {
			for _, t := range engine.Observe(s) {
				if err := a.bot.HandleAlert(ctx, t.Alert()); err != nil && ctx.Err() == nil {
					a.log.Error().Err(err).Str("env", eo.Env.Name).Str("rule", t.Rule.Name).Msg("handling an alert failed")
				}
			}
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait() // the slower readings stop with the health probes
	wg.Go(func() {
		restarts := restartWindow{}
		for {
			observe(a.resourceSamples(ctx, eo, time.Now(), &restarts))
			select {
			case <-ctx.Done():
				return
			case <-time.After(resourceEvery):
			}
		}
	})
	next := time.Now()
	for {
		// Samples carry the scheduled time, not the moment the probe
		// happened to run, so a rule's duration is met on the tick that
		// completes it instead of one tick later.
		samples, healthy := a.healthSamples(ctx, eo, next)
		observe(samples)
		every := a.cfg.Alerts.HealthInterval
		if !healthy {
			every = a.cfg.Alerts.UnhealthyInterval
		}
		next = next.Add(every)
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		} else {
			next = time.Now() // fell behind: do not burst to catch up
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// liveSpec is the live slot of an environment and how to reach it.
func liveSpec(ctx context.Context, eo *EnvOps) (ops.Slot, ops.SlotSpec, error) {
	live, _, err := eo.Proxy.LiveSlot(ctx)
	if err != nil {
		return "", ops.SlotSpec{}, err
	}
	return live, eo.Env.Slots[live], nil
}

// healthSamples probes the live slot's /health; it reports whether the slot
// is healthy. A host that cannot be reached, or a proxy configuration that
// cannot be read, is a sample of its own rule rather than silence.
func (a *App) healthSamples(ctx context.Context, eo *EnvOps, now time.Time) ([]incidents.Sample, bool) {
	env := eo.Env.Name
	live, spec, err := liveSpec(ctx, eo)
	if err != nil {
		if hostUnreachable(err) {
			return []incidents.Sample{{Env: env, Metric: incidents.MetricHostUnreachable, Value: 1, At: now, Detail: err.Error()}}, false
		}
		return []incidents.Sample{
			{Env: env, Metric: incidents.MetricHostUnreachable, Value: 0, At: now},
			{Env: env, Metric: incidents.MetricProxyUnreadable, Value: 1, At: now, Detail: err.Error()},
		}, false
	}
	h := eo.Prober.Probe(ctx, spec.HealthURL)
	detail := fmt.Sprintf("%s is %s", live, h.Status)
	if h.Problem != "" {
		detail += ": " + h.Problem
	}
	for _, c := range h.Failing() {
		detail += fmt.Sprintf("; %s %s %s", c.Name, c.Status, c.Message)
	}
	out := []incidents.Sample{
		{Env: env, Metric: incidents.MetricHostUnreachable, Value: 0, At: now},
		{Env: env, Metric: incidents.MetricProxyUnreadable, Value: 0, At: now},
		{Env: env, Metric: incidents.MetricHealthUnhealthy, Value: b2f(!h.Status.Serving()), At: now, Detail: detail},
		{Env: env, Metric: incidents.MetricHealthDegraded, Value: b2f(h.Status == ops.Degraded), At: now, Detail: detail},
	}
	if db, ok := h.Check("database"); ok {
		acquired, _ := db.Details["acquired_connections"].(float64)
		maxConns, _ := db.Details["max_connections"].(float64)
		if maxConns > 0 {
			out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricDBPoolRatio, Value: acquired / maxConns, At: now,
				Detail: fmt.Sprintf("%.0f of %.0f connections in use", acquired, maxConns)})
		}
		out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricDBErrors, Value: b2f(db.Status == "fail"), At: now, Detail: "database check: " + db.Message})
	}
	return out, h.Status == ops.Healthy
}

// resourceSamples reads the live container's restarts and memory, the
// error rate and p95 when a Prometheus URL is configured, the free disk
// where snapshots go, and the age of the newest snapshot.
func (a *App) resourceSamples(ctx context.Context, eo *EnvOps, now time.Time, restarts *restartWindow) []incidents.Sample {
	_, spec, err := liveSpec(ctx, eo)
	if err != nil {
		return nil // healthSamples reports it
	}
	env := eo.Env.Name
	var out []incidents.Sample
	if info, err := eo.Engine.Inspect(ctx, spec.Container); err == nil && info.Exists {
		n := restarts.observe(info.ID, info.RestartCount, now)
		out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricRestarts10m, Value: float64(n), At: now,
			Detail: fmt.Sprintf("%s restarted %d times in 10m", spec.Container, n)})
		if info.Running {
			if st, err := eo.Engine.Stats(ctx, spec.Container); err == nil && st.MemLimit > 0 {
				out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricMemoryRatio, Value: st.MemPercent / 100, At: now,
					Detail: fmt.Sprintf("memory %.0f%% of its limit", st.MemPercent)})
			}
		}
	}
	if eo.Metrics != nil {
		if er, p95, err := eo.Metrics.RequestRates(ctx); err == nil {
			out = append(out,
				incidents.Sample{Env: env, Metric: incidents.MetricErrorRate, Value: er, At: now, Detail: fmt.Sprintf("%.1f%% of requests failing", er*100)},
				incidents.Sample{Env: env, Metric: incidents.MetricP95Seconds, Value: p95, At: now, Detail: fmt.Sprintf("p95 %.0f ms", p95*1000)})
		}
	}
	if dir := eo.SnapshotDir; dir != "" {
		if free, total, err := eo.DiskFree(dir); err == nil && total > 0 {
			ratio := float64(free) / float64(total)
			out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricDiskFreeRatio, Value: ratio, At: now,
				Detail: fmt.Sprintf("%.0f%% free where snapshots go (%s)", ratio*100, dir)})
		}
	}
	if list, err := eo.Snapshots.List(ctx); err == nil && len(list) > 0 {
		age := now.Sub(list[0].CreatedAt).Hours()
		out = append(out, incidents.Sample{Env: env, Metric: incidents.MetricSnapshotAgeHours, Value: age, At: now,
			Detail: fmt.Sprintf("newest snapshot %s is %.0fh old", list[0].Name, age)})
	}
	return out
}

// hostUnreachable reports whether err is a failure to reach the
// environment's host (SSH down, key refused) rather than of what runs there.
func hostUnreachable(err error) bool {
	var he *host.Error
	var hk *host.HostKeyError
	return errors.As(err, &he) || errors.As(err, &hk)
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
