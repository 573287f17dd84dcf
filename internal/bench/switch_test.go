package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// Bounds of TestBenchSwitch: the load and the cycles stop by themselves
// whatever happens.
const (
	loadRate       = 300 // requests per second, all workers together
	loadWorkers    = 8
	loadMaxTotal   = 100_000
	loadMaxTime    = 3 * time.Minute
	minCycles      = 5
	maxCycles      = 40
	minLoadTotal   = 10_000
	watchPoll      = 2 * time.Millisecond
	watchTimeout   = 30 * time.Second
	operationLimit = 2 * time.Minute
)

// TestBenchSwitch runs deploy (V2 onto the idle slot) and rollback (back to
// V1's warm slot) cycles through a real Caddy while a load generator sends
// at least 200 requests/s to it, and prints the failed requests, the median
// time from the decision to switch (the switched step's begin entry) to the
// proxy serving the new slot, and the median time from asking for a
// rollback to the proxy serving the previous slot.
func TestBenchSwitch(t *testing.T) {
	requireBench(t)
	benchSwitch(t, "")
}

// TestBenchRemoteSwitch is TestBenchSwitch on an environment whose host is
// reached over SSH (a real sshd on loopback): Docker, Caddy's admin API,
// the health probes and the files all go through one connection, which it
// counts.
func TestBenchRemoteSwitch(t *testing.T) {
	requireBench(t)
	sshd := testenv.StartSSHD(t)
	o := benchSwitch(t, "remote_", apptest.Remote(sshd))
	env, err := o.Env("staging")
	if err != nil {
		t.Fatal(err)
	}
	h, ok := env.Host.(*host.SSH)
	if !ok {
		t.Fatalf("the environment's host is %T, want *host.SSH", env.Host)
	}
	printResult("ssh_connections_per_host", float64(h.Connections()))
}

// benchSwitch runs the cycles and prints their results, each name with
// prefix; it returns the operations it drove.
func benchSwitch(t *testing.T, prefix string, opts ...apptest.Option) *app.Ops {
	testenv.MigrateRequests(t)
	e := apptest.NewDeployEnv(t, append([]apptest.Option{func(yaml *string, d *apptest.DeployEnv) {
		const from = "health_consecutive: 2, health_timeout: 8s, health_interval: 200ms"
		if !strings.Contains(*yaml, from) {
			d.T.Fatalf("the environment's policy no longer reads %q", from)
		}
		*yaml = strings.Replace(*yaml, from, "health_consecutive: 1, health_timeout: 8s, health_interval: 100ms", 1)
	}}, opts...)...)
	watch := &switchWatch{ctx: t.Context(), url: e.ProxyURL + "/version", client: noKeepAlive(), seen: make(chan switchSeen, 2*maxCycles)}
	o, err := app.NewOps(e.Cfg, app.OpsOptions{Store: e.Store, Notify: watch.notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	env, err := o.Env("staging")
	if err != nil {
		t.Fatal(err)
	}

	ctx, stopLoad := context.WithTimeout(t.Context(), loadMaxTime)
	defer stopLoad()
	l := newLoad(e.ProxyURL + "/")
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(ctx)
	}()

	var switches, rollbacks []time.Duration
	cycles := 0
	for ; cycles < maxCycles && (cycles < minCycles || l.total.Load() < minLoadTotal) && ctx.Err() == nil; cycles++ {
		dep, err := operate(t, "deploy", func(ctx context.Context) (ops.Operation, error) {
			return env.Deployer.Deploy(ctx, ops.DeployRequest{Version: apptest.V2, Requester: benchUser, Reason: "bench"})
		})
		if err != nil {
			break
		}
		seen := watch.next(t, dep.ID)
		switches = append(switches, seen.served.Sub(seen.decided))

		asked := time.Now()
		rbk, err := operate(t, "rollback", func(ctx context.Context) (ops.Operation, error) {
			return env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: benchUser, Reason: "bench"})
		})
		if err != nil {
			break
		}
		seen = watch.next(t, rbk.ID)
		switches = append(switches, seen.served.Sub(seen.decided))
		rollbacks = append(rollbacks, seen.served.Sub(asked))
		if t.Failed() {
			break
		}
	}
	stopLoad()
	<-loadDone

	total, failed := l.total.Load(), l.failed.Load()
	elapsed := l.stopped.Sub(l.started)
	t.Logf("%d cycles; load: %d requests in %s (%.0f/s, %d turns skipped), %d failed, per slot %v",
		cycles, total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), l.skipped, failed, l.slots)
	for _, f := range l.failures {
		t.Logf("failed request: %s", f)
	}
	if cycles < minCycles || total < minLoadTotal {
		t.Errorf("ran %d cycles under %d requests, want at least %d under %d", cycles, total, minCycles, minLoadTotal)
	}
	for _, s := range []ops.Slot{ops.Blue, ops.Green} {
		if l.slots[string(s)] == 0 {
			t.Errorf("the load never reached %s: %v", s, l.slots)
		}
	}
	if t.Failed() {
		return o
	}
	fmt.Printf("RESULT %sswitch_failed_requests=%d/%d\n", prefix, failed, total)
	printResult(prefix+"switch_p50_ms", ms(percentile(switches, 0.5)))
	printResult(prefix+"rollback_ms", ms(percentile(rollbacks, 0.5)))
	return o
}

