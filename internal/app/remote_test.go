package app_test

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// An environment on an ssh:// host is deployed, rolled back, snapshotted,
// verified, restored and put behind the maintenance page through one SSH
// connection, with Caddy really serving each slot.
func TestRemoteHostDeployRollbackSnapshotMaintenance(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	e := apptest.NewDeployEnv(t, apptest.Remote(sshd))
	ctx := context.Background()
	h, ok := e.Env.Host.(*host.SSH)
	if !ok {
		t.Fatalf("the environment's host is %T, want *host.SSH", e.Env.Host)
	}

	op, err := e.Deploy(apptest.V2)
	if err != nil {
		t.Fatalf("deploy: %v\n%+v", err, op.Journal)
	}
	e.WantServing(ops.Green, apptest.V2)
	migrated := ""
	for _, j := range op.Journal {
		if j.Step == ops.StepMigrated && j.Phase == ops.PhaseEnd {
			migrated = j.Detail
		}
	}
	if !strings.HasPrefix(migrated, "applied ") && migrated != "no pending migrations" {
		t.Errorf("migrated: %q, want the host's migrations directory read through SSH", migrated)
	}
	state, err := os.ReadFile(e.StateFile)
	if err != nil || !strings.Contains(string(state), `"active_slot": "green"`) {
		t.Errorf("deployment-state.json = %s (%v)", state, err)
	}
	if _, err := e.Env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test"}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	e.WantServing(ops.Blue, apptest.V1)

	snap, err := e.Env.Snapshots.Create(ctx, "manual", nil)
	if err != nil {
		t.Fatalf("snapshot over ssh: %v", err)
	}
	if _, err := os.Stat(snap.Path); err != nil {
		t.Fatalf("the snapshot is not in the host's directory: %v", err)
	}
	list, err := e.Env.Snapshots.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("snapshots = %+v, %v; want the pre-deploy one and the manual one", list, err)
	}
	v, err := e.Env.Snapshots.Verify(ctx, snap.Name)
	if err != nil || len(v.Mismatch) != 0 {
		t.Fatalf("verify over ssh: %+v, %v", v, err)
	}
	rop, err := e.Env.Deployer.Restore(ctx, ops.RestoreRequest{Snapshot: snap.Name, Requester: "UBOB"})
	if err != nil || rop.State != ops.StepDone {
		t.Fatalf("restore over ssh: %v (%s)", err, rop.State)
	}

	if err := e.Env.Proxy.EnterMaintenance(ctx, "<h1>back soon</h1>"); err != nil {
		t.Fatalf("maintenance over ssh: %v", err)
	}
	if in, err := e.Env.Proxy.InMaintenance(ctx); err != nil || !in {
		t.Fatalf("InMaintenance = %v, %v", in, err)
	}
	if err := e.Env.Proxy.ExitMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	e.WantServing(ops.Blue, apptest.V1)

	st, err := e.Ops.Status(ctx, "staging")
	if err != nil || st.Live != ops.Blue {
		t.Fatalf("status over ssh: live %s, %v", st.Live, err)
	}
	if n := h.Connections(); n != 1 {
		t.Errorf("%d SSH connections to the host for the whole run, want 1", n)
	}
}

