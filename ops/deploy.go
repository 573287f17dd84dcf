package ops

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Deployer runs deploys, rollbacks and their recovery on one environment.
// Every step is journaled before and after it runs, so a restarted bot can
// tell how far an operation got (Recover).
type Deployer struct {
	d DeployerDeps
}

// DeployerDeps are the adapters and settings of one environment.
type DeployerDeps struct {
	Env       Environment
	Engine    Engine
	Proxy     Proxy
	Page      MaintenancePage // the 503 page shown while a snapshot is restored
	Prober    Prober
	Journal   Journal
	Locker    Locker
	Snapshots Snapshotter
	Migrator  Migrator       // nil when the environment has no database migrations
	State     StateFile      // nil to leave deployment-state.json alone
	Metrics   RequestMetrics // nil without a metrics server; watch summaries then omit error rate and p95
	// Notify is told of every journal entry as it is written (chat
	// threads, terminal progress). It must not block for long.
	Notify func(op Operation, e JournalEntry)
	Now    func() time.Time
	HTTP   *http.Client // for verification through the proxy
	// MigrationsDir resolves Env.Migrations for an image to a directory of
	// the bot's machine (see the package function MigrationsDir, the
	// default); cleanup removes a copy.
	MigrationsDir func(ctx context.Context, image string) (dir string, cleanup func(), err error)
}

