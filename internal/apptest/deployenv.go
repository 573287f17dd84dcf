// Package apptest builds whole environments for tests that drive the
// wired bot: a blue slot serving v1 behind a real Caddy, an app database
// with migrations, snapshots, a state file and the bot's store, each on the
// real services and removed when the test ends.
package apptest

import (
	"context"
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
	V1     = "v1.0.0"       // healthy
	V2     = "v2.0.0"       // healthy
	VBad   = "v3.0.0-never" // never turns healthy
	VFlaky = "v4.0.0-flaky" // healthy, then unhealthy a few seconds after start
	VCrash = "v5.0.0-crash" // logs a few lines and exits 1 at start
)

// DeployEnv is a real environment: blue serving V1 behind a real Caddy, an
// app database with migrations, a snapshot dir, a state file, and the
// bot's store; everything removed when the test ends.
type DeployEnv struct {
	T          *testing.T
	Cli        *client.Client
	Cfg        *config.Config
	Store      *postgres.Store
	Ops        *app.Ops
	Env        *app.EnvOps
	ProxyURL   string
	Caddyfile  string
	Migrations string
	Snapshots  string
	StateFile  string
	EnvFile    string
	StoreDSN   string
	AppDSN     string // the application database that snapshots and migrations work on
	ConfigPath string
	Names      map[ops.Slot]string
	empty      bool // no slot runs: a host never deployed to
}

// Empty leaves both slots without a container and the state file absent:
// the host of a first deploy.
func Empty() Option { return func(_ *string, e *DeployEnv) { e.empty = true } }

// Option edits the configuration YAML before it is loaded.
type Option func(yaml *string, e *DeployEnv)

// NewDeployEnv brings the environment up; it skips under -short.
func NewDeployEnv(t *testing.T, opts ...Option) *DeployEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("deploy tests need PostgreSQL, Docker and Caddy")
	}
	e := &DeployEnv{T: t, Cli: testenv.Docker(t)}
	for v, mode := range map[string]string{V1: "healthy", V2: "healthy", VBad: "never-healthy", VFlaky: "unhealthy-after=4s", VCrash: "crash-at-start"} {
		testenv.TestappImage(t, e.Cli, v, mode)
	}
	dir := t.TempDir()
	ports := map[ops.Slot]int{ops.Blue: testenv.FreePort(t), ops.Green: testenv.FreePort(t)}
	run := fmt.Sprintf("dep%d", time.Now().UnixNano()%1e9)
	e.Names = map[ops.Slot]string{ops.Blue: run + "-blue", ops.Green: run + "-green"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range e.Names {
			_ = e.Cli.ContainerRemove(ctx, n, container.RemoveOptions{Force: true})
		}
	})
	caddy, proxyURL := testenv.Caddy(t, ops.Blue, ports)
	e.ProxyURL, e.Caddyfile = proxyURL, caddy.CaddyfilePath

	appDSN := testenv.Postgres(t)
	e.AppDSN = appDSN
	e.StoreDSN = testenv.Postgres(t)
	e.EnvFile = filepath.Join(dir, "app.env")
	WriteFile(t, e.EnvFile, 0o600, fmt.Sprintf("ENVIRONMENT=staging\nDATABASE_URL=%s\nJWT_SECRET=%s\n", appDSN, strings.Repeat("s", 40)))
	e.Migrations = filepath.Join(dir, "migrations")
	WriteFile(t, filepath.Join(e.Migrations, "000001_events.up.sql"), 0o644, "CREATE TABLE IF NOT EXISTS events (id bigserial PRIMARY KEY, name text NOT NULL);\nINSERT INTO events (name) VALUES ('one'), ('two');\n")
	WriteFile(t, filepath.Join(e.Migrations, "000001_events.down.sql"), 0o644, "DROP TABLE IF EXISTS events;\n")
	e.Snapshots = filepath.Join(dir, "snapshots")
	e.StateFile = filepath.Join(dir, "deployment-state.json")

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
    container_env: {DATABASE_URL: %q}
    policy: {health_consecutive: 2, health_timeout: 8s, health_interval: 200ms, bake: 1h, watch: 1h, lease: 5s}