// operate runs one deploy or rollback with a deadline, fails the test
// unless it ended done, and logs how long each step took.
func operate(t *testing.T, what string, fn func(context.Context) (ops.Operation, error)) (ops.Operation, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), operationLimit)
	defer cancel()
	op, err := fn(ctx)
	if err == nil && op.State != ops.StepDone {
		err = fmt.Errorf("ended %s: %s", op.State, op.Error)
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return op, err
	}
	t.Logf("%s %s→%s: %s", what, op.FromSlot, op.ToSlot, stepTimes(op.Journal))
	return op, nil
}

// stepTimes lists how long each journaled step took, from its begin entry
// to its end entry.
func stepTimes(journal []ops.JournalEntry) string {
	begun := map[ops.Step]time.Time{}
	var parts []string
	for _, j := range journal {
		switch j.Phase {
		case ops.PhaseBegin:
			begun[j.Step] = j.At
		case ops.PhaseEnd:
			if at, ok := begun[j.Step]; ok {
				parts = append(parts, fmt.Sprintf("%s %.1fms", j.Step, ms(j.At.Sub(at))))
			}
		}
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// noKeepAlive is a client that opens a new connection for every request,
// as Caddy does towards the slots (keepalive off): each request meets the
// proxy's current configuration.
func noKeepAlive() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// switchSeen is one switch as observed through the proxy.
type switchSeen struct {
	op      string
	decided time.Time // the switched step's begin entry
	served  time.Time // the first answer from the target slot
	err     error
}

// switchWatch polls the proxy from every switched:begin entry until it
// answers from the operation's target slot.
type switchWatch struct {
	ctx    context.Context
	url    string
	client *http.Client
	seen   chan switchSeen
}

// notify is the deployer's Notify: it starts a watcher at each switch.
func (w *switchWatch) notify(op ops.Operation, j ops.JournalEntry) {
	if j.Step != ops.StepSwitched || j.Phase != ops.PhaseBegin {
		return
	}
	go func() {
		served, err := w.await(op.ToSlot)
		select {
		case w.seen <- switchSeen{op: op.ID, decided: j.At, served: served, err: err}:
		case <-w.ctx.Done():
		}
	}()
}

// await returns when the proxy first answers from slot.
func (w *switchWatch) await(slot ops.Slot) (time.Time, error) {
	ctx, cancel := context.WithTimeout(w.ctx, watchTimeout)
	defer cancel()
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
		if err != nil {
			return time.Time{}, err
		}
		if resp, err := w.client.Do(req); err != nil {
			last = err.Error()
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := resp.Header.Get("X-Togather-Slot")
			if resp.StatusCode == http.StatusOK && got == string(slot) {
				return time.Now(), nil
			}
			last = fmt.Sprintf("HTTP %d from %q", resp.StatusCode, got)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("the proxy did not answer from %s (last: %s): %w", slot, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// next returns the switch observed for operation id, failing the test if
// none comes.
func (w *switchWatch) next(t *testing.T, id string) switchSeen {
	t.Helper()
	var s switchSeen
	select {
	case s = <-w.seen:
	case <-time.After(watchTimeout + 5*time.Second):
		t.Fatalf("no switch observed for %s", id)
	}
	if s.op != id {
		t.Fatalf("observed a switch of %s, want %s", s.op, id)
	}
	if s.err != nil {
		t.Fatalf("%s: %v", id, s.err)
	}
	return s
}

// load sends GET requests to one URL from loadWorkers goroutines. A single
// ticker hands out loadRate turns per second, evenly spaced; a turn that
// finds every worker busy is skipped. It stops when its context ends or
// after loadMaxTotal turns.
type load struct {
	url     string
	client  *http.Client
	total   atomic.Int64 // requests answered or failed
	failed  atomic.Int64
	skipped int64 // turns no worker was free for
	// paged counts the answers of the maintenance page (503 with
	// Retry-After) when the page is expected; otherwise they are failures.
	paged, expectPage atomic.Int64

	mu       sync.Mutex
	slots    map[string]int64 // answers per X-Togather-Slot
	failures []string         // the first few, with their time

	started, stopped time.Time
}

const keptFailures = 20

func newLoad(url string) *load {
	return &load{url: url, client: noKeepAlive(), slots: map[string]int64{}}
}

// run sends the load until ctx ends; the counters are final when it returns.
func (l *load) run(ctx context.Context) {
	l.started = time.Now()
	turns := make(chan struct{})
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for range turns {
				l.send(ctx)
			}
		})
	}
	tick := time.NewTicker(time.Second / loadRate)
	for given := 0; given < loadMaxTotal && ctx.Err() == nil; given++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			select {
			case turns <- struct{}{}:
			default:
				l.skipped++
			}
		}
	}
	tick.Stop()
	close(turns)
	wg.Wait()
	l.stopped = time.Now()
}

// send makes one request and counts its outcome. A request cut by the end
// of the run is not counted.
func (l *load) send(ctx context.Context) {
	at := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		l.fail(at, err.Error())
		return
	}
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(at, err.Error())
		}
		return
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	slot := resp.Header.Get("X-Togather-Slot")
	switch {
	case l.expectPage.Load() == 1 && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		l.total.Add(1)
		l.paged.Add(1)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail(at, fmt.Sprintf("HTTP %d from %q", resp.StatusCode, slot))
	case rerr != nil:
		l.fail(at, fmt.Sprintf("reading the body from %q: %v", slot, rerr))
	default:
		l.total.Add(1)
		l.mu.Lock()
		l.slots[slot]++
		l.mu.Unlock()
	}
}

func (l *load) fail(at time.Time, msg string) {
	l.total.Add(1)
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < keptFailures {
		l.failures = append(l.failures, at.Format("15:04:05.000")+" "+msg)
	}
}
