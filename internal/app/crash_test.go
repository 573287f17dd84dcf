package app_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// TestCrashAtEveryStep kills the terminal deploy with SIGKILL right after
// each journal entry of the deploy and checks that recovery leaves exactly
// one healthy slot serving, the operation ended and explained, and no lock.
func TestCrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests need PostgreSQL, Docker and Caddy")
	}
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	points := []struct {
		at    string
		state ops.Step // after recovery
		live  ops.Slot
	}{
		{"locked:end", ops.StepFailed, ops.Blue},
		{"snapshotted:end", ops.StepFailed, ops.Blue},
		{"migrated:end", ops.StepFailed, ops.Blue},
		{"started:begin", ops.StepFailed, ops.Blue},
		{"started:end", ops.StepFailed, ops.Blue},
		{"healthy:end", ops.StepFailed, ops.Blue},
		{"switched:begin", ops.StepFailed, ops.Blue},
		{"switched:end", ops.StepDone, ops.Green},
		{"verified:end", ops.StepDone, ops.Green},
	}
	for _, p := range points {
		t.Run(p.at, func(t *testing.T) {
			e := apptest.NewDeployEnv(t)
			cmd := exec.Command(bin, "deploy", "staging", apptest.V2, "--no-wait", "--reason", "crash test", "--config", e.ConfigPath)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN, "TOGATHER_CHATOPS_CRASH_AT="+p.at)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("deploy was not killed at %s: %v\n%s", p.at, err, out.String())
			}

			// While its lease runs, the interrupted deploy is left alone.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var recovered []ops.Operation
			for {
				recovered, err = e.Env.Deployer.Recover(ctx)
				if !errors.Is(err, ops.ErrStillRunning) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("recover: %v", err)
			}
			if len(recovered) != 1 {
				t.Fatalf("recovered %d operations, want 1", len(recovered))
			}
			op := recovered[0]
			last := op.Journal[len(op.Journal)-1]
			if op.State != p.state || !strings.Contains(last.Detail, "interrupted at") {
				t.Errorf("after recovery: state %s, last entry %+v; want %s explained", op.State, last, p.state)
			}
			_, body := e.Serving()
			e.WantServing(p.live, map[ops.Slot]string{ops.Blue: apptest.V1, ops.Green: apptest.V2}[p.live])
			resp, err := http.Get(e.Env.Env.Slots[p.live].HealthURL)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("the live slot is not healthy: %v", err)
			}
			resp.Body.Close()
			other := e.Container(p.live.Other())
			if p.live == ops.Blue && other.Exists {
				t.Errorf("the half-deployed green container was left: %+v (serving %s)", other, body)
			}
			e.WantNoLock()
			// Recovering again finds nothing to do.
			if again, err := e.Env.Deployer.Recover(ctx); err != nil || len(again) != 0 {
				t.Errorf("second recover: %d ops, %v", len(again), err)
			}
		})
	}
}
