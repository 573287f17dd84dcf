package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/ops"
)

func TestDeployThenRollback(t *testing.T) {
	e := apptest.NewDeployEnv(t)
	ctx := context.Background()

	op, err := e.Deploy(apptest.V2)
	if err != nil {
		t.Fatalf("deploy: %v\n%+v", err, op.Journal)
	}
	if op.State != ops.StepDone || op.FromSlot != ops.Blue || op.ToSlot != ops.Green || op.Snapshot == "" {
		t.Fatalf("op = %+v", op)
	}
	e.WantServing(ops.Green, apptest.V2)
	if !e.Container(ops.Blue).Running {
		t.Errorf("blue must stay warm for the bake window")
	}
	e.WantNoLock()
	var steps []string
	for _, j := range op.Journal {
		if j.Phase == ops.PhaseEnd {
			steps = append(steps, string(j.Step))
		}
	}
	if got := strings.Join(steps, ","); got != "locked,snapshotted,migrated,started,healthy,switched,verified,done" {
		t.Errorf("journal steps = %s", got)
	}
	state, err := os.ReadFile(e.StateFile)
	if err != nil || !strings.Contains(string(state), `"active_slot": "green"`) || !strings.Contains(string(state), apptest.V2) {
		t.Errorf("deployment-state.json = %s (%v)", state, err)
	}
	snaps, err := e.Env.Snapshots.List(ctx)
	if err != nil || len(snaps) != 1 || snaps[0].Name != op.Snapshot {
		t.Errorf("snapshots = %+v (%v), want the pre-deploy one", snaps, err)
	}

	rb, err := e.Env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test"})
	if err != nil {
		t.Fatalf("rollback: %v\n%+v", err, rb.Journal)
	}
	e.WantServing(ops.Blue, apptest.V1)
	if e.Container(ops.Green).Running {
		t.Errorf("the rolled-back slot must be stopped")
	}
	e.WantNoLock()

	// Rolling back again brings green back from its stopped container.
	if _, err := e.Env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test", Force: true}); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	e.WantServing(ops.Green, apptest.V2)

	// Deploying apptest.V2 again puts apptest.V2 on blue too: a rollback would change nothing.
	if _, err := e.Deploy(apptest.V2); err != nil {
		t.Fatal(err)
	}
	rb, err = e.Env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test"})
	if !errors.Is(err, ops.ErrIdentical) || rb.State != ops.StepFailed {
		t.Fatalf("rollback to the identical image: err=%v state=%s", err, rb.State)
	}
	e.WantServing(ops.Blue, apptest.V2)
	e.WantNoLock()
}

