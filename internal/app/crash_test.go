package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/caddy"
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

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			op := recoverTheOne(ctx, t, e)
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

// recoverTheOne recovers e's one interrupted operation once its lease ran
// out (until then recovery leaves it alone) and returns it.
func recoverTheOne(ctx context.Context, t *testing.T, e *apptest.DeployEnv) ops.Operation {
	t.Helper()
	for {
		recovered, err := e.Env.Deployer.Recover(ctx)
		switch {
		case errors.Is(err, ops.ErrStillRunning):
			time.Sleep(200 * time.Millisecond)
			continue
		case err != nil:
			t.Fatalf("recover: %v", err)
		case len(recovered) != 1:
			t.Fatalf("recovered %d operations, want 1", len(recovered))
		}
		return recovered[0]
	}
}

// TestCrashDuringReleaseCommand kills the terminal deploy while a
// before_start command runs in its one-off container. Recovery removes
// that container, which carries the operation's label, says so in the
// journal, and ends the deploy as any interrupted at migrated: failed,
// blue serving.
func TestCrashDuringReleaseCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests need PostgreSQL, Docker and Caddy")
	}
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	// Run as a command, the stand-in server never exits: a slow migration.
	e := apptest.NewDeployEnv(t, apptest.EnvYAML(func(*apptest.DeployEnv) string {
		return "    release: {before_start: [{name: slow, entrypoint: [/testapp], timeout: 5m}]}\n"
	}))
	oneOff := e.Names[ops.Green] + "-release"
	t.Cleanup(func() { _ = e.Env.Engine.Remove(context.Background(), oneOff) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.Command(bin, "deploy", "staging", apptest.V2, "--no-wait", "--reason", "crash test", "--config", e.ConfigPath)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for running := false; !running; {
		select {
		case err := <-exited:
			t.Fatalf("the deploy ended before its release command ran: %v\n%s", err, out.String())
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the release command's container %s never ran:\n%s", oneOff, out.String())
		case <-time.After(100 * time.Millisecond):
			c, err := e.Env.Engine.Inspect(ctx, oneOff)
			running = err == nil && c.Running
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	op := recoverTheOne(ctx, t, e)
	if last := op.Journal[len(op.Journal)-1].Detail; op.State != ops.StepFailed || !strings.Contains(last, "interrupted at migrated; blue kept serving") {
		t.Errorf("after recovery: %s %q; want failed, interrupted at migrated", op.State, last)
	}
	if c, err := e.Env.Engine.Inspect(ctx, oneOff); err != nil || c.Exists {
		t.Errorf("the release command's container was left: %+v (%v)", c, err)
	}
	if j := journal(op); !strings.Contains(j, fmt.Sprintf("the one-off container %s of release command \"slow\" was removed", oneOff)) {
		t.Errorf("the journal does not say the release command's container was removed:\n%s", j)
	}
	e.WantServing(ops.Blue, apptest.V1)
	if g := e.Container(ops.Green); g.Exists {
		t.Errorf("green was started: %+v", g)
	}
	e.WantNoLock()
}

// TestCrashBetweenCaddyLoadAndSave kills the deploy at switched:begin and
// then has Caddy load the green configuration without saving the file, as
// the first half of a switch does: Caddy serves green, the Caddyfile still
// says blue. Status reports what Caddy serves; recovery trusts Caddy,
// keeps the serving green container, saves Caddy's configuration over the
// file, says so in the journal and ends the deploy done.
func TestCrashBetweenCaddyLoadAndSave(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests need PostgreSQL, Docker and Caddy")
	}
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	e := apptest.NewDeployEnv(t)
	cmd := exec.Command(bin, "deploy", "staging", apptest.V2, "--no-wait", "--reason", "crash test", "--config", e.ConfigPath)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN, "TOGATHER_CHATOPS_CRASH_AT=switched:begin")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("deploy was not killed at switched:begin: %v\n%s", err, out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	saved, err := os.ReadFile(e.Caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	green, err := caddy.Rewrite(saved, ops.Green, e.Env.Env.Slots[ops.Green].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Env.Proxy.Load(ctx, green); err != nil {
		t.Fatal(err)
	}
	if slot, _ := e.Serving(); slot != string(ops.Green) {
		t.Fatalf("after the load Caddy serves %q, want green", slot)
	}

	st, err := e.Ops.Status(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if st.Live != ops.Green || !slices.ContainsFunc(st.Drift, func(d string) bool { return strings.Contains(d, "the Caddyfile says blue") }) {
		t.Errorf("status: live %q, drift %q; want green, and the file's blue as drift", st.Live, st.Drift)
	}

	op := recoverTheOne(ctx, t, e)
	j := journal(op)
	if op.State != ops.StepDone || !strings.Contains(j, "Caddy served green while the Caddyfile said blue") {
		t.Errorf("after recovery: %s; want done, the repair of the file journaled:\n%s", op.State, j)
	}
	if g := e.Container(ops.Green); !g.Running {
		t.Fatalf("recovery removed or stopped the serving green container: %+v", g)
	}
	e.WantServing(ops.Green, apptest.V2) // Caddy and the repaired file agree
	if st, err := e.Ops.Status(ctx, "staging"); err != nil || st.Live != ops.Green || len(st.Drift) != 0 {
		t.Errorf("status after recovery: live %q, drift %q (%v); want green without drift", st.Live, st.Drift, err)
	}
	e.WantNoLock()
}
