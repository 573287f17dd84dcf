package bot

import (
	"context"
	"time"
)

// Decision is the outcome recorded for an audited request.
type Decision string

// Audit decisions.
const (
	Allowed Decision = "allowed"
	Denied  Decision = "denied"
)

// AuditEntry is one line of the audit log: who asked for what, where, and
// what was decided. Detail never holds a secret value.
type AuditEntry struct {
	At          time.Time
	Actor       string // Slack user ID, or "cli:<user>" for the terminal
	Action      string // permission name, e.g. "deploy" or "snapshot.restore"
	Environment string // empty when the action is not environment-scoped
	Decision    Decision
	Detail      string
}

// Auditor records audit entries.
type Auditor interface {
	Audit(ctx context.Context, e AuditEntry) error
}
