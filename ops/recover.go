package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrStillRunning is returned by Recover for an operation whose lock lease
// is still being renewed: another process is running it.
var ErrStillRunning = errors.New("the operation's lease is still live")

// Recover reconciles every unfinished operation of the environment with
// reality — which slot the proxy serves, which containers run, whether they
// are healthy — and ends each one in the last safe state, saying in its
// journal what it found and did. It never acts on a guess: when the facts
// do not line up it marks the operation as needing attention. Operations
// whose lease is still live are left alone (ErrStillRunning in the result).
func (dp *Deployer) Recover(ctx context.Context) ([]Operation, error) {
	d := dp.d
	ops, err := d.Journal.Unfinished(ctx)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", d.Env.Name, err)
	}
	var done []Operation
	var errs []error
	for _, op := range ops {
		if op.Env != d.Env.Name {
			continue
		}
		if l, held, err := d.Locker.Get(ctx, op.Env, d.Now()); err == nil && held && l.Owner == op.ID {
			errs = append(errs, fmt.Errorf("%s: %w until %s", op.ID, ErrStillRunning, l.ExpiresAt.UTC().Format(time.RFC3339)))
			continue
		}
		// An operation that wrote to its journal within a lease may be
		// between being created and taking its lock in another process:
		// only one silent for a whole lease is known to be dead.
		if quiet := d.Now().Sub(op.UpdatedAt); quiet < d.Env.Policy.Lease {
			errs = append(errs, fmt.Errorf("%s: %w: active %s ago", op.ID, ErrStillRunning, quiet.Round(time.Millisecond)))
			continue
		}
		r := &run{dp: dp, op: op}
		if !dp.recoverOne(ctx, r) {
			continue
		}
		_ = d.Locker.Release(ctx, op.Env, op.ID)
		done = append(done, r.op)
	}
	return done, errors.Join(errs...)
}

// recoverOne ends one interrupted operation and reports whether it did:
// a request still waiting for its approval in chat is left alone.
func (dp *Deployer) recoverOne(ctx context.Context, r *run) bool {
	d := dp.d
	op := r.op
	at := fmt.Sprintf("interrupted at %s", lastStep(op))
	if (op.State == StepRequested || op.State == StepApproved) && lastStep(op) == op.State {
		if op.Chat != nil {
			return false // never started: it waits for its approval or confirmation in chat
		}
		r.finish(ctx, StepFailed, "interrupted before it started; nothing was changed")
		return true
	}
	if restoreInterrupted(op) {
		dp.recoverRestore(ctx, r)
		return true
	}
	if op.ToSlot == "" {
		r.finish(ctx, StepFailed, at+" before anything changed; nothing to undo")
		return true
	}
	if op.Kind == KindDeploy {
		dp.removeReleaseLeftover(ctx, r)
	}
	repaired, err := d.Proxy.SyncFile(ctx)
	if err != nil {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; what the proxy serves is not known (%v), so nothing was touched", at, err))
		return true
	}
	if repaired != "" {
		r.note(ctx, repaired)
	}
	live, _, err := d.Proxy.LiveSlot(ctx)
	if err != nil {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; the proxy configuration cannot be read (%v), so nothing was touched", at, err))
		return true
	}
	switch live {
	case op.FromSlot:
		msg := fmt.Sprintf("%s; %s kept serving", at, op.FromSlot)
		if op.Kind == KindDeploy {
			msg += dp.removeIfOurs(ctx, op)
		}
		r.finish(ctx, StepFailed, msg)
	case op.ToSlot:
		h := d.Prober.Probe(ctx, d.Env.Slots[op.ToSlot].HealthURL)
		if h.Status == Healthy || (h.Status == Degraded && d.Env.Policy.AcceptDegraded) {
			if op.Kind == KindDeploy {
				r.op.BakeUntil = d.Now().Add(d.Env.Policy.Bake)
				dp.writeState(ctx, r, "active")
			}
			r.finish(ctx, StepDone, fmt.Sprintf("%s; found traffic on %s and it is %s: the %s completed", at, op.ToSlot, h.Status, op.Kind))
			return true
		}
		dp.switchBack(ctx, r, at, h)
	default:
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; the proxy serves %q, which is neither slot of this operation; nothing was touched", at, live))
	}
	return true
}

// switchBack returns traffic to the operation's source slot after a
// restart found the target unhealthy, if the source can serve.
func (dp *Deployer) switchBack(ctx context.Context, r *run, at string, h Health) {
	d := dp.d
	op := r.op
	if op.FromSlot == "" {
		r.finish(ctx, StepFailed, fmt.Sprintf("%s; %s is %s and this was the first deploy: nothing served before, so nothing was switched%s",
			at, op.ToSlot, describeHealth(h), dp.removeIfOurs(ctx, op)))
		return
	}
	from := d.Env.Slots[op.FromSlot]
	fh := d.Prober.Probe(ctx, from.HealthURL)
	if !fh.Status.Serving() {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; %s serves but is %s, and %s is %s too: nothing was switched, decide by hand",
			at, op.ToSlot, describeHealth(h), op.FromSlot, fh.Status))
		return
	}
	if _, err := d.Proxy.Switch(ctx, op.FromSlot); err != nil {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; %s is %s but switching back to %s failed: %v", at, op.ToSlot, h.Status, op.FromSlot, err))
		return
	}
	msg := fmt.Sprintf("%s; %s was serving but is %s, so traffic went back to %s", at, op.ToSlot, describeHealth(h), op.FromSlot)
	if op.Kind == KindDeploy {
		msg += dp.removeIfOurs(ctx, op)
	}
	r.finish(ctx, StepRolledBack, msg)
}

