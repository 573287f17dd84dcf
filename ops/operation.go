package ops

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind is what an operation does.
type Kind string

// Operation kinds.
const (
	KindDeploy   Kind = "deploy"
	KindRollback Kind = "rollback"
	KindSnapshot Kind = "snapshot"
	KindRestore  Kind = "restore"
	KindDB       Kind = "db" // database maintenance: ANALYZE, VACUUM, REINDEX
)

// Step is a state of an operation's journal (DESIGN.md §4). The steps up to
// Done happen in this order; Done, Failed, RolledBack and NeedsAttention end
// an operation.
type Step string

// Operation steps.
const (
	StepRequested      Step = "requested"
	StepApproved       Step = "approved"
	StepLocked         Step = "locked"
	StepSnapshotted    Step = "snapshotted"
	StepMigrated       Step = "migrated"
	StepStarted        Step = "started"
	StepHealthy        Step = "healthy"
	StepSwitched       Step = "switched"
	StepVerified       Step = "verified"
	StepDone           Step = "done"
	StepFailed         Step = "failed"
	StepRolledBack     Step = "rolled_back"
	StepNeedsAttention Step = "needs_attention"
)

// Terminal reports whether the step ends an operation.
func (s Step) Terminal() bool {
	switch s {
	case StepDone, StepFailed, StepRolledBack, StepNeedsAttention:
		return true
	}
	return false
}

// Phase says whether a journal entry opens or closes a step.
type Phase string

// Journal phases: every step is written before (Begin) and after (End or
// Fail) it runs, so a restart knows whether a step was under way.
const (
	PhaseBegin Phase = "begin"
	PhaseEnd   Phase = "end"
	PhaseFail  Phase = "fail"
	PhaseNote  Phase = "note"
)

// JournalEntry is one line of an operation's journal.
type JournalEntry struct {
	At     time.Time `json:"at"`
	Step   Step      `json:"step"`
	Phase  Phase     `json:"phase"`
	Detail string    `json:"detail,omitempty"`
}

// Operation is a durable deploy, rollback, snapshot or restore.
type Operation struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Env       string    `json:"env"`
	Requester string    `json:"requester"`
	Reason    string    `json:"reason,omitempty"`
	State     Step      `json:"state"` // the last step reached
	Version   string    `json:"version,omitempty"`
	Image     string    `json:"image,omitempty"`    // image reference deployed
	ImageID   string    `json:"image_id,omitempty"` // its content id, bound to approvals
	FromSlot  Slot      `json:"from_slot,omitempty"`
	ToSlot    Slot      `json:"to_slot,omitempty"`
	PrevImage string    `json:"prev_image,omitempty"` // image of the slot that served before
	Snapshot  string    `json:"snapshot,omitempty"`   // snapshot taken by this operation
	Error     string    `json:"error,omitempty"`
	BakeUntil time.Time `json:"bake_until,omitzero"` // the previous slot stays warm until then
	Baked     bool      `json:"baked,omitempty"`     // the previous slot was stopped (or the bake ended)
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Chat holds where the operation is discussed (channel and thread), so
	// a restart can report there; opaque to ops.
	Chat map[string]string `json:"chat,omitempty"`
	// Approval is what a request waits for; nil for one that never did.
	Approval *Approval `json:"approval,omitempty"`
	// Approvers are the distinct users who approved it, in order.
	Approvers []string       `json:"approvers,omitempty"`
	Journal   []JournalEntry `json:"journal,omitempty"`
	// AfterSwitchErr is why an after-switch release command of a done
	// deploy failed: the release serves and stays, and the command is to
	// be run again by hand. Deploy sets it on the operation it returns;
	// the store keeps only the journal's word for it.
	AfterSwitchErr error `json:"-"`
}

// Journal stores operations durably. Record writes the operation's current
// fields and appends one journal entry in one transaction.
type Journal interface {
	Create(ctx context.Context, op Operation) error
	Record(ctx context.Context, op Operation, e JournalEntry) error
	Get(ctx context.Context, id string) (Operation, error)
	Unfinished(ctx context.Context) ([]Operation, error)
	History(ctx context.Context, env string, limit int) ([]Operation, error)
	// Unbaked lists done deploys whose previous slot has not been stopped.
	Unbaked(ctx context.Context) ([]Operation, error)
}

// Lock is the hold of one environment.
type Lock struct {
	Env        string    `json:"env"`
	Owner      string    `json:"owner"`  // operation id, or user id for a manual lock
	Holder     string    `json:"holder"` // the person on whose behalf it is held
	Reason     string    `json:"reason"`
	Manual     bool      `json:"manual"` // taken with the lock command; never expires
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"` // lease end; zero for manual locks
}

// LockError is returned when an environment is held by someone else; its
// message names the holder, the reason and since when.
type LockError struct{ Held Lock }

func (e *LockError) Error() string {
	kind := "a running operation"
	if e.Held.Manual {
		kind = "a manual lock"
	}
	return fmt.Sprintf("%s is locked by %s (%s, %q) since %s", e.Held.Env, e.Held.Holder, kind, e.Held.Reason, e.Held.AcquiredAt.UTC().Format(time.RFC3339))
}

// ErrNotFound is returned for an operation, snapshot or lock that does not
// exist.
var ErrNotFound = errors.New("not found")

