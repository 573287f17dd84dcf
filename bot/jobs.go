package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DBSizeStore remembers the application databases' sizes, for the growth
// figure of the weekly report.
type DBSizeStore interface {
	RecordDBSize(ctx context.Context, env string, at time.Time, bytes int64) error
	// DBSizeBefore is the latest size of env recorded at or before at.
	DBSizeBefore(ctx context.Context, env string, at time.Time) (bytes int64, when time.Time, ok bool, err error)
}

// SchedulerActor is the audit log's actor of what the bot does on its own
// schedule.
const SchedulerActor = "scheduler"

// auditJob records what a scheduled job did; a failure is logged, and the
// job goes on: the work is done either way.
func (b *Bot) auditJob(ctx context.Context, action, env, detail string) {
	err := b.audit.Audit(ctx, AuditEntry{At: b.now(), Actor: SchedulerActor, Action: action, Environment: env, Decision: Allowed, Detail: detail})
	if err != nil {
		b.log.Warn().Err(err).Str("action", action).Msg("auditing a scheduled job failed")
	}
}

// PruneSnapshots removes every environment's snapshots past retention (the
// daily job). It posts in the deploys channel only when it removed
// something or failed.
func (b *Bot) PruneSnapshots(ctx context.Context) error {
	var lines []string
	var errs []error
	for _, env := range b.envs {
		snaps, ok := b.envOps.Snapshots(env)
		if !ok {
			continue
		}
		removed, err := snaps.Prune(ctx, b.now(), false)
		if len(removed) > 0 {
			names := snapshotNames(removed)
			lines = append(lines, fmt.Sprintf("• %s: %d snapshot(s) past retention removed: %s", env, len(removed), strings.Join(clipLines(names, "snapshot(s)"), ", ")))
			b.auditJob(ctx, "snapshot.prune", env, strings.Join(names, ", "))
		}
		if err != nil {
			lines = append(lines, fmt.Sprintf("• :x: %s: the prune failed: %v. Check that the bot may write the snapshot directory.", env, err))
			errs = append(errs, fmt.Errorf("prune %s: %w", env, err))
		}
	}
	if len(lines) > 0 {
		if _, err := b.poster.Post(ctx, b.channels.Deploys, "", Textf(":wastebasket: Daily snapshot prune\n"+strings.Join(lines, "\n"))); err != nil {
			errs = append(errs, fmt.Errorf("post the prune: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RestoreTest restores the newest snapshot of env into a scratch database
// and compares its per-table row counts (the monthly job), and posts the
// result in the deploys channel, whatever it is.
func (b *Bot) RestoreTest(ctx context.Context, env string) error {
	snaps, ok := b.envOps.Snapshots(env)
	if !ok {
		return fmt.Errorf("restore test: snapshots are not configured for %s", env)
	}
	post := func(text string) error {
		_, err := b.poster.Post(ctx, b.channels.Deploys, "", Textf(text))
		return err
	}
	list, err := snaps.List(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("restore test of %s: %w", env, err),
			post(fmt.Sprintf(":x: Monthly restore test of %s: the snapshots could not be listed: %v.", env, err)))
	}
	if len(list) == 0 {
		return post(fmt.Sprintf(":x: Monthly restore test of %s: there is no snapshot to test. `/togather snapshot create %s` takes one.", env, env))
	}
	name := list[0].Name
	res, err := snaps.Verify(ctx, name)
	b.auditJob(ctx, "snapshot.verify", env, fmt.Sprintf("monthly restore test of %s: %v", name, errText(err)))
	if err != nil {
		return errors.Join(fmt.Errorf("restore test of %s: %w", env, err),
			post(fmt.Sprintf(":x: Monthly restore test of %s failed on `%s`: %v. Do not rely on this snapshot until it restores: take a new one and run `/togather snapshot verify %s <name>`.", env, name, err, env)))
	}
	m := RenderVerify(env, res)
	m.Text = "Monthly restore test: " + m.Text
	m.Blocks = append([]Block{Header{Text: "Monthly restore test: " + env}}, m.Blocks...)
	_, err = b.poster.Post(ctx, b.channels.Deploys, "", m)
	return err
}

// errText is err's message, or "ok".
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// DBReports posts the weekly report of every environment's application
// database in the deploys channel, with its growth since the last one.
func (b *Bot) DBReports(ctx context.Context) error {
	var errs []error
	for _, env := range b.envs {
		db, ok := b.envOps.Database(env)
		if !ok {
			continue
		}
		r, err := db.Report(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("database report of %s: %w", env, err))
			if _, perr := b.poster.Post(ctx, b.channels.Deploys, "", Textf(fmt.Sprintf(":x: The weekly database report of %s could not be made: %v. %s", env, err, dbNext))); perr != nil {
				errs = append(errs, perr)
			}
			continue
		}
		now := b.now()
		var last int64
		var had bool
		if b.sizes != nil {
			if last, _, had, err = b.sizes.DBSizeBefore(ctx, env, now); err != nil {
				b.log.Warn().Err(err).Str("env", env).Msg("reading last week's database size failed")
			}
			if err := b.sizes.RecordDBSize(ctx, env, now, r.Bytes); err != nil {
				b.log.Warn().Err(err).Str("env", env).Msg("recording the database size failed")
			}
		}
		b.auditJob(ctx, "db.report", env, fmt.Sprintf("%d bytes", r.Bytes))
		if _, err := b.poster.Post(ctx, b.channels.Deploys, "", DBReportMessage(env, r, last, had)); err != nil {
			errs = append(errs, fmt.Errorf("post the database report of %s: %w", env, err))
		}
	}
	return errors.Join(errs...)
}
