package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
)

// LeaderKey is the PostgreSQL advisory lock the replicas compete for, and
// the key of their terms; the holder runs the leader loops (lead).
const LeaderKey int64 = 0x746f676174686572 // "togather"

// leaderCheckMax bounds the pause between checks of the leader's lock
// session, and between attempts to lead.
const leaderCheckMax = 2 * time.Second

// keep competes for leadership until ctx ends, and runs lead while this
// replica leads: checked every leaderEvery, stopped at once when lost.
func (a *App) keep(ctx context.Context) {
	l := &leadership{store: a.store, key: LeaderKey, every: a.leaderEvery(), log: a.log, metrics: a.leader}
	l.Run(ctx, a.lead)
}

// leaderEvery is a third of the shortest environment lease, at most
// leaderCheckMax: a leader whose session ended stops well within one lease.
func (a *App) leaderEvery() time.Duration {
	every := leaderCheckMax
	for _, name := range a.cfg.EnvironmentNames() {
		if env, ok := a.cfg.Environment(name); ok && env.Policy.Lease > 0 {
			every = min(every, env.Policy.Lease/3)
		}
	}
	return every
}

// lead runs on the leader replica until ctx ends, and returns once every
// goroutine it started has: it recovers operations a crash interrupted
// (once their lease has run out), keeps every finished deploy's bake and
// watch going, resuming them after a restart, and runs the reminders,
// maintenance windows, monitors, scheduled jobs and the page sender.
func (a *App) lead(ctx context.Context) {
	a.log.Info().Msg("leader: recovering interrupted operations and watching finished deploys")
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, name := range a.cfg.EnvironmentNames() {
		eo, err := a.ops.Env(name)
		if err != nil || eo.Deployer == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.recoverEnv(ctx, eo)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.tick(ctx)
	}()
	go func() {
		defer wg.Done()
		a.schedule(ctx)
	}()
	if len(a.cfg.Paging.Targets) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &pageSender{store: a.store, targets: pagingTargets(a.cfg), now: a.now, log: a.log}
			s.run(ctx, pagePoll)
		}()
	}
	engine := incidents.NewEngine(a.rules())
	for _, name := range a.cfg.EnvironmentNames() {
		if eo, err := a.ops.Env(name); err == nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.monitor(ctx, eo, engine)
			}()
		}
	}
	baking := map[string]bool{}
	var mu sync.Mutex
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		unbaked, err := a.store.Unbaked(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("listing deploys to bake failed")
		}
		for _, op := range unbaked {
			eo, err := a.ops.Env(op.Env)
			if err != nil || eo.Deployer == nil {
				continue
			}
			mu.Lock()
			skip := baking[op.ID]
			baking[op.ID] = true
			mu.Unlock()
			if skip {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := eo.Deployer.Bake(ctx, op.ID); err != nil && !errors.Is(err, context.Canceled) {
					a.log.Error().Err(err).Str("op", op.ID).Msg("bake failed")
				}
				mu.Lock()
				delete(baking, op.ID)
				mu.Unlock()
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverEnv reconciles the environment's interrupted operations now and
// every recoverEvery after, so an operation whose process died (a terminal
// deploy killed while serve runs, say) is recovered once its lease runs out.
func (a *App) recoverEnv(ctx context.Context, eo *EnvOps) {
	for {
		done, err := eo.Deployer.Recover(ctx)
		for _, op := range done {
			a.log.Warn().Str("op", op.ID).Str("env", op.Env).Str("state", string(op.State)).
				Str("found", op.Journal[len(op.Journal)-1].Detail).Msg("recovered an interrupted operation")
		}
		wait := recoverEvery
		if errors.Is(err, ops.ErrStillRunning) {
			wait = 2 * time.Second // a lease is about to run out
		} else if err != nil && ctx.Err() == nil {
			a.log.Error().Err(err).Str("env", eo.Env.Name).Msg("recovery failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// recoverEvery is how often the leader looks for interrupted operations.
const recoverEvery = 15 * time.Second

// tick runs the leader's periodic chat duties: expiring approval requests,
// incident update reminders and escalations, secret rotation reminders,
// maintenance windows, and the messages of finished operations that their
// replica left behind.
func (a *App) tick(ctx context.Context) {
	every := min(tickEvery, a.cfg.Alerts.SEV1Every/4, a.cfg.Alerts.SEV2Every/4)
	t := time.NewTicker(max(every, 100*time.Millisecond))
	defer t.Stop()
	for {
		a.leader.ticks.Inc()
		if err := a.bot.ExpireRequests(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("expiring approval requests failed")
		}
		if err := a.bot.IncidentTick(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("incident reminders failed")
		}
		if err := a.bot.SecretsTick(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("secret rotation reminders failed")
		}
		if err := a.bot.MaintenanceTick(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("maintenance windows failed to move on")
		}
		if err := a.bot.SettleMessages(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("settling the messages of finished operations failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tickEvery is how often reminders and expiries are checked (more often
// when a reminder cadence is short).
const tickEvery = 10 * time.Second
