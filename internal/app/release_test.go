package app_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// journal is every journal detail of op, one per line.
func journal(op ops.Operation) string {
	var b strings.Builder
	for _, j := range op.Journal {
		fmt.Fprintf(&b, "%s %s %s\n", j.Step, j.Phase, j.Detail)
	}
	return b.String()
}

func preflight(t *testing.T, e *apptest.DeployEnv, version string) ops.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := e.Env.Preflight.Run(ctx, ops.PreflightRequest{Env: "staging", Version: version, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantCheck(t *testing.T, rep ops.Report, name string, status ops.CheckStatus, msg string) {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			if c.Status != status || !strings.Contains(c.Message, msg) {
				t.Errorf("%s: %s %q (→ %s), want %s mentioning %q", name, c.Status, c.Message, c.Remediation, status, msg)
			}
			return
		}
	}
	t.Errorf("no %s check in %+v", name, rep.Checks)
}

// TestFirstDeployOnAnEmptyHost deploys onto a host where neither slot has
// a container and no state file exists, with an old destructive migration
// in the set: pre-flight says first deploy and lints nothing, the slot the
// Caddyfile names gets the release, a rollback says there is nothing to go
// back to, and the next deploy is an ordinary blue/green one.
func TestFirstDeployOnAnEmptyHost(t *testing.T) {
	e := apptest.NewDeployEnv(t, apptest.Empty())
	apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_drop_name.up.sql"), 0o644, "ALTER TABLE events DROP COLUMN name;\n")
	apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_drop_name.down.sql"), 0o644, "ALTER TABLE events ADD COLUMN name text;\n")

	rep := preflight(t, e, apptest.V1)
	if rep.Verdict() == ops.CheckFail {
		t.Fatalf("pre-flight of a first deploy fails: %+v", rep.Blocking())
	}
	wantCheck(t, rep, "live.health", ops.CheckPass, "first deploy: no container in either slot; the deploy starts blue")
	wantCheck(t, rep, "migrations.safety", ops.CheckPass, "2 pending on a database with no migration applied (a first install)")

	op, err := e.Deploy(apptest.V1)
	if err != nil {
		t.Fatalf("first deploy: %v\n%s", err, journal(op))
	}
	if op.State != ops.StepDone || op.FromSlot != "" || op.ToSlot != ops.Blue {
		t.Fatalf("first deploy = %s from %q to %q", op.State, op.FromSlot, op.ToSlot)
	}
	if !strings.Contains(journal(op), "the first deploy of staging, so there is no previous slot to roll back to") {
		t.Errorf("the journal does not say it was a first deploy:\n%s", journal(op))
	}
	e.WantServing(ops.Blue, apptest.V1)
	e.WantNoLock()

	rb, err := e.Env.Deployer.Rollback(context.Background(), ops.RollbackRequest{Requester: "UBOB", Reason: "test", Force: true})
	if err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Errorf("rollback after a first deploy: %v\n%s", err, journal(rb))
	}
	e.WantServing(ops.Blue, apptest.V1)

	op, err = e.Deploy(apptest.V2)
	if err != nil || op.FromSlot != ops.Blue || op.ToSlot != ops.Green {
		t.Fatalf("second deploy: %v, %s → %s\n%s", err, op.FromSlot, op.ToSlot, journal(op))
	}
	e.WantServing(ops.Green, apptest.V2)
}

// river is the configuration of a release like the real server's: the
// containers reach the database on the Docker bridge and refuse to start
// without the River tables.
func river(extra string) apptest.Option {
	return apptest.ContainerEnv(func(e *apptest.DeployEnv) string {
		return fmt.Sprintf("{DATABASE_URL: %q, TESTAPP_REQUIRE_TABLES: \"river_queue,river_job\"%s}", testenv.ContainerDSN(e.T, e.Cli, e.AppDSN), extra)
	})
}

func tableExists(t *testing.T, dsn, table string) bool {
	t.Helper()
	var ok bool
	queryRow(t, dsn, "SELECT to_regclass($1) IS NOT NULL", []any{table}, &ok)
	return ok
}

