package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// With approvals: 2, one person clicking Approve many times at once is one
// approval: nothing deploys until a second, different person approves.
func TestTwoApprovalsAreTwoPeople(t *testing.T) {
	c := startChatWith(t, true, "", func(yaml *string, d *apptest.DeployEnv) {
		if !strings.Contains(*yaml, "approvals: 1, ") || !strings.Contains(*yaml, "users: [UBOB]") {
			d.T.Fatal("the chat configuration no longer reads approvals: 1 / users: [UBOB]")
		}
		*yaml = strings.Replace(*yaml, "approvals: 1, ", "approvals: 2, ", 1)
		*yaml = strings.Replace(*yaml, "users: [UBOB]", "users: [UBOB, UDAVE]", 1)
	})
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+` --reason "two keys"`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { c.click(t, "UBOB", req, "op.approve") })
	}
	wg.Wait()
	c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("(1 of 2)"))
	hist, err := c.Store.History(context.Background(), "staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	var op ops.Operation
	for _, h := range hist {
		if h.Kind == ops.KindDeploy {
			op = h
			break
		}
	}
	if op.State != ops.StepRequested || len(op.Approvers) != 1 || op.Approvers[0] != "UBOB" {
		t.Fatalf("after five clicks by one person: state %s, approvers %v; want requested, [UBOB]", op.State, op.Approvers)
	}
	for _, m := range c.fake.Thread(req.Channel, req.TS) {
		if strings.Contains(slackfake.Render(m), "(2 of 2)") {
			t.Fatalf("one person counted twice: %s", slackfake.Render(m))
		}
	}
	c.WantServing(ops.Blue, apptest.V1)

	c.click(t, "UDAVE", req, "op.approve")
	c.waitEdit(t, req, "done")
	c.WantServing(ops.Green, apptest.V2)
}

// rollback --restore-snapshot overwrites the database: it needs what
// snapshot restore needs, from whoever asks and whoever confirms, and is
// never forced. Each refusal is audited and nothing is restored.
func TestRollbackRestoreSnapshotNeedsRestorePermission(t *testing.T) {
	c := startChat(t, false)
	ctx := context.Background()
	c.slash(t, "UBOB", "rollback staging --restore-snapshot --reason oops")
	c.waitMessage(t, slackfake.ForUser("UBOB"), slackfake.TextContains("needs snapshot.restore"))
	c.slash(t, "UALICE", "rollback staging --restore-snapshot --force --reason oops")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("never forced"))

	c.slash(t, "UALICE", "rollback staging --restore-snapshot --reason oops")
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.confirm"))
	c.click(t, "UBOB", req, "op.confirm")
	c.waitMessage(t, slackfake.ForUser("UBOB"), slackfake.TextContains("needs snapshot.restore"))
	hist, err := c.Store.History(ctx, "staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Kind != ops.KindRollback || hist[0].State != ops.StepRequested {
		t.Fatalf("operations after the refusals: %+v; want the one rollback request, still requested", hist)
	}
	// The click's refusal is audited before its reply; the reply matched
	// above may be the command's, so wait for the second row.
	denied := 0
	var entries []bot.AuditEntry
	for deadline := time.Now().Add(20 * time.Second); denied != 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries, err = c.Store.AuditLog(ctx, postgres.AuditQuery{Actor: "UBOB"}); err != nil {
			t.Fatal(err)
		}
		denied = 0
		for _, e := range entries {
			if e.Action == "snapshot.restore" && e.Decision == bot.Denied {
				denied++
			}
		}
	}
	if denied != 2 {
		t.Errorf("%d denied snapshot.restore audit rows for UBOB, want 2 (the command and the confirmation): %+v", denied, entries)
	}
	if op, err := c.Store.Get(ctx, hist[0].ID); err != nil || op.State != ops.StepRequested {
		t.Errorf("after the refused confirmation the rollback is %s (%v), want requested", op.State, err)
	}
	c.WantServing(ops.Blue, apptest.V1)
}

// twoApprovers gives the chat configuration a second approver, UDAVE.
func twoApprovers(yaml *string, d *apptest.DeployEnv) {
	if !strings.Contains(*yaml, "users: [UBOB]") {
		d.T.Fatal("the chat configuration no longer reads users: [UBOB]")
	}
	*yaml = strings.Replace(*yaml, "users: [UBOB]", "users: [UBOB, UDAVE]", 1)
}

