package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
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
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", chatRoles, 1)
		*yaml = strings.Replace(*yaml, "environments:", "slack: {ping_interval: 2s}\nhttp: {listen: \""+listen+"\"}\nenvironments:", 1)
	})
	fake := slackfake.New()
	t.Cleanup(fake.Close)

	serve := func(crashAt string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, "serve", "--config", e.ConfigPath)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN, "SLACK_APP_TOKEN="+fake.AppToken(),
			"SLACK_BOT_TOKEN="+fake.BotToken(), "SLACK_API_URL="+fake.APIURL(), "TOGATHER_CHATOPS_CRASH_AT="+crashAt)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}

	first, out1 := serve("healthy:end")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fake.WaitOpens(ctx, 1); err != nil {
		t.Fatalf("serve did not connect: %v\n%s", err, out1)
	}
	c := &chatEnv{DeployEnv: e, fake: fake}
	c.slash(t, "UALICE", "deploy staging "+apptest.V2)
	err := first.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("serve was not killed mid-deploy: %v\n%s", err, out1)
	}
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))

	second, out2 := serve("")
	t.Cleanup(func() {
		_ = second.Process.Signal(syscall.SIGTERM)
		_ = second.Wait()
	})
	found := c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("interrupted at"))
	if !strings.Contains(slackfake.Render(found), "blue kept serving") {
		t.Errorf("the thread does not say what serves:\n%s\nserve log:\n%s", slackfake.Render(found), out2)
	}
	c.waitEdit(t, req, "failed")
	c.WantServing(ops.Blue, apptest.V1)
	if g := c.Container(ops.Green); g.Exists {
		t.Errorf("the half-deployed green container was left: %+v", g)
	}
	c.WantNoLock()
	if unfinished, err := e.Store.Unfinished(ctx); err != nil || len(unfinished) != 0 {
		t.Errorf("unfinished operations after recovery: %+v (%v)", unfinished, err)
	}
}
