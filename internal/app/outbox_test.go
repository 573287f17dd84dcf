package app_test

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
)

// TestServeSIGTERMSendsTheLastMessages stops `serve` with SIGTERM in the
// middle of a deploy, then right after a rollback has ended, and checks
// after each exit that the request message and the progress message show
// the operation's final state: the drain let the operation finish, and its
// throttled edits went out before the process ended.
func TestServeSIGTERMSendsTheLastMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Docker and Caddy")
	}
	s := newServeEnv(t)

	p := s.serve(t, "")
	s.slash(t, "UALICE", "deploy staging "+apptest.V2)
	req := s.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))
	s.waitJournal(t, ops.KindDeploy, ops.StepStarted)
	s.stop(t, p)
	s.wantFinal(t, req, "deploy of "+apptest.V2+" to staging", "done")
	s.WantServing(ops.Green, apptest.V2)

	p = s.serve(t, "")
	s.slash(t, "UBOB", "rollback staging --force")
	rbk := s.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to roll back"))
	s.waitJournal(t, ops.KindRollback, ops.StepDone)
	s.stop(t, p)
	s.wantFinal(t, rbk, "rollback of staging to "+apptest.V1, "done")
	s.WantServing(ops.Blue, apptest.V1)
}

// TestServeKilledAtTheEndNextLeaderSettlesMessages kills `serve` with
// SIGKILL right after a deploy's end was journalled, and again right after a
// rollback's, before either could edit its messages: each time the next
// `serve` to lead edits them to the operation's final state from the
// journal, in the same progress message rather than a new one.
func TestServeKilledAtTheEndNextLeaderSettlesMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Docker and Caddy")
	}
	s := newServeEnv(t)

	p := s.serve(t, "done:end")
	s.slash(t, "UALICE", "deploy staging "+apptest.V2)
	if _, sig := p.exit(t); sig != syscall.SIGKILL {
		t.Fatalf("serve was not killed at the deploy's end:\n%s", p.out)
	}
	req := s.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))
	p = s.serve(t, "done:end")
	s.waitFinal(t, req, "deploy of "+apptest.V2+" to staging", "done")

	s.slash(t, "UBOB", "rollback staging --force")
	if _, sig := p.exit(t); sig != syscall.SIGKILL {
		t.Fatalf("serve was not killed at the rollback's end:\n%s", p.out)
	}
	rbk := s.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to roll back"))
	s.serve(t, "")
	s.waitFinal(t, rbk, "rollback of staging to "+apptest.V1, "done")
	s.WantServing(ops.Blue, apptest.V1)
}

// TestLostEditsAreSettledByTheLeader has Slack lose every edit until a
// deploy started from chat has ended: the leader then brings the request
// message and the progress message to the deploy's final state.
func TestLostEditsAreSettledByTheLeader(t *testing.T) {
	c := startChat(t, false)
	c.fake.FailNext("chat.update", "internal_error", 1000)
	c.slash(t, "UALICE", "deploy staging "+apptest.V2)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))
	c.waitJournal(t, ops.KindDeploy, ops.StepDone)
	// The request message is edited only to the outcome: once that edit
	// was lost, Slack heals.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if slices.ContainsFunc(c.fake.Calls("chat.update"), func(call slackfake.Call) bool { return call.Params.Get("ts") == req.TS }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the outcome edit was never tried")
		}
	}
	c.fake.Heal("chat.update")
	c.waitFinal(t, req, "deploy of "+apptest.V2+" to staging", "done")
}

// waitJournal waits until the newest operation of kind on staging has
// journalled the end of step.
func (c *chatEnv) waitJournal(t *testing.T, kind ops.Kind, step ops.Step) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		hist, err := c.Store.History(context.Background(), "staging", 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range hist {
			if op.Kind != kind {
				continue
			}
			for _, e := range op.Journal {
				if e.Step == step && e.Phase == ops.PhaseEnd {
					return
				}
			}
			break
		}
	}
	t.Fatalf("no %s reached %s", kind, step)
}

// stop sends SIGTERM to p and wants it to exit cleanly.
func (s *serveEnv) stop(t *testing.T, p *serveProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, sig := p.exit(t); code != 0 {
		t.Fatalf("serve exited with %d (signal %v) after SIGTERM:\n%s", code, sig, p.out)
	}
}

// finalState reports whether req, the request message of the operation
// called title, and its one progress message in req's thread both show the
// operation ended in state, and says what they show.
func (c *chatEnv) finalState(req slackfake.Message, title, state string) (bool, string) {
	now, _ := c.fake.Message(req.Channel, req.TS)
	ok := strings.Contains(slackfake.Render(now), title+": "+state)
	shown := []string{"request: " + slackfake.Render(now)}
	var progress int
	for _, m := range c.fake.Thread(req.Channel, req.TS) {
		if text := slackfake.Render(m); strings.Contains(text, title+" — ") {
			progress++
			ok = ok && strings.Contains(text, title+" — "+state)
			shown = append(shown, "progress: "+text)
		}
	}
	return ok && progress == 1, strings.Join(shown, "\n---\n")
}

// wantFinal wants finalState now.
func (c *chatEnv) wantFinal(t *testing.T, req slackfake.Message, title, state string) {
	t.Helper()
	if ok, shown := c.finalState(req, title, state); !ok {
		t.Errorf("the messages of the %s do not show it %s:\n%s", title, state, shown)
	}
}

// waitFinal waits up to a minute for finalState.
func (c *chatEnv) waitFinal(t *testing.T, req slackfake.Message, title, state string) {
	t.Helper()
	var shown string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, shown = c.finalState(req, title, state); ok {
			return
		}
	}
	t.Errorf("the messages of the %s were not brought to %s:\n%s", title, state, shown)
}