// A deploy outside an enforced window, asked with --override-window, runs
// once approved: the re-check at approval repeats the override the
// approvers saw (and its extra approval is counted). A snapshot and rows
// written meanwhile change the report's wording (the latest snapshot, the
// database size), not its outcomes, so they do not void the approval.
func TestApprovedOverrideOfTheWindowRuns(t *testing.T) {
	closed := strings.ToLower(time.Now().UTC().AddDate(0, 0, 3).Weekday().String()[:3])
	c := startChatWith(t, true, fmt.Sprintf("policy: {deploy_window: {days: [%s], start: \"10:00\", end: \"14:00\"}}\n", closed),
		twoApprovers, func(yaml *string, _ *apptest.DeployEnv) {
			*yaml = strings.Replace(*yaml, "policy: {require_approval: true, ", "policy: {require_approval: true, enforce_window: true, ", 1)
		})
	ctx := context.Background()
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+` --override-window "hotfix for the outage" --reason hotfix`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	if text := slackfake.Render(req); !strings.Contains(text, "Needs 2 approval(s)") || !strings.Contains(text, "hotfix for the outage") {
		t.Fatalf("the request does not ask for the window's extra approval:\n%s", text)
	}
	if _, err := c.Env.Snapshots.Create(ctx, "manual", nil); err != nil {
		t.Fatal(err)
	}
	queryRow(t, c.AppDSN, "CREATE TABLE filler AS SELECT g AS id, repeat('x', 500) AS pad FROM generate_series(1, 5000) g", nil)

	c.click(t, "UBOB", req, "op.approve")
	c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("(1 of 2)"))
	c.click(t, "UDAVE", req, "op.approve")
	c.waitEdit(t, req, "done")
	c.WantServing(ops.Green, apptest.V2)
}

// A deploy with a destructive migration, asked with --allow-destructive,
// runs once approved: the re-check at approval allows what the approvers
// allowed.
func TestApprovedDestructiveMigrationRuns(t *testing.T) {
	c := startChat(t, true)
	if op, err := c.Deploy(apptest.V2); err != nil { // applies 000001: the database now has data to lose
		t.Fatalf("first deploy: %v\n%s", err, journal(op))
	}
	apptest.WriteFile(t, filepath.Join(c.Migrations, "000002_drop_name.up.sql"), 0o644, "ALTER TABLE events DROP COLUMN name;\n")
	apptest.WriteFile(t, filepath.Join(c.Migrations, "000002_drop_name.down.sql"), 0o644, "ALTER TABLE events ADD COLUMN name text;\n")

	c.slash(t, "UALICE", "deploy staging "+apptest.V1+` --allow-destructive "name is unused since v2" --reason cleanup`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	c.click(t, "UBOB", req, "op.approve")
	c.waitEdit(t, req, "done")
	c.WantServing(ops.Blue, apptest.V1)
	if hasColumn(t, c.AppDSN, "events", "name") {
		t.Error("the approved destructive migration did not run")
	}
}

// A check that got worse between the report and the approval voids the
// approval, and the message names the check and says what to do.
func TestApprovalVoidWhenACheckGotWorse(t *testing.T) {
	c := startChat(t, true)
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+" --reason r")
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	if err := os.Chmod(c.EnvFile, 0o666); err != nil {
		t.Fatal(err)
	}
	c.click(t, "UBOB", req, "op.approve")
	void := c.waitEdit(t, req, "is void")
	if text := slackfake.Render(void); !strings.Contains(text, "env_file.mode is now warn, approved as pass") || !strings.Contains(text, "ask again") {
		t.Errorf("the void message does not say which check changed and what to do:\n%s", text)
	}
	c.WantServing(ops.Blue, apptest.V1)
	if n := c.deploysIn(t, ops.StepFailed); n != 1 {
		t.Errorf("%d failed deploys, want the voided one", n)
	}
}

func hasColumn(t *testing.T, dsn, table, column string) bool {
	t.Helper()
	var n int
	queryRow(t, dsn, `SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2`, []any{table, column}, &n)
	return n > 0
}

