package app

import (
	"context"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/schedule"
)

// jobs are the leader's scheduled jobs from the configuration; a job with
// an empty spec is off, and the restore test needs its environment.
func (a *App) jobs() []schedule.Job {
	var jobs []schedule.Job
	add := func(name, spec string, run func(context.Context) error) {
		if spec != "" {
			jobs = append(jobs, schedule.Job{Name: name, Spec: spec, Run: func(ctx context.Context, _ time.Time) error { return run(ctx) }})
		}
	}
	add("snapshot-prune", a.cfg.Jobs.SnapshotPrune, a.bot.PruneSnapshots)
	add("db-report", a.cfg.Jobs.DBReport, a.bot.DBReports)
	env := a.cfg.Jobs.RestoreTestEnv
	if env == "" {
		env = "production"
	}
	if _, ok := a.cfg.Environment(env); ok {
		add("restore-test", a.cfg.Jobs.RestoreTest, func(ctx context.Context) error { return a.bot.RestoreTest(ctx, env) })
	} else if a.cfg.Jobs.RestoreTest != "" {
		a.log.Info().Str("env", env).Msg("no environment to run the monthly restore test on; set jobs.restore_test_env")
	}
	return jobs
}

// schedule runs the scheduled jobs until ctx ends.
func (a *App) schedule(ctx context.Context) {
	s, err := schedule.New(a.cfg.Location(), a.store, a.log.With().Str("component", "scheduler").Logger(), a.now, a.jobs()...)
	if err != nil { // Validate checked the specs
		a.log.Error().Err(err).Msg("scheduled jobs are off")
		return
	}
	for name, next := range s.Next() {
		a.log.Info().Str("job", name).Time("next", next).Msg("scheduled")
	}
	s.Run(ctx)
}