// NewDeployer returns a Deployer with defaults applied.
func NewDeployer(d DeployerDeps) *Deployer {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Notify == nil {
		d.Notify = func(Operation, JournalEntry) {}
	}
	if d.HTTP == nil {
		d.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	if d.MigrationsDir == nil {
		d.MigrationsDir = func(ctx context.Context, image string) (string, func(), error) {
			return MigrationsDir(ctx, d.Env.Migrations, d.Engine, image)
		}
	}
	p := &d.Env.Policy
	if p.HealthConsecutive <= 0 {
		p.HealthConsecutive = 3
	}
	if p.HealthTimeout <= 0 {
		p.HealthTimeout = 60 * time.Second
	}
	if p.HealthInterval <= 0 {
		p.HealthInterval = 2 * time.Second
	}
	if p.Lease <= 0 {
		p.Lease = DefaultLease
	}
	return &Deployer{d: d}
}

// Env is the environment this Deployer manages.
func (dp *Deployer) Env() Environment { return dp.d.Env }

// DeployRequest asks for one version to be deployed.
type DeployRequest struct {
	Version   string
	Requester string
	Reason    string
	// ImageID, when set, is the image the approvers saw: a different image
	// under the same reference fails the deploy.
	ImageID string
	// OpID continues an operation created earlier (by the approval flow);
	// empty creates a new one.
	OpID string
	Chat map[string]string
}

// NewOpID returns a new operation id, e.g. dep_18ebf513a8564e6f_432641bca898.
func NewOpID(kind Kind, now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := map[Kind]string{KindDeploy: "dep", KindRollback: "rbk", KindSnapshot: "snp", KindRestore: "rst", KindDB: "dbm"}[kind]
	return fmt.Sprintf("%s_%x_%s", prefix, now.UnixNano(), hex.EncodeToString(b[:]))
}

// run is one operation in progress.
type run struct {
	dp    *Deployer
	op    Operation
	lease *Lease // the environment's lock, once taken
	// migrated is set once migrations were applied: undoing the deploy
	// does not undo them.
	migrated bool
}

// record writes the operation and one journal entry, then notifies. The
// entry is written with a context that outlives cancellation: a journal
// that stops mid-way is what a restart cannot make sense of.
func (r *run) record(ctx context.Context, step Step, phase Phase, detail string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := r.dp.d.Now()
	r.op.UpdatedAt = now
	e := JournalEntry{At: now, Step: step, Phase: phase, Detail: detail}
	if err := r.dp.d.Journal.Record(ctx, r.op, e); err != nil {
		return fmt.Errorf("journal %s %s: %w", step, phase, err)
	}
	r.op.Journal = append(r.op.Journal, e)
	r.dp.d.Notify(r.op, e)
	return nil
}

// step runs fn between a begin and an end entry; on error it writes a fail
// entry and returns the error.
func (r *run) step(ctx context.Context, step Step, fn func() (string, error)) error {
	if r.lease != nil && r.lease.Lost() {
		return fmt.Errorf("the lock on %s was lost to another operation; stopping before %s", r.op.Env, step)
	}
	if err := r.record(ctx, step, PhaseBegin, ""); err != nil {
		return err
	}
	detail, err := fn()
	if err != nil {
		r.op.Error = fmt.Sprintf("%s: %v", step, err)
		_ = r.record(ctx, step, PhaseFail, err.Error())
		return fmt.Errorf("%s: %w", step, err)
	}
	r.op.State = step
	return r.record(ctx, step, PhaseEnd, detail)
}

// finish ends the operation in a terminal state.
func (r *run) finish(ctx context.Context, state Step, detail string) {
	r.op.State = state
	_ = r.record(ctx, state, PhaseEnd, detail)
}

// note writes an informational journal entry.
func (r *run) note(ctx context.Context, detail string) {
	_ = r.record(ctx, r.op.State, PhaseNote, detail)
}

// lock takes the environment's lease for the operation and renews it until
// the returned release is called.
func (r *run) lock(ctx context.Context) (release func(), err error) {
	d := r.dp.d
	r.lease, err = HoldLease(ctx, d.Locker, Lock{Env: r.op.Env, Owner: r.op.ID, Holder: r.op.Requester,
		Reason: fmt.Sprintf("%s %s", r.op.Kind, r.op.Version)}, d.Env.Policy.Lease, d.Now)
	if err != nil {
		return nil, err
	}
	return func() { r.lease.Release(ctx) }, nil
}

// Deploy runs the blue/green deploy: lock → snapshot → migrate → start the
// idle slot → health gate → switch → verify → done. A failure before the
// switch removes the new container and leaves the old slot serving; a
// failure at or after the switch restores the previous proxy configuration.
// The previous slot stays warm until Bake stops it. A failed after-switch
// command leaves the deploy done, with AfterSwitchErr set and no error.
func (dp *Deployer) Deploy(ctx context.Context, req DeployRequest) (Operation, error) {
	d := dp.d
	now := d.Now()
	r, err := dp.begin(ctx, req.OpID, Operation{ID: NewOpID(KindDeploy, now), Kind: KindDeploy, Env: d.Env.Name, Requester: req.Requester,
		Reason: req.Reason, State: StepRequested, Version: req.Version, Image: d.Env.ImageRef(req.Version),
		ImageID: req.ImageID, CreatedAt: now, UpdatedAt: now, Chat: req.Chat},
		fmt.Sprintf("deploy of %s to %s requested by %s", req.Version, d.Env.Name, req.Requester))
	if err != nil {
		return r.op, err
	}
	err = dp.deploy(ctx, r, req)
	return r.op, err
}

// begin continues the operation opID, which must still wait to run, or
// records fresh as a new one with a first note.
func (dp *Deployer) begin(ctx context.Context, opID string, fresh Operation, note string) (*run, error) {
	r := &run{dp: dp}
	if opID == "" {
		r.op = fresh
		if err := dp.d.Journal.Create(ctx, r.op); err != nil {
			return r, fmt.Errorf("%s: create operation: %w", fresh.Kind, err)
		}
		r.note(ctx, note)
		return r, nil
	}
	op, err := dp.d.Journal.Get(ctx, opID)
	if err != nil {
		return r, fmt.Errorf("%s: %w", fresh.Kind, err)
	}
	r.op = op
	if op.State != StepRequested && op.State != StepApproved {
		return r, fmt.Errorf("%s: operation %s is %s, not waiting to run", fresh.Kind, op.ID, op.State)
	}
	return r, nil
}

// lockStep takes the environment's lock as the operation's first step; if
// it cannot, the operation ends failed, having changed nothing.
func (r *run) lockStep(ctx context.Context) (release func(), err error) {
	err = r.step(ctx, StepLocked, func() (string, error) {
		var err error
		release, err = r.lock(ctx)
		return "lease " + r.dp.d.Env.Policy.Lease.String(), err
	})
	if err != nil {
		r.finish(ctx, StepFailed, "nothing was changed: "+err.Error())
		return nil, err
	}
	return release, nil
}

func (dp *Deployer) deploy(ctx context.Context, r *run, req DeployRequest) (err error) {
	d := dp.d
	release, err := r.lockStep(ctx)
	if err != nil {
		return err
	}
	defer release()

	// started is set once the new container may exist; switched once the
	// proxy may point at it. The deferred cleanup undoes exactly that much.
	var started bool
	var previous []byte
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		dp.undo(cctx, r, started, previous, err)
	}()

	if err = r.step(ctx, StepSnapshotted, func() (string, error) { return dp.resolve(ctx, r, req) }); err != nil {
		return err
	}
	if err = r.step(ctx, StepMigrated, func() (string, error) { return dp.migrateAndPrepare(ctx, r) }); err != nil {
		return err
	}
	if err = r.step(ctx, StepStarted, func() (string, error) {
		started = true
		return dp.startSlot(ctx, r)
	}); err != nil {
		return err
	}
	if err = r.step(ctx, StepHealthy, func() (string, error) { return dp.healthGate(ctx, r.op.ToSlot) }); err != nil {
		return err
	}
	if err = r.step(ctx, StepSwitched, func() (string, error) {
		prev, err := d.Proxy.Switch(ctx, r.op.ToSlot)
		previous = prev
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("traffic now goes to %s (port %d)", r.op.ToSlot, d.Env.Slots[r.op.ToSlot].HostPort), nil
	}); err != nil {
		return err
	}
	if err = r.step(ctx, StepVerified, func() (string, error) { return dp.verify(ctx, r.op.ToSlot, r.op.Version) }); err != nil {
		return err
	}
	r.op.BakeUntil = d.Now().Add(d.Env.Policy.Bake)
	dp.writeState(ctx, r, "active")
	msg := fmt.Sprintf("%s serves %s; %s stays warm until %s for a quick rollback",
		r.op.ToSlot, r.op.Version, r.op.FromSlot, r.op.BakeUntil.UTC().Format(time.RFC3339))
	if r.op.FromSlot == "" {
		msg = fmt.Sprintf("%s serves %s: the first deploy of %s, so there is no previous slot to roll back to", r.op.ToSlot, r.op.Version, d.Env.Name)
	}
	if _, rerr := dp.runRelease(ctx, r, "after-switch", d.Env.Release.AfterSwitch); rerr != nil {
		r.op.AfterSwitchErr = rerr
		msg += fmt.Sprintf("; but %v: the deploy stays, run the command again by hand", rerr)
	}
	r.finish(ctx, StepDone, msg)
	return nil
}