// A button's payload names the request it acts on, and Slack lets a user
// send any value: a confirmation forged onto a deploy that needs approval
// must not start it, nor an approval forged onto a rollback that needs a
// confirmation. Each forged press is refused and audited.
func TestForgedButtonsCannotSkipApprovals(t *testing.T) {
	c := startChat(t, true)
	ctx := context.Background()
	depMsg, rbMsg := c.twoRequests(t)
	byKind := map[ops.Kind]ops.Operation{}
	hist, err := c.Store.History(ctx, "staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range hist {
		byKind[op.Kind] = op
	}
	dep, rb := byKind[ops.KindDeploy], byKind[ops.KindRollback]

	forge := func(msg slackfake.Message, action, value string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		env, err := c.fake.ClickButton(cctx, slackfake.Click{User: "UBOB", Channel: msg.Channel, MessageTS: msg.TS, ActionID: action, Value: value})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.fake.WaitAck(cctx, env); err != nil {
			t.Fatal(err)
		}
		c.waitMessage(t, slackfake.ForUser("UBOB"), slackfake.TextContains("This button does not answer the "+forgedTitle(action, dep, rb)))
	}
	forge(rbMsg, "op.confirm", dep.ID)
	forge(depMsg, "op.approve", rb.ID)

	for _, op := range []ops.Operation{dep, rb} {
		if got, err := c.Store.Get(ctx, op.ID); err != nil || got.State != ops.StepRequested || len(got.Approvers) != 0 {
			t.Errorf("%s after the forged presses: %s, approvers %v (%v); want requested, none", op.Kind, got.State, got.Approvers, err)
		}
	}
	c.WantServing(ops.Blue, apptest.V1)
	entries, err := c.Store.AuditLog(ctx, postgres.AuditQuery{Actor: "UBOB"})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range entries {
		if e.Decision == bot.Denied && strings.Contains(e.Detail, "which needs") {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d denied audit rows for the forged presses, want 2: %+v", denied, entries)
	}
}

// forgedTitle is how the refusal names the request a forged action targets.
func forgedTitle(action string, dep, rb ops.Operation) string {
	if action == "op.confirm" {
		return "deploy of " + dep.Version
	}
	return "rollback of " + rb.Env
}

// A tag re-pointed after the approval, while the deploy is already past
// its image check (here during a slow migration), does not change what
// runs: the slot starts from the approved content, and still shows the
// reference it was asked for.
func TestRepointedTagDeploysTheApprovedImage(t *testing.T) {
	repo := fmt.Sprintf("togather-digest%d", time.Now().UnixNano()%1e9)
	e := apptest.NewDeployEnv(t, func(yaml *string, d *apptest.DeployEnv) {
		ctx := context.Background()
		for _, v := range []string{apptest.V1, apptest.V2} {
			if err := d.Cli.ImageTag(ctx, "togather-server:"+v, repo+":"+v); err != nil {
				d.T.Fatal(err)
			}
			d.T.Cleanup(func() { _, _ = d.Cli.ImageRemove(context.Background(), repo+":"+v, image.RemoveOptions{}) })
		}
		*yaml = strings.Replace(*yaml, `image: "togather-server:{version}"`, `image: "`+repo+`:{version}"`, 1)
	})
	apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_slow.up.sql"), 0o644, "SELECT pg_sleep(5);\n")
	apptest.WriteFile(t, filepath.Join(e.Migrations, "000002_slow.down.sql"), 0o644, "SELECT 1;\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	approved, err := e.Env.Engine.ImageID(ctx, repo+":"+apptest.V2)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		op  ops.Operation
		err error
	}
	done := make(chan result, 1)
	go func() {
		op, err := e.Env.Deployer.Deploy(ctx, ops.DeployRequest{Version: apptest.V2, ImageID: approved, Requester: "UALICE", Reason: "test"})
		done <- result{op, err}
	}()
	waitForStep(t, e, ops.StepSnapshotted)
	if err := e.Cli.ImageTag(ctx, "togather-server:"+apptest.V1, repo+":"+apptest.V2); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.op.State != ops.StepDone {
		t.Fatalf("deploy: %s, %v\n%s", r.op.State, r.err, journal(r.op))
	}
	e.WantServing(ops.Green, apptest.V2)
	if c := e.Container(ops.Green); c.ImageID != approved || c.Image != repo+":"+apptest.V2 {
		t.Errorf("green runs %s as %q, want %s as %s:%s", c.ImageID, c.Image, approved, repo, apptest.V2)
	}
}

// waitForStep waits until the environment's running operation reached step.
func waitForStep(t *testing.T, e *apptest.DeployEnv, step ops.Step) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		list, err := e.Store.Unfinished(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range list {
			if op.State == step {
				return
			}
		}
	}
	t.Fatalf("no operation reached %s in a minute", step)
}

// Every button refuses a user without its permission the same way: told
// why, nothing changed, and one denied audit row per press.
func TestButtonRefusalsAreAudited(t *testing.T) {
	c := startChat(t, true)
	ctx := context.Background()
	dep, rb := c.twoRequests(t)
	presses := []struct {
		msg    slackfake.Message
		action string
	}{{dep, "op.approve"}, {dep, "op.reject"}, {rb, "op.confirm"}, {rb, "op.cancel"}}
	for _, p := range presses {
		c.click(t, "UCAROL", p.msg, p.action)
	}
	var entries []bot.AuditEntry
	denied := 0
	for deadline := time.Now().Add(20 * time.Second); denied < len(presses) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if entries, err = c.Store.AuditLog(ctx, postgres.AuditQuery{Actor: "UCAROL"}); err != nil {
			t.Fatal(err)
		}
		denied = 0
		for _, e := range entries {
			if e.Decision == bot.Denied {
				denied++
			}
		}
	}
	if denied != len(presses) || len(entries) != len(presses) {
		t.Errorf("%d audit rows for UCAROL, %d denied; want %d, all denied: %+v", len(entries), denied, len(presses), entries)
	}
	hist, err := c.Store.History(ctx, "staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range hist {
		if op.State != ops.StepRequested || len(op.Approvers) != 0 {
			t.Errorf("%s after refused presses: %s, approvers %v", op.Kind, op.State, op.Approvers)
		}
	}
	c.WantServing(ops.Blue, apptest.V1)
}

// twoRequests has UALICE ask for a deploy of V2 (waiting for approval) and
// a rollback (waiting for a confirmation), and returns their messages.
func (c *chatEnv) twoRequests(t *testing.T) (deploy, rollback slackfake.Message) {
	t.Helper()
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+" --reason r")
	deploy = c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	c.slash(t, "UALICE", "rollback staging --reason r")
	rollback = c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.confirm"))
	return deploy, rollback
}
