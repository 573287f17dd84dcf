package bot

import (
	"context"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Poster posts and edits messages in channels and threads.
type Poster interface {
	// Post sends m to channel, into the thread of threadTS when set, and
	// returns the new message's timestamp.
	Post(ctx context.Context, channel, threadTS string, m Message) (string, error)
	Update(ctx context.Context, channel, ts string, m Message) error
}

// Environments runs the operations of the managed environments.
type Environments interface {
	Policy(env string) (ops.Policy, bool)
	Preflight(ctx context.Context, req ops.PreflightRequest) (ops.Report, error)
	Deploy(ctx context.Context, env string, req ops.DeployRequest) (ops.Operation, error)
	Rollback(ctx context.Context, env string, req ops.RollbackRequest) (ops.Operation, error)
	Restore(ctx context.Context, env string, req ops.RestoreRequest) (ops.Operation, error)
	Snapshots(env string) (ops.Snapshotter, bool)
	// Database inspects and maintains the environment's application
	// database; false for an unknown environment.
	Database(env string) (ops.DatabaseInspector, bool)
	// Maintenance switches the environment's proxy to a maintenance page
	// and back; false when it cannot.
	Maintenance(env string) (MaintenancePage, bool)
	// Diagnostics gathers what an investigation starts from: the live
	// slot's /health answer, the last log lines of its container and the
	// deployment state, with secrets redacted.
	Diagnostics(ctx context.Context, env string) (string, error)
}

// Uploader attaches a text file to a thread.
type Uploader interface {
	Upload(ctx context.Context, channel, threadTS, filename, content string) error
}

// Operations reads and moves operations in the journal. Transition is a
// compare-and-set: it moves the state only if it is one of from, so of two
// racing clicks exactly one wins.
type Operations interface {
	Create(ctx context.Context, op ops.Operation) error
	// SetChat records where the operation's request message is.
	SetChat(ctx context.Context, id string, chat map[string]string) error
	Get(ctx context.Context, id string) (ops.Operation, error)
	Transition(ctx context.Context, id string, from []ops.Step, to ops.Step, e ops.JournalEntry) (ops.Operation, bool, error)
	// Approve adds a distinct approver while the operation is in from and
	// journals e, in one compare-and-set; added is false for a second
	// approval by the same user.
	Approve(ctx context.Context, id, user string, from ops.Step, e ops.JournalEntry) (op ops.Operation, added bool, err error)
	History(ctx context.Context, env string, limit int) ([]ops.Operation, error)
	Unfinished(ctx context.Context) ([]ops.Operation, error)
}

// Chat keys of an operation's Chat map: where its request message is and
// what it acts on. What an approval needs and is bound to is the
// operation's Approval, never these.
const (
	chatChannel = "channel"
	chatTS      = "ts"
	chatTarget  = "target"           // a snapshot name for restores
	chatRestore = "restore_snapshot" // a rollback restores the pre-deploy snapshot first
)

// Channels are where the bot posts.
type Channels struct {
	Deploys        string
	AlertsWarning  string
	AlertsCritical string
	Incidents      string
	Announcements  string // maintenance announcements; the deploys channel when empty
	OncallGroup    string // user-group ID paged on critical alerts and SEV1
}

// Approvals is the approval policy shared by every environment.
type Approvals struct {
	TTL time.Duration // a request expires after this long (30 min default)
}