roles: []
`, e.EnvFile, e.StateFile, proxyURL, caddy.AdminURL, caddy.CaddyfilePath, e.Names[ops.Blue], ports[ops.Blue], e.Names[ops.Green], ports[ops.Green], e.Migrations, e.Snapshots,
		testenv.ContainerDSN(t, e.Cli, appDSN))
	for _, o := range opts {
		o(&yaml, e)
	}
	e.ConfigPath = filepath.Join(dir, "config.yaml")
	WriteFile(t, e.ConfigPath, 0o644, yaml)
	var err error
	if e.Cfg, err = config.Load(e.ConfigPath); err != nil {
		t.Fatal(err)
	}
	e.Cfg.LoadSecrets(func(k string) string { return map[string]string{"DATABASE_URL": e.StoreDSN}[k] })

	ctx := context.Background()
	if err := postgres.MigrateUp(ctx, e.StoreDSN); err != nil {
		t.Fatal(err)
	}
	if e.Store, err = postgres.Open(ctx, e.StoreDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Store.Close)
	if e.Ops, err = app.NewOps(e.Cfg, app.OpsOptions{Store: e.Store, Notify: func(op ops.Operation, j ops.JournalEntry) {
		t.Logf("%s %s %s %s", op.ID, j.Step, j.Phase, j.Detail)
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Ops.Close)
	if e.Env, err = e.Ops.Env("staging"); err != nil {
		t.Fatal(err)
	}
	if e.empty {
		return e
	}
	// Blue serves V1 as if deployed earlier.
	if _, err := e.Env.Engine.Run(ctx, ops.ContainerSpec{Name: e.Names[ops.Blue], Image: "togather-server:" + V1, HostPort: ports[ops.Blue], Env: []string{"SLOT=blue"}, RestartPolicy: "no"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitHTTP(t, proxyURL+"/health", 30*time.Second)
	return e
}

// WriteFile writes content to path with mode, making directories.
func WriteFile(t *testing.T, path string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// Serving asks the proxy which slot and version answer.
func (e *DeployEnv) Serving() (slot, body string) {
	e.T.Helper()
	resp, err := http.Get(e.ProxyURL + "/version")
	if err != nil {
		e.T.Fatalf("the proxy does not answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.T.Fatalf("the proxy answers %d: %s", resp.StatusCode, b)
	}
	return resp.Header.Get("X-Togather-Slot"), string(b)
}

// WantServing fails the test unless the proxy and the Caddyfile both say
// slot serves version.
func (e *DeployEnv) WantServing(slot ops.Slot, version string) {
	e.T.Helper()
	got, body := e.Serving()
	if got != string(slot) || !strings.Contains(body, `"`+version+`"`) {
		e.T.Fatalf("proxy serves slot %q with %s, want %s running %s", got, body, slot, version)
	}
	live, _, err := e.Env.Proxy.LiveSlot(context.Background())
	if err != nil || live != slot {
		e.T.Fatalf("the Caddyfile says %q (%v), want %s", live, err, slot)
	}
}

// Container inspects the container of slot.
func (e *DeployEnv) Container(slot ops.Slot) ops.ContainerInfo {
	e.T.Helper()
	info, err := e.Env.Engine.Inspect(context.Background(), e.Names[slot])
	if err != nil {
		e.T.Fatal(err)
	}
	return info
}

// WantNoLock fails the test if the environment is locked.
func (e *DeployEnv) WantNoLock() {
	e.T.Helper()
	if l, held, err := e.Store.Locks().Get(context.Background(), "staging", time.Now()); err != nil || held {
		e.T.Fatalf("lock left behind: %+v (%v)", l, err)
	}
}

// Deploy runs a deploy of version as UALICE.
func (e *DeployEnv) Deploy(version string) (ops.Operation, error) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return e.Env.Deployer.Deploy(ctx, ops.DeployRequest{Version: version, Requester: "UALICE", Reason: "test"})
}

// ContainerEnv replaces the staging environment's container_env (by
// default the app database's URL on the Docker bridge) with the YAML flow
// mapping fill returns, e.g. `{A: "b"}`; "" removes it.
func ContainerEnv(fill func(e *DeployEnv) string) Option {
	return func(yaml *string, e *DeployEnv) {
		i := strings.Index(*yaml, "    container_env: ")
		j := i + strings.Index((*yaml)[i:], "\n") + 1
		line := ""
		if m := fill(e); m != "" {
			line = "    container_env: " + m + "\n"
		}
		*yaml = (*yaml)[:i] + line + (*yaml)[j:]
	}
}

// EnvYAML adds lines (indented for the staging environment, e.g.
// "    container_env: {A: b}\n") to the staging environment's configuration,
// for keys it does not set already. fill may use e's fields (e.g. AppDSN).
func EnvYAML(fill func(e *DeployEnv) string) Option {
	return func(yaml *string, e *DeployEnv) {
		*yaml = strings.Replace(*yaml, "    policy: {", fill(e)+"    policy: {", 1)
	}
}

// RestartPolicy sets the restart policy of the slot containers (the
// default is "no").
func RestartPolicy(policy string) Option {
	return func(yaml *string, _ *DeployEnv) {
		*yaml = strings.Replace(*yaml, `restart_policy: "no"`, fmt.Sprintf("restart_policy: %q", policy), 1)
	}
}

// Remote puts the environment on an ssh:// host: a real sshd on loopback
// logging in this test's user, so every path and loopback URL of the
// environment is reached through that one SSH connection, the migrations
// directory included.
func Remote(sshd *testenv.SSHD) Option {
	return func(yaml *string, e *DeployEnv) {
		*yaml = strings.Replace(*yaml, "    docker_host: unix:///var/run/docker.sock\n",
			fmt.Sprintf("    host: %s\n    docker_host: unix:///var/run/docker.sock\n", sshd.URL()), 1)
		*yaml += fmt.Sprintf("ssh: {identity_file: %q, known_hosts: %q, keepalive: 1s, connect_timeout: 5s}\n", sshd.IdentityFile, sshd.KnownHosts)
	}
}

// ForeignKeyMigration is a fixture migration that adds a table with a
// foreign key to the existing events table: the pre-deploy snapshot does
// not know it, and a restore that only runs the dump's DROPs fails on it.
const ForeignKeyMigration = `CREATE TABLE tickets (id bigserial PRIMARY KEY, event_id bigint NOT NULL REFERENCES events (id));
INSERT INTO tickets (event_id) SELECT id FROM events;
CREATE INDEX tickets_event_idx ON tickets (event_id);
`

// AddForeignKeyMigration writes ForeignKeyMigration as migration 000002,
// for the next deploy to apply.
func (e *DeployEnv) AddForeignKeyMigration() {
	e.T.Helper()
	WriteFile(e.T, filepath.Join(e.Migrations, "000002_tickets.up.sql"), 0o644, ForeignKeyMigration)
	WriteFile(e.T, filepath.Join(e.Migrations, "000002_tickets.down.sql"), 0o644, "DROP TABLE IF EXISTS tickets;\n")
}

// DatabaseContainer moves the application database into a container of
// its own, as Togather's togather-db, and takes snapshots with that
// container's pg_dump and psql (snapshots.dump: container:<name>): the env
// file's URL is the published port on the host, the slots' the
// container's address on the bridge.
func DatabaseContainer() Option {
	return func(yaml *string, e *DeployEnv) {
		db := testenv.PostgresContainer(e.T, e.Cli)
		e.AppDSN = db.DSN
		WriteFile(e.T, e.EnvFile, 0o600, fmt.Sprintf("ENVIRONMENT=staging\nDATABASE_URL=%s\nJWT_SECRET=%s\n", db.DSN, strings.Repeat("s", 40)))
		*yaml = strings.Replace(*yaml, "    snapshots: {dir: ", fmt.Sprintf("    snapshots: {dump: %q, dir: ", "container:"+db.Name), 1)
		ContainerEnv(func(*DeployEnv) string { return fmt.Sprintf("{DATABASE_URL: %q}", db.BridgeDSN) })(yaml, e)
	}
}