func TestDeployFailuresLeaveTheOldSlotServing(t *testing.T) {
	tests := []struct {
		name    string
		version string
		setup   func(t *testing.T, e *apptest.DeployEnv)
		want    string // in the operation's error
		state   ops.Step
	}{
		{name: "never healthy", version: apptest.VBad, want: "did not pass 2 health checks", state: ops.StepFailed},
		{name: "migration error", version: apptest.V2, state: ops.StepFailed, want: "migrat", setup: func(t *testing.T, e *apptest.DeployEnv) {
			apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_broken.up.sql"), 0o644, "ALTER TABLE no_such_table ADD COLUMN x int;\n")
			apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_broken.down.sql"), 0o644, "SELECT 1;\n")
		}},
		{name: "caddy rejects the load", version: apptest.V2, state: ops.StepFailed, want: "load", setup: func(t *testing.T, e *apptest.DeployEnv) {
			b, err := os.ReadFile(e.Caddyfile)
			if err != nil {
				t.Fatal(err)
			}
			// A directive Caddy does not know, outside the marker block:
			// the switch's load is rejected.
			apptest.WriteFile(t, e.Caddyfile, 0o644, string(b)+"\n:1 {\n\tno_such_directive\n}\n")
		}},
		{name: "pg_dump fails", version: apptest.V2, state: ops.StepFailed, want: "snapshot", setup: func(t *testing.T, e *apptest.DeployEnv) {
			b, _ := os.ReadFile(e.EnvFile)
			apptest.WriteFile(t, e.EnvFile, 0o600, strings.Replace(string(b), "postgres:postgres@", "postgres:wrong@", 1))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := apptest.NewDeployEnv(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			op, err := e.Deploy(tc.version)
			if err == nil {
				t.Fatalf("deploy succeeded: %+v", op)
			}
			if op.State != tc.state || !strings.Contains(op.Error+err.Error(), tc.want) {
				t.Errorf("state %s, error %q / %v; want %s mentioning %q", op.State, op.Error, err, tc.state, tc.want)
			}
			e.WantServing(ops.Blue, apptest.V1)
			if g := e.Container(ops.Green); g.Exists {
				t.Errorf("the new container was left behind: %+v", g)
			}
			e.WantNoLock()
			last := op.Journal[len(op.Journal)-1]
			if !strings.Contains(last.Detail, "blue keeps serving") {
				t.Errorf("the last journal entry does not say what serves: %+v", last)
			}
		})
	}
}

func TestDeployRefusedWhileLocked(t *testing.T) {
	e := apptest.NewDeployEnv(t)
	now := time.Now()
	if err := e.Store.Locks().Acquire(context.Background(), ops.Lock{Env: "staging", Owner: "UCAROL", Holder: "UCAROL", Reason: "db maintenance", Manual: true, AcquiredAt: now}, now); err != nil {
		t.Fatal(err)
	}
	op, err := e.Deploy(apptest.V2)
	var le *ops.LockError
	if !errors.As(err, &le) || le.Held.Holder != "UCAROL" || !strings.Contains(err.Error(), "db maintenance") {
		t.Fatalf("err = %v, want a lock error naming UCAROL and the reason", err)
	}
	if op.State != ops.StepFailed {
		t.Errorf("state = %s", op.State)
	}
	e.WantServing(ops.Blue, apptest.V1)
}

func TestBakeStopsThePreviousSlotAndWatchRollsBack(t *testing.T) {
	e, op := deployToBake(t, apptest.VFlaky, "20s")
	e.WantServing(ops.Green, apptest.VFlaky)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The flaky version turns unhealthy a few seconds after start: the
	// watch rolls back to blue, which bake had stopped after 1 s.
	if err := e.Env.Deployer.Bake(ctx, op.ID); err != nil {
		t.Fatalf("bake: %v", err)
	}
	e.WantServing(ops.Blue, apptest.V1)
	hist, err := e.Store.History(ctx, "staging", 5)
	if err != nil || len(hist) < 2 || hist[0].Kind != ops.KindRollback || hist[0].State != ops.StepDone || !strings.Contains(hist[0].Reason, "automatic") {
		t.Fatalf("history = %+v (%v), want a done automatic rollback first", hist, err)
	}
	baked := hist[1]
	if !baked.Baked {
		t.Errorf("the deploy is not marked baked: %+v", baked)
	}
}

func TestBakeStopsPreviousAndSummarisesTheWatch(t *testing.T) {
	// A Prometheus HTTP API answering the error-rate and p95 queries.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := "0.004"
		if strings.HasPrefix(r.URL.Query().Get("query"), "histogram_quantile") {
			v = "0.180"
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"` + v + `"]}]}}`))
	}))
	defer prom.Close()
	e, op := deployToBake(t, apptest.V2, "3s", func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "    migrations:", "    prometheus_url: "+prom.URL+"\n    migrations:", 1)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Env.Deployer.Bake(ctx, op.ID); err != nil {
		t.Fatalf("bake: %v", err)
	}
	e.WantServing(ops.Green, apptest.V2)
	if e.Container(ops.Blue).Running {
		t.Error("the previous slot still runs after the bake window")
	}
	got, err := e.Store.Get(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, j := range got.Journal {
		if j.Phase == ops.PhaseNote {
			notes = append(notes, j.Detail)
		}
	}
	all := strings.Join(notes, "\n")
	if !got.Baked || !strings.Contains(all, "bake ended") || !strings.Contains(all, "watch ended: green passed") || !strings.Contains(all, "error rate 0.40%, p95 180 ms") {
		t.Errorf("baked=%v, notes:\n%s", got.Baked, all)
	}
	// A second Bake, as after a restart, finds nothing left to do.
	if err := e.Env.Deployer.Bake(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
}

// TestBakeWaitsForTheEnvironmentLock holds staging's lock, as a running
// rollback does, when the bake deadline passes: the bake leaves blue, the
// slot the rollback is about to serve from, running and says why; once the
// lock is released the next tick stops blue.
func TestBakeWaitsForTheEnvironmentLock(t *testing.T) {
	e, op := deployToBake(t, apptest.V2, "2s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	locks := e.Store.Locks()
	held := ops.Lock{Env: "staging", Owner: "rbk_held_by_test", Holder: "UBOB", Reason: "rollback v1.0.0", AcquiredAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := locks.Acquire(ctx, held, time.Now()); err != nil {
		t.Fatal(err)
	}
	baked := make(chan error, 1)
	go func() { baked <- e.Env.Deployer.Bake(ctx, op.ID) }()

	waiting := func(j string) bool {
		return strings.Contains(j, "the bake deadline passed but staging is locked by UBOB")
	}
	for j := ""; !waiting(j); {
		select {
		case err := <-baked:
			got, _ := e.Store.Get(ctx, op.ID)
			t.Fatalf("the bake ended (%v) while staging was locked; blue running: %v; journal:\n%s", err, e.Container(ops.Blue).Running, journal(got))
		case <-ctx.Done():
			t.Fatal("the bake never said it waits for the lock")
		case <-time.After(100 * time.Millisecond):
			got, err := e.Store.Get(ctx, op.ID)
			if err != nil {
				t.Fatal(err)
			}
			j = journal(got)
		}
	}
	if !e.Container(ops.Blue).Running {
		t.Fatal("the bake stopped blue while staging was locked")
	}
	if err := locks.Release(ctx, "staging", held.Owner); err != nil {
		t.Fatal(err)
	}
	if err := <-baked; err != nil {
		t.Fatalf("bake: %v", err)
	}
	if e.Container(ops.Blue).Running {
		t.Error("blue still runs after the lock was released and the bake ended")
	}
	got, err := e.Store.Get(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j := journal(got); !got.Baked || !strings.Contains(j, "bake ended; "+e.Names[ops.Blue]+" stopped") {
		t.Errorf("baked=%v; want the stop of blue journaled:\n%s", got.Baked, j)
	}
	e.WantServing(ops.Green, apptest.V2)
	e.WantNoLock()
}

// deployToBake deploys version onto a new environment (with opts) whose
// bake window is 1 s and whose watch lasts watch.
func deployToBake(t *testing.T, version, watch string, opts ...apptest.Option) (*apptest.DeployEnv, ops.Operation) {
	t.Helper()
	e := apptest.NewDeployEnv(t, append([]apptest.Option{func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "bake: 1h, watch: 1h", "bake: 1s, watch: "+watch, 1)
	}}, opts...)...)
	op, err := e.Deploy(version)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return e, op
}