// resolve pins the operation's image and slots, then takes the snapshot.
func (dp *Deployer) resolve(ctx context.Context, r *run, req DeployRequest) (string, error) {
	d := dp.d
	id, err := dp.imageID(ctx, r.op.Image)
	if err != nil {
		return "", err
	}
	if req.ImageID != "" && req.ImageID != id {
		return "", fmt.Errorf("image %s is now %s, not %s as approved: the approval is void, ask again", r.op.Image, short(id), short(req.ImageID))
	}
	r.op.ImageID = id
	live, _, err := d.Proxy.LiveSlot(ctx)
	if err != nil {
		return "", fmt.Errorf("which slot is live: %w", err)
	}
	first, err := FirstDeploy(ctx, d.Engine, d.Env)
	switch {
	case err != nil:
		return "", err
	case first:
		// Nothing runs: the slot the proxy already names is the target,
		// and there is no previous one.
		r.op.ToSlot = live
	default:
		r.op.FromSlot, r.op.ToSlot = live, live.Other()
	}
	if info, err := d.Engine.Inspect(ctx, d.Env.Slots[live].Container); err == nil && info.Exists {
		r.op.PrevImage = info.Image
	}
	snap, err := d.Snapshots.Create(ctx, "pre-deploy-"+sanitize(r.op.Version), nil)
	if err != nil {
		return "", fmt.Errorf("snapshot before deploy (the deploy stops without one): %w", err)
	}
	r.op.Snapshot = snap.Name
	if first {
		return fmt.Sprintf("snapshot %s (%d bytes); first deploy: no container in either slot, so %s (the slot the proxy names) gets image %s",
			snap.Name, snap.Size, r.op.ToSlot, short(id)), nil
	}
	return fmt.Sprintf("snapshot %s (%d bytes); %s → %s, image %s", snap.Name, snap.Size, r.op.FromSlot, r.op.ToSlot, short(id)), nil
}

