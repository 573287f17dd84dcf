package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/ops"
)

// StatusReader reads the observed state of an environment.
type StatusReader interface {
	Status(ctx context.Context, env string) (ops.EnvStatus, error)
}

// Options configure a Bot.
type Options struct {
	Environments []string // known environment names
	Authorizer   *Authorizer
	Auditor      Auditor
	Status       StatusReader
	Envs         Environments
	Ops          Operations
	Locks        ops.Locker
	Channels     Channels
	Approvals    Approvals
	Alerts       AlertStore
	Incidents    IncidentStore
	Incident     IncidentPolicy
	Secrets      SecretStore
	// SecretPolicy is how often each secret, by NAME, must be rotated.
	SecretPolicy map[string]time.Duration
	// DefaultSecrets are the names of SecretPolicy that come from the
	// built-in default: an environment whose env file lacks one is not
	// reminded of it. Any other name its env file lacks is reported once
	// as a configuration problem.
	DefaultSecrets map[string]bool
	// EnvFiles tells which secrets each environment's env file holds; nil
	// reminds of every secret of the policy everywhere.
	EnvFiles    EnvFiles
	Maintenance MaintenanceStore
	// Sizes remember the databases' sizes for the weekly report.
	Sizes DBSizeStore
	// MaintenanceRules are the team's rules for maintenance windows.
	MaintenanceRules ops.MaintenanceRules
	// Outbox records what the messages of operations show, so the leader
	// settles them; nil leaves them to the replica that ran the operation.
	Outbox MessageOutbox
	// Pager pages beyond chat; optional.
	Pager  Pager
	Logger zerolog.Logger
	Now    func() time.Time
}

// handler runs one parsed, authorised command.
type handler func(ctx context.Context, req Request, cmd Command, rw Responder) error

// Bot answers commands. It is safe for concurrent use.
type Bot struct {
	handlers map[Name]handler
	envs     []string
	authz    *Authorizer
	audit    Auditor
	status   StatusReader
	envOps   Environments
	ops      Operations
	locks    ops.Locker
	channels Channels
	approval Approvals
	poster   Poster
	progress progress
	outbox   MessageOutbox
	alerts   AlertStore
	pager    Pager
	alertQ   alertQueue

	incidents      IncidentStore
	incidentPolicy IncidentPolicy
	secrets        SecretStore
	secretPolicy   map[string]time.Duration
	held           heldSecrets
	maint          MaintenanceStore
	sizes          DBSizeStore
	maintRules     ops.MaintenanceRules
	log            zerolog.Logger
	now            func() time.Time
}

// New returns a Bot.
func New(o Options) *Bot {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Approvals.TTL <= 0 {
		o.Approvals.TTL = 30 * time.Minute
	}
	b := &Bot{envs: o.Environments, authz: o.Authorizer, audit: o.Auditor, status: o.Status, envOps: o.Envs, ops: o.Ops, outbox: o.Outbox,
		locks: o.Locks, channels: o.Channels, approval: o.Approvals, alerts: o.Alerts, incidents: o.Incidents, incidentPolicy: o.Incident,
		secrets: o.Secrets, secretPolicy: o.SecretPolicy,
		held: heldSecrets{files: o.EnvFiles, defaults: o.DefaultSecrets}, maint: o.Maintenance, sizes: o.Sizes, maintRules: o.MaintenanceRules.WithDefaults(),
		log: o.Logger, now: o.Now, pager: o.Pager}
	b.handlers = b.routes()
	return b
}

// SetPoster gives the bot the chat it posts to; the Slack adapter needs the
// bot first, so it comes after New.
func (b *Bot) SetPoster(p Poster) { b.poster = p }

// readOnly permissions may run while the audit log cannot be written: the
// on-call engineer must still see what is going on.
var readOnly = map[string]bool{"status": true, "history": true, "locks": true, "snapshot.list": true, "incident.list": true}

// HandleCommand parses and runs one command, replying to the requester. The
// returned error is for the log: the requester has already been told.
func (b *Bot) HandleCommand(ctx context.Context, req Request, rw Responder) error {
	res := Parse(req.Text, b.envs)
	switch {
	case res.Ignore:
		return nil
	case res.Command == nil:
		return rw.Reply(ctx, Textf(res.Reply))
	}
	cmd := *res.Command
	if cmd.Name == NameHelp {
		return rw.Reply(ctx, b.help(ctx, req.User, cmd))
	}
	if !b.gate(ctx, req, cmd.Permission(), cmd.Env, "", rw) {
		return nil
	}
	return b.handlers[cmd.Name](ctx, req, cmd, rw)
}

// gate decides whether req's user may use perm in env, audits the
// decision (on says what it acts on, e.g. an operation's id), and tells a
// refused user why. It is the one check of commands and buttons alike.
func (b *Bot) gate(ctx context.Context, req Request, perm, env, on string, rw Responder) bool {
	allowed, why := b.authz.Decide(ctx, req.User, perm, env)
	return b.decided(ctx, req, perm, env, allowed, why, on, rw)
}

// decided audits a decision made by gate or by a rule of its own (the
// requester may not approve their own request) and tells a refused user
// why. A change whose audit row cannot be written is refused; reads go on.
func (b *Bot) decided(ctx context.Context, req Request, perm, env string, allowed bool, why, on string, rw Responder) bool {
	detail := why
	if on != "" {
		detail += " (" + on + ")"
	}
	if err := b.record(ctx, req, perm, env, allowed, detail); err != nil && allowed && !readOnly[perm] {
		b.log.Error().Err(err).Str("user", req.User).Str("action", perm).Msg("audit log write failed; refusing")
		_ = rw.Reply(ctx, Textf(":warning: The audit log cannot be written right now, so `"+perm+"` is refused. Read-only commands still work; check the bot's database."))
		return false
	}
	if !allowed {
		_ = rw.Reply(ctx, Textf(":no_entry: "+why))
	}
	return allowed
}

func (b *Bot) record(ctx context.Context, req Request, perm, env string, allowed bool, why string) error {
	d := Allowed
	if !allowed {
		d = Denied
	}
	err := b.audit.Audit(ctx, AuditEntry{At: b.now(), Actor: req.User, Action: perm, Environment: env, Decision: d, Detail: why})
	if err != nil {
		return fmt.Errorf("audit %s by %s: %w", perm, req.User, err)
	}
	return nil
}