// removeIfOurs removes the target container when this operation created it.
func (dp *Deployer) removeIfOurs(ctx context.Context, op Operation) string {
	name := dp.d.Env.Slots[op.ToSlot].Container
	if _, ok, why := dp.ours(ctx, op, name); !ok {
		if why != "" {
			return "; " + why
		}
		return ""
	}
	if err := dp.d.Engine.Remove(ctx, name); err != nil {
		return fmt.Sprintf("; removing the new container %s failed: %v", name, err)
	}
	return "; the new container was removed"
}

// removeReleaseLeftover removes the one-off container of the release
// command the interrupted deploy was running, which nothing else would
// stop before the next deploy, and notes it.
func (dp *Deployer) removeReleaseLeftover(ctx context.Context, r *run) {
	name := dp.releaseContainer(r.op)
	info, ok, why := dp.ours(ctx, r.op, name)
	if !ok {
		if why != "" {
			r.note(ctx, why)
		}
		return
	}
	what := fmt.Sprintf("the one-off container %s of release command %q", name, info.Labels[labelRelease])
	if err := dp.d.Engine.Remove(ctx, name); err != nil {
		r.note(ctx, fmt.Sprintf("removing %s failed: %v", what, err))
		return
	}
	r.note(ctx, what+" was removed: the command did not finish, and what it changed stays")
}

// ours inspects the container name and reports whether op created it (its
// operation label). When not, why says what was found and left alone, or
// is empty when there is no such container.
func (dp *Deployer) ours(ctx context.Context, op Operation, name string) (info ContainerInfo, ok bool, why string) {
	info, err := dp.d.Engine.Inspect(ctx, name)
	switch {
	case err != nil:
		return info, false, fmt.Sprintf("%s could not be inspected (%v) and was left alone", name, err)
	case !info.Exists:
		return info, false, ""
	case info.Labels[labelOperation] != op.ID:
		return info, false, fmt.Sprintf("%s was not created by this operation and was left alone", name)
	}
	return info, true, ""
}

// lastStep is the step of the operation's last journal entry.
func lastStep(op Operation) Step {
	if len(op.Journal) == 0 {
		return op.State
	}
	return op.Journal[len(op.Journal)-1].Step
}

