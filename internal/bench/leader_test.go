package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

// leaderRounds is how many leadership changes each figure is measured over.
const leaderRounds = 5

// replica is one `serve` process of the real binary.
type replica struct {
	cmd    *exec.Cmd
	addr   string // its HTTP endpoint
	exited chan struct{}
}

// TestBenchLeaderStepdownAndFailover runs two `serve` processes on one
// store. stepdown_s: the leader's lock session is terminated with
// pg_terminate_backend → its leader loops have stopped (its
// togather_chatops_leader gauge, set to 0 once they returned). failover_s:
// the leader is SIGKILLed → the other replica leads. Each is the worst of
// leaderRounds changes; every change must leave exactly one leader.
func TestBenchLeaderStepdownAndFailover(t *testing.T) {
	requireBench(t)
	bin := buildBinary(t)
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	dsn := testenv.Postgres(t)
	dir := t.TempDir()

	start := func(n int) *replica {
		t.Helper()
		port := testenv.FreePort(t)
		cfgPath := filepath.Join(dir, fmt.Sprintf("config-%d-%d.yaml", n, port))
		if err := os.WriteFile(cfgPath, botConfig(t, port), 0o600); err != nil {
			t.Fatal(err)
		}
		logs, err := os.Create(cfgPath + ".log")
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{cmd: exec.Command(bin, "serve", "--config", cfgPath), addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{})}
		r.cmd.Env = os.Environ()
		for k, v := range secrets(fake, dsn) {
			r.cmd.Env = append(r.cmd.Env, k+"="+v)
		}
		r.cmd.Stdout, r.cmd.Stderr = logs, logs
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = r.cmd.Wait(); logs.Close(); close(r.exited) }()
		t.Cleanup(func() {
			_ = r.cmd.Process.Kill()
			<-r.exited
			if t.Failed() {
				out, _ := os.ReadFile(logs.Name())
				t.Logf("replica %s log:\n%s", r.addr, out)
			}
		})
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := apptest.Metric(t.Context(), r.addr, "togather_chatops_leader"); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("replica %s does not serve /metrics: %v", r.addr, err)
			}
		}
		return r
	}
	// leading reads each replica's leader gauge; a replica not answering
	// yet counts as not leading.
	leading := func(rs []*replica) []bool {
		out := make([]bool, len(rs))
		for i, r := range rs {
			v, err := apptest.Metric(t.Context(), r.addr, "togather_chatops_leader")
			out[i] = err == nil && v == 1
		}
		return out
	}
	// await polls until cond holds of the gauges and returns how long it
	// took since from; it fails the test after a minute.
	await := func(rs []*replica, from time.Time, what string, cond func([]bool) bool) float64 {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if cond(leading(rs)) {
				return time.Since(from).Seconds()
			}
		}
		t.Fatalf("%s: leader gauges still %v after a minute", what, leading(rs))
		return 0
	}
	only := func(i int) func([]bool) bool {
		return func(l []bool) bool { return l[i] && !l[1-i] }
	}
	whoLeads := func(rs []*replica) int {
		t.Helper()
		await(rs, time.Now(), "a first leader", func(l []bool) bool { return l[0] != l[1] })
		return slices.Index(leading(rs), true)
	}

	rs := []*replica{start(0), start(1)}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := fake.WaitOpens(ctx, 2); err != nil {
		t.Fatalf("the replicas did not connect: %v", err)
	}

	var stepdown, failover []float64
	for range leaderRounds {
		old := whoLeads(rs)
		cut := time.Now()
		if n, err := apptest.TerminateLeader(t.Context(), dsn); err != nil || n != 1 {
			t.Fatalf("terminating the leader's session: %d sessions, %v", n, err)
		}
		stepdown = append(stepdown, await(rs, cut, "stepdown", func(l []bool) bool { return !l[old] }))
		await(rs, cut, "takeover after a stepdown", only(1-old))
	}
	for round := range leaderRounds {
		old := whoLeads(rs)
		killed := time.Now()
		if err := rs[old].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-rs[old].exited
		failover = append(failover, await(rs, killed, "failover", func(l []bool) bool { return l[1-old] }))
		rs[old] = start(2 + round)
		await(rs, time.Now(), "the restarted replica standing by", only(1-old))
	}
	t.Logf("stepdown_s per round: %.2f; failover_s per round: %.2f", stepdown, failover)
	printResult("stepdown_s", slices.Max(stepdown))
	printResult("failover_s", slices.Max(failover))
}