// Locker holds one lock per environment. A lease that is not renewed
// expires, so a crashed bot does not block deploys forever; manual locks do
// not expire.
type Locker interface {
	Acquire(ctx context.Context, l Lock, now time.Time) error // *LockError when held and not expired
	Renew(ctx context.Context, env, owner string, now time.Time, lease time.Duration) error
	Release(ctx context.Context, env, owner string) error       // no error when not held by owner
	ForceRelease(ctx context.Context, env string) (Lock, error) // returns what was removed; ErrNotFound when free
	Get(ctx context.Context, env string, now time.Time) (Lock, bool, error)
	List(ctx context.Context, now time.Time) ([]Lock, error)
}

// Engine is what ops needs of the container engine.
type Engine interface {
	ContainerInspector
	Run(ctx context.Context, spec ContainerSpec) (string, error)
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, timeout time.Duration) error
	Remove(ctx context.Context, name string) error
	Stats(ctx context.Context, name string) (ContainerStats, error)
	ImageID(ctx context.Context, ref string) (string, error)
	Pull(ctx context.Context, ref string) error
	CopyFromImage(ctx context.Context, image, srcPath, destDir string) error
	// Logs is the last tail lines of a container's output.
	Logs(ctx context.Context, name string, tail int) (string, error)
	// RunOnce runs spec to completion in a container of its own, removed
	// afterwards; it kills the container when timeout is up.
	RunOnce(ctx context.Context, spec ContainerSpec, timeout time.Duration) (OneOff, error)
}

// Proxy is what ops needs of the reverse proxy.
type Proxy interface {
	LiveSlotReader
	// Switch points traffic at slot and returns the configuration it
	// replaced, for Restore.
	Switch(ctx context.Context, slot Slot) (previous []byte, err error)
	Restore(ctx context.Context, previous []byte) error
	// SyncFile makes the saved configuration hold what the proxy runs,
	// which serves the traffic (a switch may have loaded one and not saved
	// it), and says what it repaired: "" when they agreed.
	SyncFile(ctx context.Context) (repaired string, err error)
}

// SnapshotInfo describes one database snapshot.
type SnapshotInfo struct {
	Name      string    `json:"name"` // file name, togather_<db>_<YYYYMMDD_HHMMSS>_<reason>.sql.gz
	Path      string    `json:"path"`
	Database  string    `json:"database"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	Size      int64     `json:"size"` // compressed bytes
	SHA256    string    `json:"sha256"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Progress reports how far a long step is.
type Progress struct {
	Bytes   int64
	Elapsed time.Duration
}

// Snapshotter dumps, lists and restores the application database.
type Snapshotter interface {
	Create(ctx context.Context, reason string, progress func(Progress)) (SnapshotInfo, error)
	List(ctx context.Context) ([]SnapshotInfo, error) // newest first
	Restore(ctx context.Context, name string, progress func(Progress)) error
	Verify(ctx context.Context, name string) (VerifyResult, error)
	Prune(ctx context.Context, now time.Time, dryRun bool) ([]SnapshotInfo, error)
}

// VerifyResult is the outcome of restoring a snapshot into a scratch
// database and counting rows.
type VerifyResult struct {
	Snapshot  string           `json:"snapshot"`
	Tables    int              `json:"tables"`
	RowCounts map[string]int64 `json:"row_counts"`
	Mismatch  []string         `json:"mismatch,omitempty"` // tables whose count differs from the source
}

// Migration is one migration file pair.
type Migration struct {
	Version uint   `json:"version"`
	Name    string `json:"name"`
	UpSQL   string `json:"-"`
	HasDown bool   `json:"has_down"`
}

// Migrator applies the application's migrations from a directory.
type Migrator interface {
	// Version is the applied version; dirty when a migration failed half-way.
	Version(ctx context.Context) (version uint, dirty bool, err error)
	// Pending lists the migrations in dir above the applied version.
	Pending(ctx context.Context, dir string) ([]Migration, error)
	Up(ctx context.Context, dir string) error
}

// Deployment is one entry of Togather's deployment-state.json
// (current_deployment / previous_deployment), kept in sync for people who
// still use the scripts.
type Deployment struct {
	ID           string    `json:"id"`
	Version      string    `json:"version"`
	GitCommit    string    `json:"git_commit"`
	Image        string    `json:"docker_image,omitempty"`
	DeployedAt   time.Time `json:"deployed_at"`
	DeployedBy   string    `json:"deployed_by"`
	ActiveSlot   Slot      `json:"active_slot"`
	HealthStatus string    `json:"health_status"` // healthy, degraded, unhealthy, unknown
	Status       string    `json:"status"`        // active, rolled_back
}

// DeploymentState is the part of deployment-state.json the bot maintains.
type DeploymentState struct {
	Environment string      `json:"environment"`
	Current     *Deployment `json:"current_deployment"`
	Previous    *Deployment `json:"previous_deployment"`
	Locked      bool        `json:"-"` // mirrored into the file's lock object
	LockedBy    string      `json:"-"`
}

// StateFile reads and writes deployment-state.json. Write keeps the keys
// the bot does not own and replaces the file atomically.
type StateFile interface {
	Read(ctx context.Context) (DeploymentState, error) // a missing file is an empty state
	Write(ctx context.Context, s DeploymentState) error
}

// RequestMetrics reports the share of failing requests (0–1) and the p95
// latency in seconds of an environment, from its metrics server.
type RequestMetrics interface {
	RequestRates(ctx context.Context) (errorRate, p95Seconds float64, err error)
}
