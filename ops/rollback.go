package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RollbackRequest asks for traffic to go back to the previous slot.
type RollbackRequest struct {
	Requester string
	Reason    string
	// Force skips the health gate of the previous slot (the chat layer also
	// skips its confirmation).
	Force bool
	// RestoreSnapshot restores the last deploy's pre-deploy snapshot before
	// switching; only when asked explicitly.
	RestoreSnapshot bool
	OpID            string // continue a confirmed operation; empty creates one
	Chat            map[string]string
}

// Rollback switches traffic back to the previous slot: started if stopped,
// recreated from the previous image if removed, health-gated unless forced;
// then the failed slot is stopped. Rolling back to the identical image is
// refused.
func (dp *Deployer) Rollback(ctx context.Context, req RollbackRequest) (Operation, error) {
	d := dp.d
	now := d.Now()
	r, err := dp.begin(ctx, req.OpID, Operation{ID: NewOpID(KindRollback, now), Kind: KindRollback, Env: d.Env.Name, Requester: req.Requester,
		Reason: req.Reason, State: StepRequested, CreatedAt: now, UpdatedAt: now, Chat: req.Chat},
		fmt.Sprintf("rollback of %s requested by %s: %s", d.Env.Name, req.Requester, req.Reason))
	if err != nil {
		return r.op, err
	}
	err = dp.rollback(ctx, r, req)
	return r.op, err
}

func (dp *Deployer) rollback(ctx context.Context, r *run, req RollbackRequest) (err error) {
	d := dp.d
	release, err := r.lockStep(ctx)
	if err != nil {
		return err
	}
	defer release()

	var previous []byte
	var last Operation // the deploy being rolled back, if known
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if previous != nil {
			if rerr := d.Proxy.Restore(cctx, previous); rerr != nil {
				r.finish(cctx, StepNeedsAttention, fmt.Sprintf("%v; restoring the proxy configuration failed too: %v", err, rerr))
				return
			}
			r.note(cctx, fmt.Sprintf("traffic restored to %s", r.op.FromSlot))
		}
		r.finish(cctx, StepFailed, fmt.Sprintf("%v; %s keeps serving", err, r.op.FromSlot))
	}()

	if err = r.step(ctx, StepStarted, func() (string, error) {
		var detail string
		var err error
		last, detail, err = dp.prepareTarget(ctx, r)
		return detail, err
	}); err != nil {
		return err
	}
	if req.RestoreSnapshot && last.Snapshot == "" {
		return errors.New("no pre-deploy snapshot is known for the deploy being rolled back: roll back without --restore-snapshot, or restore a snapshot by name")
	}
	if !req.Force {
		if err = r.step(ctx, StepHealthy, func() (string, error) { return dp.healthGate(ctx, r.op.ToSlot) }); err != nil {
			return err
		}
	}
	if err = r.step(ctx, StepSwitched, func() (string, error) {
		prev, err := d.Proxy.Switch(ctx, r.op.ToSlot)
		previous = prev
		if err != nil {
			return "", err
		}
		return "traffic now goes to " + string(r.op.ToSlot), nil
	}); err != nil {
		return err
	}
	restored := ""
	if req.RestoreSnapshot {
		// The pre-deploy snapshot goes with the previous slot: restored
		// once traffic points there, behind the 503 page (restore.go).
		if err = r.step(ctx, StepSnapshotted, func() (string, error) {
			restored, err = dp.restoreBehindPage(ctx, r, last.Snapshot, r.op.ToSlot, r.op.FromSlot)
			return restored, err
		}); err != nil {
			return err
		}
	}
	if err = r.step(ctx, StepVerified, func() (string, error) { return dp.verify(ctx, r.op.ToSlot, "") }); err != nil {
		return err
	}
	failed := d.Env.Slots[r.op.FromSlot].Container
	if serr := d.Engine.Stop(ctx, failed, 10*time.Second); serr != nil {
		r.note(ctx, fmt.Sprintf("stopping %s failed: %v; it is idle, stop it by hand", failed, serr))
	}
	if last.ID != "" && !last.Baked {
		last.Baked = true
		_ = d.Journal.Record(context.WithoutCancel(ctx), last, JournalEntry{At: d.Now(), Step: last.State, Phase: PhaseNote, Detail: "rolled back by " + r.op.ID})
	}
	dp.writeState(ctx, r, "active")
	done := fmt.Sprintf("%s serves again (%s); %s stopped", r.op.ToSlot, r.op.Image, r.op.FromSlot)
	if restored != "" {
		done += "; " + restored
	}
	r.finish(ctx, StepDone, done)
	return nil
}

