// Package statefile keeps Togather's deploy/config/deployment-state.json —
// the state file of the deploy.sh scripts — in step with what the bot
// does, for the people who still use the scripts. It writes the format
// deploy.sh writes and checks (validate_state_file), replaces only the keys
// the bot owns, and replaces the file atomically.
package statefile

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

var _ ops.StateFile = (*File)(nil)

// LockTTL is how long a lock written to the file says it lasts, as
// deploy.sh's LOCK_TIMEOUT does.
const LockTTL = 30 * time.Minute

// newFileMode is the mode of a state file the bot creates (deploy.sh
// creates it 0600); an existing file keeps its mode.
const newFileMode = 0o600

// healthStatuses are the health_status values validate_state_file accepts.
var healthStatuses = map[string]bool{"healthy": true, "degraded": true, "unhealthy": true, "unknown": true}

// File is the state file of one environment. It is safe for concurrent use
// within a process; deploy.sh takes no lock on the file, so a script
// writing at the same moment can still lose one of the two writes.
type File struct {
	path  string
	env   string
	files host.Files
	// Now dates a lock the bot writes into the file; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex // serialises Write's read-modify-write cycles
}

// New returns the state file at path for environment env, on the bot's
// own machine.
func New(path, env string) *File {
	return OnHost(path, env, host.Local{}.Files())
}

// OnHost returns the state file at path on a host's file system.
func OnHost(path, env string, files host.Files) *File {
	return &File{path: path, env: env, files: files}
}

// deployment is current_deployment / previous_deployment as deploy.sh
// writes them.
type deployment struct {
	ID           string   `json:"id"`
	Version      string   `json:"version"`
	GitCommit    string   `json:"git_commit"`
	DeployedAt   string   `json:"deployed_at"`
	DeployedBy   string   `json:"deployed_by"`
	ActiveSlot   ops.Slot `json:"active_slot"`
	HealthStatus string   `json:"health_status"`
	Status       string   `json:"status"`
	Image        string   `json:"docker_image,omitempty"`
	Environment  string   `json:"environment"`
	// Slot is where the server's Go CLI (internal/deployment) keeps the
	// slot; read when active_slot is missing, never written.
	Slot ops.Slot `json:"slot,omitempty"`
}

// lock is the file's lock object as deploy.sh writes it (it also adds pid
// and hostname, which survive as long as the lock does).
type lock struct {
	Locked        bool   `json:"locked"`
	LockID        string `json:"lock_id,omitempty"`
	DeploymentID  string `json:"deployment_id,omitempty"`
	LockedBy      string `json:"locked_by,omitempty"`
	LockedAt      string `json:"locked_at,omitempty"`
	LockExpiresAt string `json:"lock_expires_at,omitempty"`
}

// complete reports whether l has every field validate_state_file requires
// of a held lock.
func (l lock) complete() bool {
	return l.Locked && l.LockID != "" && l.DeploymentID != "" && l.LockedBy != "" && l.LockedAt != "" && l.LockExpiresAt != ""
}

// document is the part of the file the bot reads.
type document struct {
	Environment string      `json:"environment"`
	Lock        lock        `json:"lock"`
	Current     *deployment `json:"current_deployment"`
	Previous    *deployment `json:"previous_deployment"`
}

// Read returns the state in the file. A missing file is an empty state of
// the file's environment; a file of another environment is an error.
func (f *File) Read(ctx context.Context) (ops.DeploymentState, error) {
	if err := ctx.Err(); err != nil {
		return ops.DeploymentState{}, err
	}
	data, err := f.load()
	if err != nil || data == nil {
		return ops.DeploymentState{Environment: f.env}, err
	}
	var doc document
	if err := json.Unmarshal(data, &doc); err != nil {
		return ops.DeploymentState{}, fmt.Errorf("read state file %s: %w", f.path, err)
	}
	if err := f.checkEnv(doc.Environment); err != nil {
		return ops.DeploymentState{}, err
	}
	s := ops.DeploymentState{Environment: f.env, Locked: doc.Lock.Locked}
	if s.Locked {
		s.LockedBy = doc.Lock.LockedBy
	}
	for _, c := range []struct {
		name string
		from *deployment
		to   **ops.Deployment
	}{{"current_deployment", doc.Current, &s.Current}, {"previous_deployment", doc.Previous, &s.Previous}} {
		if c.from == nil {
			continue
		}
		d, err := c.from.toOps()
		if err != nil {
			return ops.DeploymentState{}, fmt.Errorf("read state file %s: %s: %w", f.path, c.name, err)
		}
		*c.to = &d
	}
	return s, nil
}

