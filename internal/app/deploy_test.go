package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// Versions of the stand-in server used by the deploy tests.
const (
	v1    = "v1.0.0"       // healthy
	v2    = "v2.0.0"       // healthy
	vBad  = "v3.0.0-never" // never turns healthy
	vFlak = "v4.0.0-flaky" // healthy, then unhealthy a few seconds after start
)

// deployEnv is a real environment: blue serving v1 behind a real Caddy, an
// app database with migrations, a snapshot dir, a state file, and the
// bot's store; everything removed when the test ends.
type deployEnv struct {
	t          *testing.T
	cli        *client.Client
	cfg        *config.Config
	store      *postgres.Store
	ops        *app.Ops
	env        *app.EnvOps
	proxyURL   string
	caddyfile  string
	migrations string
	snapshots  string
	stateFile  string
	envFile    string
	storeDSN   string
	configPath string
	names      map[ops.Slot]string
}

type envOption func(yaml *string, e *deployEnv)

func newDeployEnv(t *testing.T, opts ...envOption) *deployEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("deploy tests need PostgreSQL, Docker and Caddy")
	}
	e := &deployEnv{t: t, cli: testenv.Docker(t)}
	for v, mode := range map[string]string{v1: "healthy", v2: "healthy", vBad: "never-healthy", vFlak: "unhealthy-after=4s"} {
		testenv.TestappImage(t, e.cli, v, mode)
	}
	dir := t.TempDir()
	ports := map[ops.Slot]int{ops.Blue: testenv.FreePort(t), ops.Green: testenv.FreePort(t)}
	run := fmt.Sprintf("dep%d", time.Now().UnixNano()%1e9)
	e.names = map[ops.Slot]string{ops.Blue: run + "-blue", ops.Green: run + "-green"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range e.names {
			_ = e.cli.ContainerRemove(ctx, n, container.RemoveOptions{Force: true})
		}
	})
	caddy, proxyURL := testenv.Caddy(t, ops.Blue, ports)
	e.proxyURL, e.caddyfile = proxyURL, caddy.CaddyfilePath

	appDSN := testenv.Postgres(t)
	e.storeDSN = testenv.Postgres(t)
	e.envFile = filepath.Join(dir, "app.env")
	writeFile(t, e.envFile, 0o600, fmt.Sprintf("ENVIRONMENT=staging\nDATABASE_URL=%s\nJWT_SECRET=%s\n", appDSN, strings.Repeat("s", 40)))
	e.migrations = filepath.Join(dir, "migrations")
	writeFile(t, filepath.Join(e.migrations, "000001_events.up.sql"), 0o644, "CREATE TABLE IF NOT EXISTS events (id bigserial PRIMARY KEY, name text NOT NULL);\nINSERT INTO events (name) VALUES ('one'), ('two');\n")
	writeFile(t, filepath.Join(e.migrations, "000001_events.down.sql"), 0o644, "DROP TABLE IF EXISTS events;\n")
	e.snapshots = filepath.Join(dir, "snapshots")
	e.stateFile = filepath.Join(dir, "deployment-state.json")

	yaml := fmt.Sprintf(`
channels: {deploys: CDEPLOYS, alerts_warning: CWARN, alerts_critical: CCRIT, incidents: CINC, announcements: CANN}
environments:
  staging:
    docker_host: unix:///var/run/docker.sock
    image: "togather-server:{version}"
    env_file: %q
    state_file: %q
    network: ""
    restart_policy: "no"
    public_url: %q
    caddy: {admin_url: %q, caddyfile: %q}
    slots:
      blue:  {container: %s, host_port: %d}
      green: {container: %s, host_port: %d}
    migrations: {dir: %q}
    snapshots: {dir: %q}
    policy: {health_consecutive: 2, health_timeout: 8s, health_interval: 200ms, bake: 1h, watch: 1h, lease: 2s}
roles: []
`, e.envFile, e.stateFile, proxyURL, caddy.AdminURL, caddy.CaddyfilePath, e.names[ops.Blue], ports[ops.Blue], e.names[ops.Green], ports[ops.Green], e.migrations, e.snapshots)
	for _, o := range opts {
		o(&yaml, e)
	}
	e.configPath = filepath.Join(dir, "config.yaml")
	writeFile(t, e.configPath, 0o644, yaml)
	var err error
	if e.cfg, err = config.Load(e.configPath); err != nil {
		t.Fatal(err)
	}
	e.cfg.LoadSecrets(func(k string) string { return map[string]string{"DATABASE_URL": e.storeDSN}[k] })

	ctx := context.Background()
	if err := postgres.MigrateUp(ctx, e.storeDSN); err != nil {
		t.Fatal(err)
	}
	if e.store, err = postgres.Open(ctx, e.storeDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.store.Close)
	if e.ops, err = app.NewOps(e.cfg, app.OpsOptions{Store: e.store, Notify: func(op ops.Operation, j ops.JournalEntry) {
		t.Logf("%s %s %s %s", op.ID, j.Step, j.Phase, j.Detail)
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ops.Close)
	if e.env, err = e.ops.Env("staging"); err != nil {
		t.Fatal(err)
	}
	// Blue serves v1 as if deployed earlier.
	if _, err := e.env.Engine.Run(ctx, ops.ContainerSpec{Name: e.names[ops.Blue], Image: "togather-server:" + v1, HostPort: ports[ops.Blue], Env: []string{"SLOT=blue"}, RestartPolicy: "no"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitHTTP(t, proxyURL+"/health", 30*time.Second)
	return e
}

func writeFile(t *testing.T, path string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// serving asks the proxy which slot and version answer.
func (e *deployEnv) serving() (slot, body string) {
	e.t.Helper()
	resp, err := http.Get(e.proxyURL + "/version")
	if err != nil {
		e.t.Fatalf("the proxy does not answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("the proxy answers %d: %s", resp.StatusCode, b)
	}
	return resp.Header.Get("X-Togather-Slot"), string(b)
}

func (e *deployEnv) wantServing(slot ops.Slot, version string) {
	e.t.Helper()
	got, body := e.serving()
	if got != string(slot) || !strings.Contains(body, `"`+version+`"`) {
		e.t.Fatalf("proxy serves slot %q with %s, want %s running %s", got, body, slot, version)
	}
	live, _, err := e.env.Proxy.LiveSlot(context.Background())
	if err != nil || live != slot {
		e.t.Fatalf("the Caddyfile says %q (%v), want %s", live, err, slot)
	}
}

func (e *deployEnv) container(slot ops.Slot) ops.ContainerInfo {
	e.t.Helper()
	info, err := e.env.Engine.Inspect(context.Background(), e.names[slot])
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

func (e *deployEnv) wantNoLock() {
	e.t.Helper()
	if l, held, err := e.store.Locks().Get(context.Background(), "staging", time.Now()); err != nil || held {
		e.t.Fatalf("lock left behind: %+v (%v)", l, err)
	}
}

func (e *deployEnv) deploy(version string) (ops.Operation, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return e.env.Deployer.Deploy(ctx, ops.DeployRequest{Version: version, Requester: "UALICE", Reason: "test"})
}

func TestDeployThenRollback(t *testing.T) {
	e := newDeployEnv(t)
	ctx := context.Background()

	op, err := e.deploy(v2)
	if err != nil {
		t.Fatalf("deploy: %v\n%+v", err, op.Journal)
	}
	if op.State != ops.StepDone || op.FromSlot != ops.Blue || op.ToSlot != ops.Green || op.Snapshot == "" {
		t.Fatalf("op = %+v", op)
	}
	e.wantServing(ops.Green, v2)
	if !e.container(ops.Blue).Running {
		t.Errorf("blue must stay warm for the bake window")
	}
	e.wantNoLock()
	var steps []string
	for _, j := range op.Journal {
		if j.Phase == ops.PhaseEnd {
			steps = append(steps, string(j.Step))
		}
	}
	if got := strings.Join(steps, ","); got != "locked,snapshotted,migrated,started,healthy,switched,verified,done" {
		t.Errorf("journal steps = %s", got)
	}
	state, err := os.ReadFile(e.stateFile)
	if err != nil || !strings.Contains(string(state), `"active_slot": "green"`) || !strings.Contains(string(state), v2) {
		t.Errorf("deployment-state.json = %s (%v)", state, err)
	}
	snaps, err := e.env.Snapshots.List(ctx)
	if err != nil || len(snaps) != 1 || snaps[0].Name != op.Snapshot {
		t.Errorf("snapshots = %+v (%v), want the pre-deploy one", snaps, err)
	}

	rb, err := e.env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test"})
	if err != nil {
		t.Fatalf("rollback: %v\n%+v", err, rb.Journal)
	}
	e.wantServing(ops.Blue, v1)
	if e.container(ops.Green).Running {
		t.Errorf("the rolled-back slot must be stopped")
	}
	e.wantNoLock()

	// Rolling back again brings green back from its stopped container.
	if _, err := e.env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test", Force: true}); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	e.wantServing(ops.Green, v2)

	// Deploying v2 again puts v2 on blue too: a rollback would change nothing.
	if _, err := e.deploy(v2); err != nil {
		t.Fatal(err)
	}
	rb, err = e.env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test"})
	if !errors.Is(err, ops.ErrIdentical) || rb.State != ops.StepFailed {
		t.Fatalf("rollback to the identical image: err=%v state=%s", err, rb.State)
	}
	e.wantServing(ops.Blue, v2)
	e.wantNoLock()
}

func TestDeployFailuresLeaveTheOldSlotServing(t *testing.T) {
	tests := []struct {
		name    string
		version string
		setup   func(t *testing.T, e *deployEnv)
		want    string // in the operation's error
		state   ops.Step
	}{
		{name: "never healthy", version: vBad, want: "did not pass 2 health checks", state: ops.StepFailed},
		{name: "migration error", version: v2, state: ops.StepFailed, want: "migrat", setup: func(t *testing.T, e *deployEnv) {
			writeFile(t, filepath.Join(e.migrations, "000002_broken.up.sql"), 0o644, "ALTER TABLE no_such_table ADD COLUMN x int;\n")
			writeFile(t, filepath.Join(e.migrations, "000002_broken.down.sql"), 0o644, "SELECT 1;\n")
		}},
		{name: "caddy rejects the load", version: v2, state: ops.StepFailed, want: "load", setup: func(t *testing.T, e *deployEnv) {
			b, err := os.ReadFile(e.caddyfile)
			if err != nil {
				t.Fatal(err)
			}
			// A directive Caddy does not know, outside the marker block:
			// the switch's load is rejected.
			writeFile(t, e.caddyfile, 0o644, string(b)+"\n:1 {\n\tno_such_directive\n}\n")
		}},
		{name: "pg_dump fails", version: v2, state: ops.StepFailed, want: "snapshot", setup: func(t *testing.T, e *deployEnv) {
			b, _ := os.ReadFile(e.envFile)
			writeFile(t, e.envFile, 0o600, strings.Replace(string(b), "postgres:postgres@", "postgres:wrong@", 1))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeployEnv(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			op, err := e.deploy(tc.version)
			if err == nil {
				t.Fatalf("deploy succeeded: %+v", op)
			}
			if op.State != tc.state || !strings.Contains(op.Error+err.Error(), tc.want) {
				t.Errorf("state %s, error %q / %v; want %s mentioning %q", op.State, op.Error, err, tc.state, tc.want)
			}
			e.wantServing(ops.Blue, v1)
			if g := e.container(ops.Green); g.Exists {
				t.Errorf("the new container was left behind: %+v", g)
			}
			e.wantNoLock()
			last := op.Journal[len(op.Journal)-1]
			if !strings.Contains(last.Detail, "blue keeps serving") {
				t.Errorf("the last journal entry does not say what serves: %+v", last)
			}
		})
	}
}

func TestDeployRefusedWhileLocked(t *testing.T) {
	e := newDeployEnv(t)
	now := time.Now()
	if err := e.store.Locks().Acquire(context.Background(), ops.Lock{Env: "staging", Owner: "UCAROL", Holder: "UCAROL", Reason: "db maintenance", Manual: true, AcquiredAt: now}, now); err != nil {
		t.Fatal(err)
	}
	op, err := e.deploy(v2)
	var le *ops.LockError
	if !errors.As(err, &le) || le.Held.Holder != "UCAROL" || !strings.Contains(err.Error(), "db maintenance") {
		t.Fatalf("err = %v, want a lock error naming UCAROL and the reason", err)
	}
	if op.State != ops.StepFailed {
		t.Errorf("state = %s", op.State)
	}
	e.wantServing(ops.Blue, v1)
}

func TestBakeStopsThePreviousSlotAndWatchRollsBack(t *testing.T) {
	e := newDeployEnv(t, func(yaml *string, _ *deployEnv) {
		*yaml = strings.Replace(*yaml, "bake: 1h, watch: 1h", "bake: 1s, watch: 20s", 1)
	})
	op, err := e.deploy(vFlak)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	e.wantServing(ops.Green, vFlak)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The flaky version turns unhealthy a few seconds after start: the
	// watch rolls back to blue, which bake had stopped after 1 s.
	if err := e.env.Deployer.Bake(ctx, op.ID); err != nil {
		t.Fatalf("bake: %v", err)
	}
	e.wantServing(ops.Blue, v1)
	hist, err := e.store.History(ctx, "staging", 5)
	if err != nil || len(hist) < 2 || hist[0].Kind != ops.KindRollback || hist[0].State != ops.StepDone || !strings.Contains(hist[0].Reason, "automatic") {
		t.Fatalf("history = %+v (%v), want a done automatic rollback first", hist, err)
	}
	baked := hist[1]
	if !baked.Baked {
		t.Errorf("the deploy is not marked baked: %+v", baked)
	}
}