// prepareTarget makes sure the previous slot runs the previous image and
// returns the deploy being rolled back, when the journal knows it.
func (dp *Deployer) prepareTarget(ctx context.Context, r *run) (Operation, string, error) {
	d := dp.d
	live, _, err := d.Proxy.LiveSlot(ctx)
	if err != nil {
		return Operation{}, "", fmt.Errorf("which slot is live: %w", err)
	}
	r.op.FromSlot, r.op.ToSlot = live, live.Other()
	var last Operation
	if hist, err := d.Journal.History(ctx, d.Env.Name, 20); err == nil {
		for _, op := range hist {
			if op.Kind == KindDeploy && op.State == StepDone && op.ToSlot == live {
				last = op
				break
			}
		}
	}
	liveInfo, err := d.Engine.Inspect(ctx, d.Env.Slots[live].Container)
	if err != nil {
		return last, "", err
	}
	target := d.Env.Slots[r.op.ToSlot]
	info, err := d.Engine.Inspect(ctx, target.Container)
	if err != nil {
		return last, "", err
	}
	image := info.Image
	if !info.Exists {
		image = last.PrevImage
		if image == "" && d.State != nil {
			if st, err := d.State.Read(ctx); err == nil && st.Previous != nil {
				image = st.Previous.Image
			}
		}
		if image == "" {
			return last, "", fmt.Errorf("the %s slot has no container and no previous image is known: nothing to roll back to", r.op.ToSlot)
		}
	}
	r.op.Image, r.op.PrevImage = image, liveInfo.Image
	r.op.Version = imageTag(image)
	targetID := info.ImageID // what the slot's container runs, whatever its tag names now
	if !info.Exists {
		if targetID, err = d.Engine.ImageID(ctx, image); err != nil {
			return last, "", fmt.Errorf("previous image %s: %w", image, err)
		}
	}
	if liveInfo.Exists && targetID == liveInfo.ImageID {
		return last, "", fmt.Errorf("%w (%s): rolling back would change nothing", ErrIdentical, image)
	}
	r.op.ImageID = targetID
	switch {
	case !info.Exists:
		if _, err := dp.startSlot(ctx, r); err != nil {
			return last, "", err
		}
		return last, fmt.Sprintf("%s recreated from %s", target.Container, image), nil
	case !info.Running:
		if err := d.Engine.Start(ctx, target.Container); err != nil {
			return last, "", fmt.Errorf("start %s: %w", target.Container, err)
		}
		return last, fmt.Sprintf("%s started again (%s)", target.Container, image), nil
	}
	return last, fmt.Sprintf("%s is warm (%s)", target.Container, image), nil
}

// imageTag is the version part of an image reference, e.g. v1.2.3 of
// togather-server:v1.2.3.
func imageTag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return ref
}

// RestoreRequest asks for the application database to be restored from a
// snapshot.
type RestoreRequest struct {
	Snapshot  string
	Requester string
	OpID      string // continue an approved operation; empty creates one
	Chat      map[string]string
}

// Restore restores a snapshot under the environment's lock, so it never
// runs beside a deploy or a rollback, and journals it like any operation.
func (dp *Deployer) Restore(ctx context.Context, req RestoreRequest) (Operation, error) {
	d := dp.d
	now := d.Now()
	r, err := dp.begin(ctx, req.OpID, Operation{ID: NewOpID(KindRestore, now), Kind: KindRestore, Env: d.Env.Name, Requester: req.Requester,
		State: StepRequested, Snapshot: req.Snapshot, CreatedAt: now, UpdatedAt: now, Chat: req.Chat},
		fmt.Sprintf("restore of %s from %s requested by %s", d.Env.Name, req.Snapshot, req.Requester))
	if err != nil {
		return r.op, err
	}
	release, err := r.lockStep(ctx)
	if err != nil {
		return r.op, err
	}
	defer release()
	var detail string
	if err := r.step(ctx, StepSnapshotted, func() (string, error) {
		live, _, err := d.Proxy.LiveSlot(ctx)
		if err != nil {
			return "", fmt.Errorf("which slot is live: %w", err)
		}
		detail, err = dp.restoreBehindPage(ctx, r, req.Snapshot, live, live)
		return detail, err
	}); err != nil {
		r.finish(ctx, StepFailed, err.Error())
		return r.op, err
	}
	r.finish(ctx, StepDone, detail)
	return r.op, nil
}