// Write records s in the file: environment, current_deployment,
// previous_deployment and lock are replaced, every other key is kept as it
// was. The file is replaced atomically (temporary file, fsync, rename,
// fsync of the directory) and keeps its mode and owner; a new file is
// 0600. A state deploy.sh's validate_state_file would reject is refused,
// and so is a file that cannot be parsed: the old file stays as it was.
func (f *File) Write(ctx context.Context, s ops.DeploymentState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Environment != "" && s.Environment != f.env {
		return fmt.Errorf("write state file %s: it belongs to %s, not %s", f.path, f.env, s.Environment)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := f.load()
	if err != nil {
		return err
	}
	fields := map[string]json.RawMessage{}
	var old document
	if data != nil {
		if err := json.Unmarshal(data, &fields); err != nil {
			return fmt.Errorf("write state file %s: the existing file is malformed: %w", f.path, err)
		}
		if err := json.Unmarshal(data, &old); err != nil {
			return fmt.Errorf("write state file %s: the existing file is malformed: %w", f.path, err)
		}
		if fields == nil {
			return fmt.Errorf("write state file %s: the existing file holds null, not an object", f.path)
		}
		if err := f.checkEnv(old.Environment); err != nil {
			return err
		}
	}
	if err := f.setFields(fields, s, old.Lock); err != nil {
		return fmt.Errorf("write state file %s: %w", f.path, err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fields); err != nil {
		return fmt.Errorf("write state file %s: %w", f.path, err)
	}
	if err := host.WriteFileAtomic(f.files, f.path, out.Bytes(), newFileMode); err != nil {
		return fmt.Errorf("write state file %s: %w", f.path, err)
	}
	return nil
}

// setFields puts the keys the bot owns into fields. The lock of the file,
// old, is kept when s still mirrors it.
func (f *File) setFields(fields map[string]json.RawMessage, s ops.DeploymentState, old lock) error {
	if s.Current != nil {
		if err := validCurrent(*s.Current); err != nil {
			return fmt.Errorf("current_deployment: %w", err)
		}
	}
	var l any = lock{}
	if s.Locked {
		if old.complete() && old.LockedBy == s.LockedBy {
			l = nil // still the same lock: keep it, pid and hostname included
		} else {
			var err error
			if l, err = f.newLock(s.LockedBy); err != nil {
				return err
			}
		}
	}
	values := map[string]any{
		"environment":         f.env,
		"current_deployment":  f.fromOps(s.Current),
		"previous_deployment": f.fromOps(s.Previous),
	}
	if l != nil {
		values["lock"] = l
	}
	for key, v := range values {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		fields[key] = raw
	}
	return nil
}

// newLock is the lock object deploy.sh would write for a lock taken now by
// lockedBy, with ids of its shape (generate_id).
func (f *File) newLock(lockedBy string) (lock, error) {
	if lockedBy == "" {
		return lock{}, errors.New("lock: locked without locked_by")
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	at := now().UTC()
	lockID, err := newID("lock", at)
	if err != nil {
		return lock{}, err
	}
	depID, err := newID("dep", at)
	if err != nil {
		return lock{}, err
	}
	return lock{Locked: true, LockID: lockID, DeploymentID: depID, LockedBy: lockedBy,
		LockedAt: at.Format(time.RFC3339), LockExpiresAt: at.Add(LockTTL).Format(time.RFC3339)}, nil
}

// newID returns <prefix>_<16 hex digits of at in Unix ns>_<24 random hex
// digits>, the shape of deploy.sh's generate_id.
func newID(prefix string, at time.Time) (string, error) {
	random := make([]byte, 12)
	if _, err := rand.Read(random); err != nil {
		return "", fmt.Errorf("lock id: %w", err)
	}
	return fmt.Sprintf("%s_%016x_%s", prefix, at.UnixNano(), hex.EncodeToString(random)), nil
}

// validCurrent checks d against validate_state_file's rules for
// current_deployment (health_status is defaulted by fromOps).
func validCurrent(d ops.Deployment) error {
	var missing []string
	for _, field := range []struct{ name, value string }{
		{"id", d.ID}, {"version", d.Version}, {"git_commit", d.GitCommit}, {"deployed_by", d.DeployedBy},
	} {
		if field.value == "" {
			missing = append(missing, field.name)
		}
	}
	if d.DeployedAt.IsZero() {
		missing = append(missing, "deployed_at")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v", missing)
	}
	if !d.ActiveSlot.Valid() {
		return fmt.Errorf("active_slot %q is not blue or green", d.ActiveSlot)
	}
	if d.HealthStatus != "" && !healthStatuses[d.HealthStatus] {
		return fmt.Errorf("health_status %q is not healthy, degraded, unhealthy or unknown", d.HealthStatus)
	}
	return nil
}

// fromOps converts d to the file's shape; nil stays nil (JSON null).
func (f *File) fromOps(d *ops.Deployment) *deployment {
	if d == nil {
		return nil
	}
	health := d.HealthStatus
	if health == "" {
		health = "unknown"
	}
	return &deployment{ID: d.ID, Version: d.Version, GitCommit: d.GitCommit, DeployedAt: d.DeployedAt.UTC().Format(time.RFC3339),
		DeployedBy: d.DeployedBy, ActiveSlot: d.ActiveSlot, HealthStatus: health, Status: d.Status, Image: d.Image, Environment: f.env}
}

// toOps converts d from the file's shape.
func (d deployment) toOps() (ops.Deployment, error) {
	var at time.Time
	if d.DeployedAt != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, d.DeployedAt); err != nil {
			return ops.Deployment{}, fmt.Errorf("deployed_at: %w", err)
		}
	}
	slot := d.ActiveSlot
	if slot == "" {
		slot = d.Slot
	}
	return ops.Deployment{ID: d.ID, Version: d.Version, GitCommit: d.GitCommit, Image: d.Image, DeployedAt: at.UTC(),
		DeployedBy: d.DeployedBy, ActiveSlot: slot, HealthStatus: d.HealthStatus, Status: d.Status}, nil
}

// checkEnv refuses a file written for another environment. An empty
// environment (deploy.sh's first-run defect) belongs to anyone.
func (f *File) checkEnv(env string) error {
	if env != "" && env != f.env {
		return fmt.Errorf("state file %s is for environment %q, not %q", f.path, env, f.env)
	}
	return nil
}

// load returns the file's content, or nil when it does not exist.
func (f *File) load() ([]byte, error) {
	data, err := f.files.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	return data, nil
}
