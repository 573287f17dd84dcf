package app_test

import (
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
)

// TestLeaderSessionKilledStepsDown runs two replicas on one store, ends the
// leader's lock session with pg_terminate_backend, and checks that within
// one lease the old leader's loops stopped (its leader ticks no longer
// grow), the other replica leads, and exactly one replica leads afterwards,
// each having counted its loss or gain of leadership.
func TestLeaderSessionKilledStepsDown(t *testing.T) {
	c := startChatWith(t, false, "alerts:\n  sev2_every: 2s\n") // the leader ticks every 500ms
	second := *c.Cfg
	second.HTTP.Listen = "127.0.0.1:0"
	replicas := []*app.App{c.app, apptest.RunBot(t, c.fake, &second)}
	lease := c.Env.Env.Policy.Lease
	const tick = 500 * time.Millisecond

	ticks := func() []float64 {
		t.Helper()
		return []float64{metric(t, replicas[0], "togather_chatops_leader_ticks_total"), metric(t, replicas[1], "togather_chatops_leader_ticks_total")}
	}
	// The leader is the replica whose ticks grow; the other's stay still.
	leader := -1
	for deadline := time.Now().Add(20 * time.Second); leader < 0 && time.Now().Before(deadline); {
		before := ticks()
		time.Sleep(4 * tick)
		after := ticks()
		switch grew := [2]bool{after[0] > before[0], after[1] > before[1]}; grew {
		case [2]bool{true, false}:
			leader = 0
		case [2]bool{false, true}:
			leader = 1
		}
	}
	if leader < 0 {
		t.Fatalf("no single replica leads: leader ticks %v", ticks())
	}
	old, next := leader, 1-leader

	if killed, err := apptest.TerminateLeader(t.Context(), c.StoreDSN); err != nil || killed != 1 {
		t.Fatalf("terminating the leader's lock session: %d sessions, %v", killed, err)
	}
	killedAt := time.Now()

	// Watch for one lease and a few ticks more: the old leader's last tick
	// must come within the lease, and the other replica must take over.
	last := ticks()
	lastOldTick := killedAt
	for time.Since(killedAt) < lease+4*tick {
		time.Sleep(tick / 5)
		now := ticks()
		if now[old] > last[old] {
			lastOldTick = time.Now()
		}
		last = now
	}
	if late := lastOldTick.Sub(killedAt); late > lease {
		t.Errorf("the old leader still ran its leader loops %s after its session ended (lease %s)", late.Round(time.Millisecond), lease)
	}
	before := ticks()
	time.Sleep(4 * tick)
	after := ticks()
	if after[old] != before[old] || after[next] <= before[next] {
		t.Errorf("after the failover, leader ticks went from %v to %v; want only replica %d to act", before, after, next)
	}
	leading := []float64{metric(t, replicas[old], "togather_chatops_leader"), metric(t, replicas[next], "togather_chatops_leader")}
	if leading[0] != 0 || leading[1] != 1 {
		t.Errorf("leader gauges: old %v, new %v; want 0 and 1", leading[0], leading[1])
	}
	if lost := metric(t, replicas[old], "togather_chatops_leadership_lost_total"); lost != 1 {
		t.Errorf("the old leader counted %v losses of leadership, want 1", lost)
	}
	if gained := metric(t, replicas[next], "togather_chatops_leadership_gained_total"); gained != 1 {
		t.Errorf("the new leader counted %v gains of leadership, want 1", gained)
	}
}

// metric reads the value of an unlabelled metric from the replica's
// /metrics; a metric it does not expose fails the test.
func metric(t *testing.T, a *app.App, name string) float64 {
	t.Helper()
	v, err := apptest.Metric(t.Context(), a.Addr(), name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