// snapshots.dump: container:<name> on an ssh:// host: the pre-deploy
// snapshot, a manual one, verify and restore all run the database
// container's own pg_dump and psql through the Engine API over the one SSH
// connection, with no client program on the bot's PATH at all.
func TestRemoteHostSnapshotsWithTheDatabaseContainersClients(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	e := apptest.NewDeployEnv(t, apptest.Remote(sshd), apptest.DatabaseContainer())
	t.Setenv("PATH", t.TempDir()) // no pg_dump, no psql
	ctx := context.Background()

	rep, err := e.Env.Preflight.Run(ctx, ops.PreflightRequest{Env: "staging", Version: apptest.V2, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var c ops.Check
	for _, c = range rep.Checks {
		if c.Name == "snapshots.client" {
			break
		}
	}
	if c.Status != ops.CheckPass || !strings.Contains(c.Message, "on container "+e.Cfg.Environments["staging"].Snapshots.DumpContainer()) {
		t.Fatalf("snapshots.client = %+v, want pass with the container's pg_dump", c)
	}
	op, err := e.Deploy(apptest.V2)
	if err != nil {
		t.Fatalf("deploy with the container's pg_dump: %v\n%+v", err, op.Journal)
	}
	e.WantServing(ops.Green, apptest.V2)
	snap, err := e.Env.Snapshots.Create(ctx, "manual", nil)
	if err != nil {
		t.Fatalf("snapshot with the container's pg_dump: %v", err)
	}
	if v, err := e.Env.Snapshots.Verify(ctx, snap.Name); err != nil || len(v.Mismatch) != 0 || v.Tables == 0 {
		t.Fatalf("verify with the container's psql: %+v, %v", v, err)
	}
	want := testenv.Catalog(t, e.AppDSN)
	conn, err := pgx.Connect(ctx, e.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	rop, err := e.Env.Deployer.Restore(ctx, ops.RestoreRequest{Snapshot: snap.Name, Requester: "UBOB"})
	if err != nil || rop.State != ops.StepDone {
		t.Fatalf("restore with the container's psql: %v (%s)", err, rop.State)
	}
	if got := testenv.Catalog(t, e.AppDSN); !reflect.DeepEqual(got, want) {
		t.Errorf("after the restore the database differs from the snapshot:\n%s", testenv.DiffLines(want, got))
	}
	e.WantServing(ops.Green, apptest.V2)
	if n := e.Env.Host.(*host.SSH).Connections(); n != 1 {
		t.Errorf("%d SSH connections to the host for the whole run, want 1", n)
	}
}

// sshd killed in the middle of a deploy: the deploy fails safely, the old
// slot keeps serving, and after sshd returns the bot reconnects by itself.
func TestRemoteHostLostMidDeployLeavesTheOldSlotServing(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	e := apptest.NewDeployEnv(t, apptest.Remote(sshd))
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Kill sshd once the deploy has started the new slot's container.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			info, err := e.Cli.ContainerInspect(context.Background(), e.Names[ops.Green])
			if err == nil && info.State != nil && info.State.Running {
				sshd.Stop()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	op, err := e.Deploy(apptest.V2)
	<-killed
	if err == nil || op.State == ops.StepDone {
		t.Fatalf("a deploy whose host went away mid-way ended %s (%v)", op.State, err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("the error does not name the host: %v", err)
	}
	slot, body := e.Serving()
	if slot != string(ops.Blue) || !strings.Contains(body, apptest.V1) {
		t.Fatalf("after the lost deploy the proxy serves %s %s, want blue %s", slot, body, apptest.V1)
	}
	sshd.Start(t)
	deadline := time.Now().Add(45 * time.Second)
	for {
		st, err := e.Ops.Status(context.Background(), "staging")
		if err == nil && st.Live == ops.Blue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status through the host after sshd came back: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// host check reaches every part of a remote environment through SSH and
// reports each one; the sysctl it reads is the host's own.
func TestRemoteHostCheck(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	e := apptest.NewDeployEnv(t, apptest.Remote(sshd))
	checks, err := e.Ops.CheckHost(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ops.Check{}
	for _, c := range checks {
		got[c.Name] = c
	}
	for _, name := range []string{"host.files", "host.docker_group", "docker.api", "proxy.admin", "proxy.caddyfile", "disk.free", "database.reachable"} {
		if c := got[name]; c.Status != ops.CheckPass {
			t.Errorf("%s = %+v, want pass through SSH", name, c)
		}
	}
	sysctl, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	want := ops.CheckWarn
	if err == nil && strings.TrimSpace(string(sysctl)) == "1" {
		want = ops.CheckPass
	}
	if c := got["host.tcp_migrate_req"]; c.Status != want {
		t.Errorf("host.tcp_migrate_req = %+v, want %s for this host's value %q", c, want, sysctl)
	}

	sshd.Stop()
	checks, err = e.Ops.CheckHost(context.Background(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Name == "host.docker_group" && c.Status == ops.CheckPass {
			continue // root's rights need no file of the host
		}
		if c.Status != ops.CheckFail && c.Status != ops.CheckWarn {
			t.Errorf("%s passed with the host's sshd down: %+v", c.Name, c)
		}
		if c.Status == ops.CheckFail && !strings.Contains(c.Message, "127.0.0.1") {
			t.Errorf("%s does not name the host: %s", c.Name, c.Message)
		}
	}
}

// A host that goes away is a critical alert naming the host, not silence,
// and the alert resolves by itself once the bot has reconnected.
func TestRemoteHostUnreachableAlertsThenResolves(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	c := startChatWith(t, false, `alerts:
  health_interval: 200ms
  unhealthy_interval: 200ms
  for: {host-unreachable: 1s}
`, apptest.Remote(sshd))
	sshd.Stop()
	alert := c.waitMessage(t, slackfake.InChannel("CCRIT"), slackfake.TextContains("host-unreachable"))
	if text := slackfake.Render(alert); !strings.Contains(text, "127.0.0.1") {
		t.Errorf("the alert does not name the host:\n%s", text)
	}
	sshd.Start(t)
	c.waitMessage(t, slackfake.InThread(alert.TS), slackfake.TextContains("Resolved"))
}
