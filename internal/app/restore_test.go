package app_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/pg"
)

// load sends requests through the proxy until stop is called and counts
// those that failed otherwise than with a 503 carrying Retry-After.
type load struct {
	mu      sync.Mutex
	total   int
	page    int      // 503 + Retry-After
	failed  []string // anything else that is not a 200
	stop    chan struct{}
	stopped sync.WaitGroup
}

func startLoad(t *testing.T, url string) *load {
	l := &load{stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		l.stopped.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Get(url)
				l.mu.Lock()
				l.total++
				switch {
				case err != nil:
					l.failed = append(l.failed, err.Error())
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					l.page++
				case resp.StatusCode != http.StatusOK:
					l.failed = append(l.failed, resp.Status)
				}
				l.mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

// end stops the load once; it returns the failures.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.stopped.Wait()
}

func (l *load) check(t *testing.T, what string) {
	t.Helper()
	l.end()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total == 0 {
		t.Fatalf("%s: no request was sent", what)
	}
	if len(l.failed) > 0 {
		t.Errorf("%s: %d of %d requests failed otherwise than with the 503 page: %v", what, len(l.failed), l.total, l.failed[:min(5, len(l.failed))])
	}
	t.Logf("%s: %d requests, %d answered by the 503 page", what, l.total, l.page)
}

// TestRollbackRestoreSnapshotAcrossForeignKeyMigration: a deploy whose
// migration adds a foreign key to an existing table, then rollback
// --restore-snapshot under load: the previous slot serves, the database
// equals the pre-deploy snapshot, the journal shows its migration version,
// and no request fails otherwise than with the 503 page. Then a restore
// that fails in the middle leaves the database exactly as it was and the
// environment serving.
func TestRollbackRestoreSnapshotAcrossForeignKeyMigration(t *testing.T) {
	testenv.MigrateRequests(t) // Caddy reloads drop no connection (ADR 0009)
	e := apptest.NewDeployEnv(t)
	ctx := context.Background()
	want, op := deployForeignKey(t, e)

	l := startLoad(t, e.ProxyURL+"/health")
	rb, err := e.Env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: "UBOB", Reason: "test", RestoreSnapshot: true})
	l.check(t, "rollback --restore-snapshot")
	if err != nil || rb.State != ops.StepDone {
		t.Fatalf("rollback --restore-snapshot: %v (%s)\n%+v", err, rb.State, rb.Journal)
	}
	e.WantServing(ops.Blue, apptest.V1)
	if e.Container(ops.Green).Running {
		t.Errorf("the rolled-back slot must be stopped")
	}
	if got := testenv.Catalog(t, e.AppDSN); !reflect.DeepEqual(got, want) {
		t.Errorf("after the rollback the database differs from the pre-deploy snapshot:\n%s", testenv.DiffLines(want, got))
	}
	last := rb.Journal[len(rb.Journal)-1].Detail
	if !strings.Contains(last, "restored from "+op.Snapshot) || !strings.Contains(last, "migration version now 1") {
		t.Errorf("the rollback's result %q does not name the snapshot and the migration version 1", last)
	}
	if in, err := e.Env.Proxy.InMaintenance(ctx); err != nil || in {
		t.Errorf("the 503 page is still up: %v, %v", in, err)
	}
	e.WantNoLock()

	// A restore that fails after every table was reloaded.
	broken := testenv.FailingSnapshot(t, e.Snapshots, op.Snapshot)
	before := testenv.Catalog(t, e.AppDSN)
	l = startLoad(t, e.ProxyURL+"/health")
	rop, err := e.Env.Deployer.Restore(ctx, ops.RestoreRequest{Snapshot: broken, Requester: "UBOB"})
	l.check(t, "failed restore")
	if err == nil || rop.State != ops.StepFailed || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("restore of a failing snapshot: %v (%s), want a failure with psql's division by zero", err, rop.State)
	}
	if got := testenv.Catalog(t, e.AppDSN); !reflect.DeepEqual(got, before) {
		t.Errorf("a failed restore changed the database:\n%s", testenv.DiffLines(before, got))
	}
	e.WantServing(ops.Blue, apptest.V1)
	e.WantNoLock()
}

// deployForeignKey brings the app database to migration 1 with more rows,
// an index and a trigger, then deploys V2 with ForeignKeyMigration. It
// returns the catalog before the deploy and the deploy.
func deployForeignKey(t *testing.T, e *apptest.DeployEnv) ([]string, ops.Operation) {
	t.Helper()
	ctx := context.Background()
	if err := pg.NewMigrator(e.AppDSN).Up(ctx, e.Migrations); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, e.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO events (name) SELECT 'event ' || g FROM generate_series(1, 500) g;
CREATE INDEX events_name_idx ON events (name);
CREATE FUNCTION events_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER events_touch BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION events_touch();`); err != nil {
		t.Fatal(err)
	}
	want := testenv.Catalog(t, e.AppDSN)
	e.AddForeignKeyMigration()
	op, err := e.Deploy(apptest.V2)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	e.WantServing(ops.Green, apptest.V2)
	if got := testenv.Catalog(t, e.AppDSN); !strings.Contains(strings.Join(got, "\n"), "tickets_event_id_fkey") {
		t.Fatalf("the deploy did not add the foreign key: %v", got)
	}
	return want, op
}

// TestChatRollbackRestoreSnapshot: the same rollback from chat, confirmed
// by a click; the thread shows the migration version the restore brought
// back.
func TestChatRollbackRestoreSnapshot(t *testing.T) {
	c := startChat(t, false)
	want, _ := deployForeignKey(t, c.DeployEnv)
	// Restoring needs snapshot.restore (UALICE's), not only rollback (UBOB's).
	c.slash(t, "UALICE", `rollback staging --reason "tickets broke" --restore-snapshot`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.confirm"), slackfake.TextContains("maintenance page"))
	c.click(t, "UALICE", req, "op.confirm")
	c.waitEdit(t, req, "done")
	c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("migration version now 1"))
	c.WantServing(ops.Blue, apptest.V1)
	if got := testenv.Catalog(t, c.AppDSN); !reflect.DeepEqual(got, want) {
		t.Errorf("after the rollback the database differs from the pre-deploy snapshot:\n%s", testenv.DiffLines(want, got))
	}
	c.WantNoLock()
}

// TestCrashDuringRestore kills the terminal's snapshot restore once the 503
// page is up and the slots are stopped: recovery starts the live slot,
// takes the page away and says that the database is either untouched or
// the whole snapshot.
func TestCrashDuringRestore(t *testing.T) {
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	e := apptest.NewDeployEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pg.NewMigrator(e.AppDSN).Up(ctx, e.Migrations); err != nil {
		t.Fatal(err)
	}
	snap, err := e.Env.Snapshots.Create(ctx, "manual", nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "snapshot", "restore", "staging", snap.Name, "--confirm", "--config", e.ConfigPath)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN, app.CrashEnv+"=locked:note")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("restore was not killed behind the 503 page: %v\n%s", err, out)
	}
	op := recoverTheOne(ctx, t, e)
	last := op.Journal[len(op.Journal)-1].Detail
	if op.State != ops.StepNeedsAttention || !strings.Contains(last, "interrupted at snapshotted") || !strings.Contains(last, "migration version 1") {
		t.Errorf("after recovery: %s %q; want needs_attention saying where it stopped and the migration version", op.State, last)
	}
	if in, err := e.Env.Proxy.InMaintenance(ctx); err != nil || in {
		t.Errorf("the 503 page is still up after recovery: %v, %v", in, err)
	}
	e.WantServing(ops.Blue, apptest.V1)
	e.WantNoLock()
}
