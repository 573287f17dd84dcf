package app_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/ops"
)

// TestServeKilledMidDeployRecoversAndSaysSo kills a real `serve` process in
// the middle of a deploy started from chat, starts it again, and checks that
// the environment serves from one healthy slot and the deploy's thread says
// what the restarted bot found and did.
func TestServeKilledMidDeployRecoversAndSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Docker and Caddy")
	}
	s := newServeEnv(t)
	first := s.serve(t, "healthy:end")
	s.slash(t, "UALICE", "deploy staging "+apptest.V2)
	if _, sig := first.exit(t); sig != syscall.SIGKILL {
		t.Fatalf("serve was not killed mid-deploy:\n%s", first.out)
	}
	req := s.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))

	second := s.serve(t, "")
	found := s.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("interrupted at"))
	if !strings.Contains(slackfake.Render(found), "blue kept serving") {
		t.Errorf("the thread does not say what serves:\n%s\nserve log:\n%s", slackfake.Render(found), second.out)
	}
	s.waitEdit(t, req, "failed")
	s.WantServing(ops.Blue, apptest.V1)
	if g := s.Container(ops.Green); g.Exists {
		t.Errorf("the half-deployed green container was left: %+v", g)
	}
	s.WantNoLock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if unfinished, err := s.Store.Unfinished(ctx); err != nil || len(unfinished) != 0 {
		t.Errorf("unfinished operations after recovery: %+v (%v)", unfinished, err)
	}
}
