package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// elector is what leadership needs of the store.
type elector interface {
	TryLeader(ctx context.Context, key int64) (*postgres.Leadership, bool, error)
}

// errLoopsEnded is why leadership is given up when the leader's loops
// return before their context ends.
var errLoopsEnded = errors.New("the leader loops ended by themselves")

// leadership owns the leader's goroutines. It competes for the leader
// lock every interval; once it leads, it runs the leader's loops under a
// context carrying the term (postgres.WithTerm) and checks the lock's
// session every interval. On any loss — a failed check, a write refused
// for a stale term, the loops ending — it cancels the loops' context and
// waits for them to return before anything else, then competes again.
type leadership struct {
	store   elector
	key     int64
	every   time.Duration // between checks, and between attempts to lead
	log     zerolog.Logger
	metrics *leaderMetrics
}

// Run competes for leadership and runs lead while it holds it, until ctx
// ends. lead must return once its context ends.
func (l *leadership) Run(ctx context.Context, lead func(ctx context.Context)) {
	for {
		held := l.await(ctx)
		if held == nil {
			return
		}
		term := held.Term().N
		l.metrics.gained.Inc()
		l.metrics.leading.Set(1)
		l.log.Info().Int64("term", term).Msg("leadership gained: running the leader loops")
		err := l.hold(ctx, held, lead)
		held.Release()
		l.metrics.leading.Set(0)
		if ctx.Err() != nil {
			l.log.Info().Int64("term", term).Msg("leadership released: shutting down")
			return
		}
		l.metrics.lost.Inc()
		l.log.Error().Err(err).Int64("term", term).Msg("leadership lost: the leader loops stopped; competing again")
		// Let a replica whose session is sound take over first.
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.every):
		}
	}
}

// await tries to lead every interval; it returns the leadership, or nil
// when ctx ends first.
func (l *leadership) await(ctx context.Context) *postgres.Leadership {
	for {
		held, ok, err := l.store.TryLeader(ctx, l.key)
		if err != nil && ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("leader election failed; retrying")
		}
		if ok {
			return held
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.every):
		}
	}
}

// hold runs lead while held holds and ctx lasts, and returns why it
// stopped, once lead has returned.
func (l *leadership) hold(ctx context.Context, held *postgres.Leadership, lead func(context.Context)) error {
	loopsCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	loopsCtx = postgres.WithTerm(loopsCtx, held.Term(), stop)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(loopsCtx)
	}()
	t := time.NewTicker(l.every)
	defer t.Stop()
	var lost error
	for lost == nil {
		select {
		case <-loopsCtx.Done(): // ctx ended, or a write was refused
			lost = context.Cause(loopsCtx)
		case <-done:
			lost = errLoopsEnded
		case <-t.C:
			checkCtx, cancel := context.WithTimeout(ctx, l.every)
			lost = held.Check(checkCtx)
			cancel()
		}
	}
	stop(lost)
	<-done
	return lost
}

// leaderMetrics count leadership and what the leader does, on /metrics.
type leaderMetrics struct {
	gained  prometheus.Counter // leadership terms begun by this replica
	lost    prometheus.Counter // terms that ended other than by shutting down
	leading prometheus.Gauge   // 1 while this replica leads
	ticks   prometheus.Counter // rounds of the leader's chat duties (tick)
}

// newLeaderMetrics creates the leader's instruments and registers them
// with reg.
func newLeaderMetrics(reg prometheus.Registerer) *leaderMetrics {
	m := &leaderMetrics{
		gained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "togather_chatops_leadership_gained_total", Help: "Times this replica became the leader.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "togather_chatops_leadership_lost_total", Help: "Times this replica lost leadership (its lock session ended or another replica took over), not counting shutdowns.",
		}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "togather_chatops_leader", Help: "1 while this replica is the leader, else 0.",
		}),
		ticks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "togather_chatops_leader_ticks_total", Help: "Rounds of the leader's reminders, expiries and maintenance moves run by this replica.",
		}),
	}
	reg.MustRegister(m.gained, m.lost, m.leading, m.ticks)
	return m
}
