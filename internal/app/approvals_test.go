package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
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