// FirstDeploy reports whether env has never been deployed: neither slot
// has a container.
func FirstDeploy(ctx context.Context, engine ContainerInspector, env Environment) (bool, error) {
	for _, slot := range Slots {
		c, err := engine.Inspect(ctx, env.Slots[slot].Container)
		if err != nil {
			return false, fmt.Errorf("is %s deployed: %w", env.Name, err)
		}
		if c.Exists {
			return false, nil
		}
	}
	return true, nil
}

func (dp *Deployer) imageID(ctx context.Context, ref string) (string, error) {
	id, err := dp.d.Engine.ImageID(ctx, ref)
	if err == nil {
		return id, nil
	}
	if perr := dp.d.Engine.Pull(ctx, ref); perr != nil {
		return "", fmt.Errorf("image %s is not on the host and could not be pulled: %w", ref, perr)
	}
	return dp.d.Engine.ImageID(ctx, ref)
}

// migrateAndPrepare applies the migrations, then runs the release's
// before-start commands.
func (dp *Deployer) migrateAndPrepare(ctx context.Context, r *run) (string, error) {
	migrated, err := dp.migrate(ctx, r)
	if err != nil || len(dp.d.Env.Release.BeforeStart) == 0 {
		return migrated, err
	}
	r.migrated = true // a release command may change the database too
	ran, err := dp.runRelease(ctx, r, "before-start", dp.d.Env.Release.BeforeStart)
	if err != nil {
		return "", fmt.Errorf("%s; %w", migrated, err)
	}
	return migrated + "; " + ran, nil
}

// migrate applies the version's migrations from the configured source.
func (dp *Deployer) migrate(ctx context.Context, r *run) (string, error) {
	d := dp.d
	if d.Migrator == nil || (d.Env.Migrations.Dir == "" && d.Env.Migrations.ImagePath == "") {
		return "no migrations configured", nil
	}
	dir, cleanup, err := d.MigrationsDir(ctx, cmp.Or(r.op.ImageID, r.op.Image))
	if err != nil {
		return "", err
	}
	defer cleanup()
	pending, err := d.Migrator.Pending(ctx, dir)
	if err != nil {
		return "", err
	}
	if len(pending) == 0 {
		return "no pending migrations", nil
	}
	r.migrated = true
	if err := d.Migrator.Up(ctx, dir); err != nil {
		return "", fmt.Errorf("%w (restore with: snapshot restore %s %s)", err, d.Env.Name, r.op.Snapshot)
	}
	names := make([]string, len(pending))
	for i, m := range pending {
		names[i] = fmt.Sprintf("%d_%s", m.Version, m.Name)
	}
	return "applied " + strings.Join(names, ", "), nil
}