// queryRow runs sql on the database dsn and scans its one row into dest;
// with no dest it only runs it.
func queryRow(t *testing.T, dsn, sql string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if len(dest) == 0 {
		_, err = conn.Exec(ctx, sql, args...)
	} else {
		err = conn.QueryRow(ctx, sql, args...).Scan(dest...)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestReleaseCommands deploys a release that needs River's tables before
// it starts and a sync after the switch, as the real server does: the
// commands run as one-off containers of the new image and their output is
// in the journal. A before-start command that fails stops the deploy with
// the old slot serving; an after-switch one that fails leaves the deploy
// in place and says so.
func TestReleaseCommands(t *testing.T) {
	const commands = `    release:
      before_start: [{name: river, command: [migrate-river], timeout: 1m}]
      after_switch: [{name: sync, command: [sync]}]
`
	t.Run("both succeed", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, river(""), apptest.EnvYAML(func(*apptest.DeployEnv) string { return commands }))
		op, err := e.Deploy(apptest.V2)
		if err != nil || op.AfterSwitchErr != nil {
			t.Fatalf("deploy: %v, after-switch: %v\n%s", err, op.AfterSwitchErr, journal(op))
		}
		e.WantServing(ops.Green, apptest.V2)
		j := journal(op)
		for _, want := range []string{`before-start command "river" (migrate-river): exit 0`, "river: applied migrations",
			`after-switch command "sync" (sync): exit 0`, `"sources_found":3`} {
			if !strings.Contains(j, want) {
				t.Errorf("journal lacks %q:\n%s", want, j)
			}
		}
		if !tableExists(t, e.AppDSN, "river_queue") {
			t.Error("the River tables were not created")
		}
		if strings.Index(j, "river: applied") > strings.Index(j, "started end") {
			t.Errorf("the release command ran after the slot started:\n%s", j)
		}
	})
	t.Run("before start fails", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, river(""), apptest.EnvYAML(func(*apptest.DeployEnv) string {
			return "    release: {before_start: [{name: river, command: [migrate-rivers]}]}\n"
		}))
		op, err := e.Deploy(apptest.V2)
		if err == nil || op.State != ops.StepFailed || !strings.Contains(err.Error(), `before-start command "river" exit 1`) {
			t.Fatalf("deploy: %v, state %s\n%s", err, op.State, journal(op))
		}
		if j := journal(op); !strings.Contains(j, `unknown command "migrate-rivers"`) || !strings.Contains(j, "blue keeps serving") {
			t.Errorf("the journal lacks the command's output or what serves:\n%s", j)
		}
		e.WantServing(ops.Blue, apptest.V1)
		if g := e.Container(ops.Green); g.Exists {
			t.Errorf("green was started: %+v", g)
		}
		e.WantNoLock()
	})
	t.Run("after switch fails", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, river(`, TESTAPP_SYNC_FAIL: "1"`), apptest.EnvYAML(func(*apptest.DeployEnv) string { return commands }))
		op, err := e.Deploy(apptest.V2)
		if err != nil || op.State != ops.StepDone {
			t.Fatalf("deploy: %v, state %s\n%s", err, op.State, journal(op))
		}
		if op.AfterSwitchErr == nil || !strings.Contains(op.AfterSwitchErr.Error(), `after-switch command "sync" exit 1`) {
			t.Errorf("the done deploy does not carry the failed sync: %v", op.AfterSwitchErr)
		}
		if j := journal(op); !strings.Contains(j, `but after-switch command "sync" exit 1`) || !strings.Contains(j, "the deploy stays") {
			t.Errorf("the outcome does not report the failed sync:\n%s", j)
		}
		e.WantServing(ops.Green, apptest.V2)
	})
}

// TestCrashingReleaseIsReportedWithItsLogs deploys releases that never
// come up: one that exits at start and one that crash-loops under a
// restart policy for want of River's tables (the real server's failure).
// The gate says what the container did, not that a port is closed, stops
// waiting as soon as that is certain, and the container's last log lines
// are in the journal before it is removed.
func TestCrashingReleaseIsReportedWithItsLogs(t *testing.T) {
	tests := []struct {
		name, version string
		opts          []apptest.Option
		want, logs    string
	}{
		{"exits at start", apptest.VCrash, nil, "green will not become healthy: %s exited with code 1", "fatal: crashing at start"},
		{"crash loop without river", apptest.V2, []apptest.Option{river(""), apptest.RestartPolicy("always")},
			"green will not become healthy: %s is crash-looping: restarted", `relation \"river_queue\" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := apptest.NewDeployEnv(t, tt.opts...)
			op, err := e.Deploy(tt.version)
			want := fmt.Sprintf(tt.want, e.Names[ops.Green])
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "port published") {
				t.Fatalf("deploy: %v, want %q\n%s", err, want, journal(op))
			}
			j := journal(op)
			if !strings.Contains(j, "last log lines of "+e.Names[ops.Green]) || !strings.Contains(j, strings.ReplaceAll(tt.logs, `\"`, `"`)) {
				t.Errorf("the journal lacks the container's last log lines:\n%s", j)
			}
			e.WantServing(ops.Blue, apptest.V1)
			if g := e.Container(ops.Green); g.Exists {
				t.Errorf("the failed container was left: %+v", g)
			}
		})
	}
}

// TestPreflightFindsWhatFailsAfterTheMigrations checks, before anything is
// changed, the two things that otherwise fail only once the snapshot and
// the migrations are done: a container network that does not exist, and a
// database URL that reaches the database from the host but not from the
// containers.
func TestPreflightFindsWhatFailsAfterTheMigrations(t *testing.T) {
	t.Run("missing network", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
			*yaml = strings.Replace(*yaml, `network: ""`, `network: "togather-no-such-network"`, 1)
		})
		rep := preflight(t, e, apptest.V2)
		wantCheck(t, rep, "network.exists", ops.CheckFail, "the Docker network togather-no-such-network does not exist")
	})
	t.Run("host-only database URL", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, apptest.ContainerEnv(func(*apptest.DeployEnv) string { return "" }))
		rep := preflight(t, e, apptest.V2)
		wantCheck(t, rep, "network.exists", ops.CheckPass, "default bridge")
		wantCheck(t, rep, "database.from_containers", ops.CheckFail, "points at 127.0.0.1: inside a container that is the container itself")
	})
	t.Run("database URL of the bridge", func(t *testing.T) {
		e := apptest.NewDeployEnv(t, river(""))
		rep := preflight(t, e, apptest.V2)
		wantCheck(t, rep, "database.from_containers", ops.CheckPass, "reaches")
	})
}