// Bake watches a finished deploy: until the watch window ends it probes the
// new slot and, if it fails HealthConsecutive times in a row and the policy
// allows, rolls back automatically; when the bake window ends it stops the
// previous slot, unless traffic has moved since. It notes a summary 5
// minutes in and at the end of the watch, then marks the deploy baked. It
// resumes correctly after a restart because every deadline is in the
// operation and every milestone in its journal.
func (dp *Deployer) Bake(ctx context.Context, opID string) error {
	d := dp.d
	op, err := d.Journal.Get(ctx, opID)
	if err != nil {
		return fmt.Errorf("bake %s: %w", opID, err)
	}
	if op.Kind != KindDeploy || op.State != StepDone || op.Baked {
		return nil
	}
	doneAt := op.BakeUntil.Add(-d.Env.Policy.Bake)
	watchUntil := doneAt.Add(d.Env.Policy.Watch)
	stopped := noted(op, bakeEnded)
	summarized := noted(op, earlyWatch) || d.Env.Policy.Watch <= earlyWatchAfter
	var probes, healthy, failures int
	warned, waited := false, false
	t := time.NewTicker(d.Env.Policy.HealthInterval)
	defer t.Stop()
	for {
		now := d.Now()
		if !stopped && !now.Before(op.BakeUntil) {
			stopped = dp.stopPrevious(ctx, &op, &waited)
		}
		if !summarized && !now.Before(doneAt.Add(earlyWatchAfter)) {
			dp.noteOp(ctx, &op, dp.watchSummary(ctx, op, earlyWatch, probes, healthy))
			summarized = true
		}
		if stopped && !now.Before(watchUntil) {
			op.Baked = true
			dp.noteOp(ctx, &op, dp.watchSummary(ctx, op, fmt.Sprintf("%s watch ended", d.Env.Policy.Watch), probes, healthy))
			return nil
		}
		if now.Before(watchUntil) {
			h := d.Prober.Probe(ctx, d.Env.Slots[op.ToSlot].HealthURL)
			probes++
			if h.Status == Healthy || (h.Status == Degraded && d.Env.Policy.AcceptDegraded) {
				healthy++
				failures = 0
			} else if failures++; failures >= d.Env.Policy.HealthConsecutive && !warned {
				if d.Env.Policy.AutoRollback {
					return dp.autoRollback(ctx, &op, h)
				}
				warned = true
				dp.noteOp(ctx, &op, fmt.Sprintf("%s failed %d health checks in a row: %s; automatic rollback is off: roll back by hand", op.ToSlot, failures, describeHealth(h)))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Watch milestones, recognised in the journal after a restart.
const (
	bakeEnded       = "bake ended"
	earlyWatch      = "5-minute watch"
	earlyWatchAfter = 5 * time.Minute
)

// noted reports whether the operation's journal has a note starting with
// prefix.
func noted(op Operation, prefix string) bool {
	for _, e := range op.Journal {
		if e.Phase == PhaseNote && strings.HasPrefix(e.Detail, prefix) {
			return true
		}
	}
	return false
}

// watchSummary says how the new slot did: probes passed and container
// restarts.
func (dp *Deployer) watchSummary(ctx context.Context, op Operation, label string, probes, healthy int) string {
	restarts := "unknown"
	if info, err := dp.d.Engine.Inspect(ctx, dp.d.Env.Slots[op.ToSlot].Container); err == nil && info.Exists {
		restarts = fmt.Sprint(info.RestartCount)
	}
	summary := fmt.Sprintf("%s: %s passed %d of %d health probes; container restarts: %s", label, op.ToSlot, healthy, probes, restarts)
	if m := dp.d.Metrics; m != nil {
		if er, p95, err := m.RequestRates(ctx); err == nil {
			summary += fmt.Sprintf("; error rate %.2f%%, p95 %.0f ms", er*100, p95*1000)
		} else {
			summary += "; request metrics unavailable: " + err.Error()
		}
	}
	return summary
}

// noteOp journals a note on op (fields included) and notifies.
func (dp *Deployer) noteOp(ctx context.Context, op *Operation, detail string) {
	e := JournalEntry{At: dp.d.Now(), Step: op.State, Phase: PhaseNote, Detail: detail}
	if err := dp.d.Journal.Record(context.WithoutCancel(ctx), *op, e); err == nil {
		op.Journal = append(op.Journal, e)
		dp.d.Notify(*op, e)
	}
}

// stopPrevious stops the previous slot at the end of the bake window and
// reports whether the bake is over (false: try again on the next tick). It
// holds the environment's lock while it decides and stops, like any
// operation: while someone else holds it (a deploy's health gate, a
// rollback about to serve from that slot) it waits, noting that once in
// waited.
func (dp *Deployer) stopPrevious(ctx context.Context, op *Operation, waited *bool) bool {
	d := dp.d
	if op.FromSlot == "" {
		dp.noteOp(ctx, op, bakeEnded+"; the first deploy has no previous slot to stop")
		return true
	}
	name := d.Env.Slots[op.FromSlot].Container
	lease, err := HoldLease(ctx, d.Locker, Lock{Env: op.Env, Owner: op.ID, Holder: "togather-chatops",
		Reason: fmt.Sprintf("bake of deploy %s: stopping %s", op.Version, op.FromSlot)}, d.Env.Policy.Lease, d.Now)
	var held *LockError
	if err != nil {
		if errors.As(err, &held) && !*waited {
			*waited = true
			dp.noteOp(ctx, op, fmt.Sprintf("the bake deadline passed but %v: %s stays warm until the environment is free", err, name))
		}
		return false
	}
	defer lease.Release(ctx)
	var detail string
	live, _, err := d.Proxy.LiveSlot(ctx)
	switch {
	case err != nil:
		return false
	case live != op.ToSlot:
		detail = fmt.Sprintf("%s; traffic is on %s now, so %s was left running", bakeEnded, live, op.FromSlot)
	default:
		if err := d.Engine.Stop(ctx, name, 10*time.Second); err != nil {
			detail = fmt.Sprintf("%s; stopping %s failed: %v", bakeEnded, name, err)
		} else {
			detail = fmt.Sprintf("%s; %s stopped (a rollback now restarts it)", bakeEnded, name)
		}
	}
	dp.noteOp(ctx, op, detail)
	return true
}

func (dp *Deployer) autoRollback(ctx context.Context, op *Operation, h Health) error {
	d := dp.d
	live, _, err := d.Proxy.LiveSlot(ctx)
	if err != nil || live != op.ToSlot {
		return nil
	}
	reason := fmt.Sprintf("%s failed %d health checks in a row after the deploy of %s: %s", op.ToSlot, d.Env.Policy.HealthConsecutive, op.Version, describeHealth(h))
	if op.FromSlot == "" {
		dp.noteOp(ctx, op, reason+"; this was the first deploy, so there is no previous slot to roll back to: fix forward")
		return nil
	}
	d.Notify(*op, JournalEntry{At: d.Now(), Step: op.State, Phase: PhaseNote, Detail: reason + "; rolling back automatically"})
	_, err = dp.Rollback(ctx, RollbackRequest{Requester: "togather-chatops", Reason: "automatic: " + reason, Chat: op.Chat})
	return err
}
