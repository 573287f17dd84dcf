package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/ops"
)

// incidentPolicy is the configured cadence and auto-declaration.
func incidentPolicy(cfg *config.Config) bot.IncidentPolicy {
	c := incidents.DefaultCadence()
	c.SEV1, c.SEV2 = cfg.Alerts.SEV1Every, cfg.Alerts.SEV2Every
	return bot.IncidentPolicy{Cadence: c, AutoDeclare: cfg.Alerts.AutoIncident}
}

// diagnosticsLogLines is how much of the live container's log is gathered.
const diagnosticsLogLines = 500

// Diagnostics gathers the live slot's /health answer, the last log lines of
// its container and the deployment state, with every secret the bot knows
// redacted (its own and the env file's), named or not.
func (c chatEnvironments) Diagnostics(ctx context.Context, env string) (string, error) {
	e, err := c.o.Env(env)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	live, port, err := e.Proxy.LiveSlot(ctx)
	fmt.Fprintf(&b, "# Diagnostics of %s at %s\n\n## Proxy\nlive slot: %s (port %d) %v\n", env, time.Now().UTC().Format(time.RFC3339), live, port, errOrEmpty(err))
	if !live.Valid() {
		live = ops.Blue
	}
	spec := e.Env.Slots[live]
	h := e.Prober.Probe(ctx, spec.HealthURL)
	hj, _ := json.MarshalIndent(h, "", "  ")
	fmt.Fprintf(&b, "\n## /health of %s (%s)\n%s\n", live, spec.HealthURL, hj)
	logs, err := e.Engine.Logs(ctx, spec.Container, diagnosticsLogLines)
	fmt.Fprintf(&b, "\n## Last %d log lines of %s %s\n%s\n", diagnosticsLogLines, spec.Container, errOrEmpty(err), logs)
	if sf := e.State; sf != nil {
		st, err := sf.Read(ctx)
		sj, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(&b, "\n## deployment-state.json %s\n%s\n", errOrEmpty(err), sj)
	}
	return e.appDB.redactor().Redact(b.String()), nil
}

func errOrEmpty(err error) string {
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return ""
}
