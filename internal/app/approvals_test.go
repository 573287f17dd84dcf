package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

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
