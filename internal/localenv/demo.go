package localenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/docker"
)

// DemoLabel marks what the demo creates, so a crashed demo is cleaned up by
// the next one.
const DemoLabel = "com.togather.chatops.demo"

// The demo's databases, recreated each run: the bot's store, and the
// stand-in app database that snapshots and migrations work on.
const (
	demoStore = "togather_chatops_demo"
	demoApp   = "togather_demo_app"
)

// Demo is a stand-in Togather environment on this machine: testapp
// containers in a blue and a green slot behind a real Caddy with Togather's
// Caddyfile marker block, and a fresh store database for the bot.
type Demo struct {
	Env      string
	ProxyURL string
	StoreDSN string
	AppDSN   string
	Ports    map[ops.Slot]int
	Caddy    *Caddy
	Dir      string

	engine *docker.Engine
	cli    *client.Client
}

// StartDemo builds the testapp images (v2.0.0 too, healthy, to deploy),
// runs blue (v1.0.0, healthy, live) and green (v1.1.0, degraded) and Caddy
// in front of blue, and creates the store and app databases and the app's
// env file. dir holds Caddy's files, snapshots and the state file. Stop
// removes it all.
func StartDemo(ctx context.Context, dir string) (d *Demo, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo dir: %w", err)
	}
	d = &Demo{Env: "staging", Dir: dir, Ports: map[ops.Slot]int{}}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	if d.cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err = d.cli.Ping(ctx); err != nil {
		return nil, fmt.Errorf("the Docker engine does not answer: %w", err)
	}
	if d.engine, err = docker.New(""); err != nil {
		return nil, err
	}
	if err = RemoveLabelled(ctx, d.cli, DemoLabel, "true"); err != nil {
		return nil, fmt.Errorf("remove the previous demo: %w", err)
	}
	versions := map[ops.Slot][2]string{ops.Blue: {"v1.0.0", "healthy"}, ops.Green: {"v1.1.0", "degraded"}}
	for _, slot := range ops.Slots {
		v := versions[slot]
		ref, err := BuildTestapp(ctx, d.cli, v[0], v[1])
		if err != nil {
			return nil, err
		}
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		d.Ports[slot] = port
		_, err = d.engine.Run(ctx, ops.ContainerSpec{
			Name: d.container(slot), Image: ref, HostPort: port,
			Env:           []string{"SLOT=" + string(slot)},
			Labels:        map[string]string{DemoLabel: "true", "com.togather.deployment.slot": string(slot)},
			RestartPolicy: "no",
		})
		if err != nil {
			return nil, err
		}
	}
	if _, err = BuildTestapp(ctx, d.cli, "v2.0.0", "healthy"); err != nil {
		return nil, err
	}
	if err = waitHealthy(ctx, d.healthURL(ops.Blue)); err != nil {
		return nil, err
	}
	if d.Caddy, d.ProxyURL, err = StartTogatherCaddy(ctx, dir, CaddyfileOptions{Slot: ops.Blue, UpstreamPort: d.Ports[ops.Blue]}); err != nil {
		return nil, err
	}
	admin := AdminDSN()
	for _, db := range []string{demoStore, demoApp} {
		_ = DropDatabase(ctx, admin, db)
	}
	if d.StoreDSN, err = CreateDatabase(ctx, admin, demoStore); err != nil {
		return nil, fmt.Errorf("create the demo store (is PostgreSQL running? `make services`): %w", err)
	}
	if d.AppDSN, err = CreateDatabase(ctx, admin, demoApp); err != nil {
		return nil, fmt.Errorf("create the demo app database: %w", err)
	}
	env := fmt.Sprintf("ENVIRONMENT=staging\nDATABASE_URL=%s\nJWT_SECRET=%s\n", d.AppDSN, strings.Repeat("d", 48))
	if err = os.WriteFile(filepath.Join(dir, "app.env"), []byte(env), 0o600); err != nil {
		return nil, fmt.Errorf("demo env file: %w", err)
	}
	return d, nil
}

func (d *Demo) container(slot ops.Slot) string { return "togather-demo-" + string(slot) }

func (d *Demo) healthURL(slot ops.Slot) string {
	return fmt.Sprintf("http://127.0.0.1:%d/health", d.Ports[slot])
}

// SlotsSummary says where each slot listens.
func (d *Demo) SlotsSummary() string {
	var parts []string
	for _, s := range ops.Slots {
		parts = append(parts, fmt.Sprintf("%s on 127.0.0.1:%d", s, d.Ports[s]))
	}
	return strings.Join(parts, ", ")
}

// ConfigYAML is a bot configuration for the demo environment: alice (UALICE)
// may do everything, the on-call group SONCALL (bob) may read, approve and
// roll back, anyone else nothing. Deploys to the demo need one approval.
func (d *Demo) ConfigYAML() []byte {
	return fmt.Appendf(nil, `timezone: America/Toronto
channels: {deploys: CDEPLOYS, alerts_warning: CALERTS, alerts_critical: CPAGES, incidents: CINCIDENTS, announcements: CANNOUNCE}
environments:
  %[1]s:
    docker_host: unix:///var/run/docker.sock
    image: togather-server:{version}
    env_file: %[2]s/app.env
    state_file: %[2]s/deployment-state.json
    network: ""
    restart_policy: "no"
    public_url: %[9]s
    migrations: {}
    snapshots: {dir: %[2]s/snapshots}
    caddy: {admin_url: %[3]s, caddyfile: %[4]s}
    policy: {require_approval: true, approvals: 1, health_consecutive: 2, health_interval: 1s, bake: 2m, watch: 6m}
    slots:
      blue:  {container: %[5]s, host_port: %[6]d, health_url: "http://127.0.0.1:%[6]d/health"}
      green: {container: %[7]s, host_port: %[8]d, health_url: "http://127.0.0.1:%[8]d/health"}
roles:
  - {name: admins, users: [UALICE], commands: ["*"], environments: ["*"]}
  - {name: oncall, groups: [SONCALL], commands: [status, history, locks, rollback, approve, "incident.*"], environments: ["*"]}
`, d.Env, d.Dir, d.Caddy.AdminURL, d.Caddy.CaddyfilePath,
		d.container(ops.Blue), d.Ports[ops.Blue], d.container(ops.Green), d.Ports[ops.Green], d.ProxyURL)
}

// Stop removes the containers, stops Caddy and drops the store database.
func (d *Demo) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.Caddy != nil {
		d.Caddy.Stop()
	}
	if d.cli != nil {
		_ = RemoveLabelled(ctx, d.cli, DemoLabel, "true")
		_ = d.cli.Close()
	}
	if d.engine != nil {
		_ = d.engine.Close()
	}
	for _, db := range []string{demoStore, demoApp} {
		_ = DropDatabase(ctx, AdminDSN(), db)
	}
}

// waitHealthy polls url until it answers 200 or 30 s pass.
func waitHealthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not turn healthy: %w", url, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
