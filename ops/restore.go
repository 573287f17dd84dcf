package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaintenancePage puts the environment behind the proxy's 503 page
// (Retry-After) and takes it away again.
type MaintenancePage interface {
	EnterMaintenance(ctx context.Context, page string) error
	ExitMaintenance(ctx context.Context) error
}

// restorePage is the 503 page shown while a snapshot is restored.
const restorePage = "<h1>Maintenance</h1><p>The database is being restored. Please try again in a few minutes.</p>"

// restoreBehindPage restores snapshot while the environment shows the 503
// page and every running slot is stopped (no session holds locks or cached
// plans of the old schema). Afterwards serve is started and health-gated
// before the page is taken away (the other slot stays stopped); a failed
// restore leaves the database as it was (ADR 0012), starts every stopped
// slot again and gates fallback, the slot that then serves. It returns the
// journal detail: the snapshot and the migration version now in the
// database.
func (dp *Deployer) restoreBehindPage(ctx context.Context, r *run, snapshot string, serve, fallback Slot) (detail string, err error) {
	d := dp.d
	if d.Page == nil {
		return "", errors.New("no maintenance page is configured for this environment: a restore needs the proxy's 503 page")
	}
	if err := d.Page.EnterMaintenance(ctx, restorePage); err != nil {
		return "", fmt.Errorf("show the 503 page: %w", err)
	}
	var stopped []Slot
	defer func() {
		// The page goes and the slots come back on every path, also when
		// ctx is cancelled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*d.Env.Policy.HealthTimeout+time.Minute)
		defer cancel()
		if berr := dp.bringBack(cctx, r, stopped, serve, fallback, err == nil); berr != nil {
			err = errors.Join(err, berr)
		}
	}()
	for _, slot := range []Slot{Blue, Green} {
		name := d.Env.Slots[slot].Container
		info, err := d.Engine.Inspect(ctx, name)
		if err != nil {
			return "", err
		}
		if !info.Running {
			continue
		}
		if err := d.Engine.Stop(ctx, name, 10*time.Second); err != nil {
			return "", fmt.Errorf("stop %s for the restore: %w", name, err)
		}
		stopped = append(stopped, slot)
	}
	r.note(ctx, fmt.Sprintf("503 page up; stopped %s for the restore", slotList(stopped)))
	if err := d.Snapshots.Restore(ctx, snapshot, nil); err != nil {
		return "", err
	}
	detail = "database restored from " + snapshot
	if d.Migrator != nil {
		v, dirty, err := d.Migrator.Version(ctx)
		switch {
		case err != nil:
			return "", fmt.Errorf("the database was restored from %s but its migration version cannot be read: %w", snapshot, err)
		case dirty:
			return "", fmt.Errorf("the database was restored from %s, whose schema_migrations says version %d is dirty: restore another snapshot", snapshot, v)
		}
		detail += fmt.Sprintf("; migration version now %d", v)
	}
	return detail, nil
}

// restoreInterrupted reports whether op, a restore or a rollback, stopped
// inside its restore step, where the 503 page may be up and the slots
// stopped.
func restoreInterrupted(op Operation) bool {
	if op.Kind != KindRestore && op.Kind != KindRollback {
		return false
	}
	open := false
	for _, e := range op.Journal {
		if e.Step == StepSnapshotted {
			open = e.Phase == PhaseBegin
		}
	}
	return open
}

// recoverRestore ends an operation interrupted inside its restore: the
// restore is one transaction, so the database is either as it was or the
// whole snapshot. It starts the slot the proxy names, gates it on health
// and takes the 503 page away; the operation needs attention because only
// a person can tell which of the two happened.
func (dp *Deployer) recoverRestore(ctx context.Context, r *run) {
	d := dp.d
	at := "interrupted at " + string(StepSnapshotted) + " (inside the restore)"
	live, _, err := d.Proxy.LiveSlot(ctx)
	if err != nil {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; the proxy configuration cannot be read (%v): start the slots and end maintenance mode by hand", at, err))
		return
	}
	name := d.Env.Slots[live].Container
	if info, err := d.Engine.Inspect(ctx, name); err == nil && info.Exists && !info.Running {
		if err := d.Engine.Start(ctx, name); err != nil {
			r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; starting %s failed (%v): the 503 page stays up", at, name, err))
			return
		}
	}
	health, err := dp.healthGate(ctx, live)
	if err != nil {
		r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; %v: the 503 page stays up", at, err))
		return
	}
	if d.Page != nil {
		if err := d.Page.ExitMaintenance(ctx); err != nil {
			r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; %s; taking the 503 page away failed (%v): end maintenance mode by hand", at, health, err))
			return
		}
	}
	version := "migration version unknown"
	if d.Migrator != nil {
		if v, dirty, err := d.Migrator.Version(ctx); err == nil {
			version = fmt.Sprintf("migration version %d", v)
			if dirty {
				version += " (dirty)"
			}
		}
	}
	r.finish(ctx, StepNeedsAttention, fmt.Sprintf("%s; the restore is one transaction, so the database is either as it was or the whole snapshot; it is at %s. %s; 503 page gone. Check the data and restore again if needed",
		at, version, health))
}

// bringBack starts serve after a successful restore, or every slot in
// stopped after a failed one, gates the slot that serves on health and
// takes the 503 page away.
func (dp *Deployer) bringBack(ctx context.Context, r *run, stopped []Slot, serve, fallback Slot, restored bool) error {
	d := dp.d
	start, live := stopped, fallback
	if restored {
		start, live = []Slot{serve}, serve
	}
	var errs []error
	for _, s := range start {
		if err := d.Engine.Start(ctx, d.Env.Slots[s].Container); err != nil {
			errs = append(errs, fmt.Errorf("start %s after the restore: %w", d.Env.Slots[s].Container, err))
		}
	}
	health, err := dp.healthGate(ctx, live)
	if err != nil {
		errs = append(errs, fmt.Errorf("after the restore: %w", err))
	}
	if err := d.Page.ExitMaintenance(ctx); err != nil {
		errs = append(errs, fmt.Errorf("take the 503 page away: %w; end maintenance mode by hand", err))
	}
	if len(errs) == 0 {
		r.note(ctx, fmt.Sprintf("%s started; %s; 503 page gone", slotList(start), health))
	}
	return errors.Join(errs...)
}

func slotList(slots []Slot) string {
	if len(slots) == 0 {
		return "no slot"
	}
	names := make([]string, len(slots))
	for i, s := range slots {
		names[i] = string(s)
	}
	return strings.Join(names, " and ")
}
