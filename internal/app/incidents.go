package app

import (
	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/internal/config"
)

// incidentPolicy is the configured cadence and auto-declaration.
func incidentPolicy(cfg *config.Config) bot.IncidentPolicy {
	c := incidents.DefaultCadence()
	c.SEV1, c.SEV2 = cfg.Alerts.SEV1Every, cfg.Alerts.SEV2Every
	return bot.IncidentPolicy{Cadence: c, AutoDeclare: cfg.Alerts.AutoIncident}
}