// MigrationsDir resolves a migration source to a directory: the configured
// one, or a copy of the path inside image (removed by cleanup).
func MigrationsDir(ctx context.Context, src MigrationSource, engine Engine, image string) (string, func(), error) {
	if src.Dir != "" {
		return src.Dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "togather-migrations-")
	if err != nil {
		return "", nil, fmt.Errorf("migrations: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	if err := engine.CopyFromImage(ctx, image, src.ImagePath, tmp); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("copy migrations %s out of %s: %w", src.ImagePath, image, err)
	}
	return tmp, cleanup, nil
}

// startSlot replaces whatever container holds the idle slot with a new one
// from image.
func (dp *Deployer) startSlot(ctx context.Context, r *run) (string, error) {
	d := dp.d
	spec := d.Env.Slots[r.op.ToSlot]
	if err := d.Engine.Remove(ctx, spec.Container); err != nil {
		return "", fmt.Errorf("remove the old %s container: %w", r.op.ToSlot, err)
	}
	if _, err := d.Engine.Run(ctx, dp.containerSpec(r, ContainerSpec{
		Name: spec.Container, HostPort: spec.HostPort, RestartPolicy: d.Env.RestartPolicy,
	}, nil)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s started from %s on 127.0.0.1:%d", spec.Container, r.op.Image, spec.HostPort), nil
}

// healthGate waits for HealthConsecutive passing probes in a row within
// HealthTimeout. Degraded passes only when the policy accepts it. A failed
// probe reads the container's state: one that exited for good or keeps
// crashing fails the gate at once, and says so rather than blaming a port.
func (dp *Deployer) healthGate(ctx context.Context, slot Slot) (string, error) {
	p := dp.d.Env.Policy
	spec := dp.d.Env.Slots[slot]
	ctx, cancel := context.WithTimeout(ctx, p.HealthTimeout)
	defer cancel()
	streak := 0
	var last Health
	for {
		last = dp.d.Prober.Probe(ctx, spec.HealthURL)
		if last.Status == Healthy || (last.Status == Degraded && p.AcceptDegraded) {
			streak++
			if streak >= p.HealthConsecutive {
				return fmt.Sprintf("%s %s %d times in a row (version %s)", slot, last.Status, streak, last.Version), nil
			}
		} else {
			streak = 0
			if c, err := dp.d.Engine.Inspect(ctx, spec.Container); err == nil && givenUp(c) {
				return "", fmt.Errorf("%s will not become healthy: %s (last probe: %s)", slot, describeContainer(c), last.Status)
			}
		}
		select {
		case <-ctx.Done():
			why := describeHealth(last)
			if c, err := dp.d.Engine.Inspect(context.WithoutCancel(ctx), spec.Container); err == nil && describeContainer(c) != "" {
				why = fmt.Sprintf("%s (last probe: %s)", describeContainer(c), last.Status)
			}
			return "", fmt.Errorf("%s did not pass %d health checks in a row within %s; last: %s", slot, p.HealthConsecutive, p.HealthTimeout, why)
		case <-time.After(p.HealthInterval):
		}
	}
}

func describeHealth(h Health) string {
	s := string(h.Status)
	if h.Status == Degraded {
		s += " (the policy does not accept degraded)"
	}
	if h.Problem != "" {
		s += ": " + h.Problem
	}
	for _, c := range h.Failing() {
		s += fmt.Sprintf("; %s %s %s", c.Name, c.Status, c.Message)
	}
	return s
}

// verify checks through the proxy that traffic reaches slot: the
// X-Togather-Slot header, or /version reporting the deployed version.
func (dp *Deployer) verify(ctx context.Context, slot Slot, version string) (string, error) {
	base := strings.TrimSuffix(dp.d.Env.ProxyURL, "/")
	if base == "" {
		return "no proxy URL configured; verified by the proxy configuration only", nil
	}
	var last string
	for attempt := range 10 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
		if err != nil {
			return "", err
		}
		resp, err := dp.d.HTTP.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		header := resp.Header.Get("X-Togather-Slot")
		switch {
		case header == string(slot):
			return fmt.Sprintf("%s/version answered by %s", base, slot), nil
		case header == "" && version != "" && strings.Contains(string(body), `"`+version+`"`):
			return fmt.Sprintf("%s/version reports %s", base, version), nil
		}
		last = fmt.Sprintf("HTTP %d, X-Togather-Slot %q", resp.StatusCode, header)
	}
	return "", fmt.Errorf("the proxy at %s does not serve %s: %s", base, slot, last)
}

// undo returns the environment to the last safe state after a failed
// deploy: the previous proxy configuration, and no new container.
func (dp *Deployer) undo(ctx context.Context, r *run, started bool, previous []byte, cause error) {
	d := dp.d
	var problems []string
	state := StepFailed
	if previous != nil {
		state = StepRolledBack
		if err := d.Proxy.Restore(ctx, previous); err != nil {
			problems = append(problems, "restoring the previous proxy configuration failed: "+err.Error())
		} else if r.op.FromSlot != "" {
			r.note(ctx, fmt.Sprintf("traffic restored to %s", r.op.FromSlot))
		}
	}
	if started {
		dp.noteLogs(ctx, r, d.Env.Slots[r.op.ToSlot].Container)
		if len(problems) > 0 {
			problems = append(problems, fmt.Sprintf("the new %s container was left running because traffic may still reach it", r.op.ToSlot))
		} else if err := d.Engine.Remove(ctx, d.Env.Slots[r.op.ToSlot].Container); err != nil {
			problems = append(problems, "removing the new container failed: "+err.Error())
		} else {
			r.note(ctx, fmt.Sprintf("new %s container removed", r.op.ToSlot))
		}
	}
	if len(problems) > 0 {
		r.finish(ctx, StepNeedsAttention, strings.Join(problems, "; "))
		return
	}
	msg := "nothing was switched"
	switch {
	case r.op.FromSlot != "":
		msg = fmt.Sprintf("%s keeps serving", r.op.FromSlot)
	case r.op.ToSlot != "":
		msg = "this was the first deploy, so nothing serves yet"
	}
	if r.migrated {
		msg += fmt.Sprintf("; migrations were applied and stay: if the old version cannot run on them, restore %s", r.op.Snapshot)
	}
	r.finish(ctx, state, fmt.Sprintf("%s; %s", cause, msg))
}

// noteLogs keeps the last lines of a failed container's output in the
// journal: the evidence must outlive the container.
func (dp *Deployer) noteLogs(ctx context.Context, r *run, name string) {
	logs, err := dp.d.Engine.Logs(ctx, name, outputLines) // as much as the journal keeps
	switch {
	case err != nil:
		r.note(ctx, fmt.Sprintf("the logs of %s could not be read before removing it: %v", name, err))
	case strings.TrimSpace(logs) == "":
		r.note(ctx, name+" wrote no log lines")
	default:
		r.note(ctx, fmt.Sprintf("last log lines of %s:%s", name, quoteOutput(logs)))
	}
}

// writeState mirrors the result into deployment-state.json. A failure is
// noted, never fatal: the proxy is the truth.
func (dp *Deployer) writeState(ctx context.Context, r *run, status string) {
	if dp.d.State == nil {
		return
	}
	commit := reportedCommit(ctx, dp.d.HTTP, dp.d.Env.Slots[r.op.ToSlot].HealthURL)
	if commit == "" {
		commit = r.op.Version
	}
	cur, err := dp.d.State.Read(ctx)
	if err == nil {
		prev := cur.Current
		cur.Environment = dp.d.Env.Name
		cur.Current = &Deployment{ID: r.op.ID, Version: r.op.Version, GitCommit: commit, Image: r.op.Image,
			DeployedAt: dp.d.Now().UTC(), DeployedBy: r.op.Requester, ActiveSlot: r.op.ToSlot, HealthStatus: "healthy", Status: status}
		if prev != nil && prev.ActiveSlot != r.op.ToSlot {
			cur.Previous = prev
		}
		err = dp.d.State.Write(ctx, cur)
	}
	if err != nil {
		r.note(ctx, "deployment-state.json not updated: "+err.Error())
	}
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func sanitize(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ErrIdentical is returned when a rollback would switch to the image that
// already serves.
var ErrIdentical = errors.New("the previous slot runs the same image as the live one")
