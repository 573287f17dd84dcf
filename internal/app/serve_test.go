package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

// serveEnv is a real environment whose bot runs as `serve` processes, one
// at a time, so tests can stop them with real signals.
type serveEnv struct {
	*chatEnv
	bin string
}

func newServeEnv(t *testing.T) *serveEnv {
	t.Helper()
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := apptest.NewDeployEnv(t, func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", chatRoles, 1)
		*yaml = strings.Replace(*yaml, "environments:", "slack: {ping_interval: 2s}\nhttp: {listen: \""+listen+"\"}\nenvironments:", 1)
	})
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	return &serveEnv{chatEnv: &chatEnv{DeployEnv: e, fake: fake}, bin: bin}
}

// serveProc is one running `serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed once cmd.Wait returned
}

// serve starts `serve`, killing itself at crashAt (app.CrashEnv) unless
// it is "", and waits until it is connected. The process is stopped when
// the test ends.
func (s *serveEnv) serve(t *testing.T, crashAt string) *serveProc {
	t.Helper()
	before := s.fake.Opens()
	cmd := exec.Command(s.bin, "serve", "--config", s.ConfigPath)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.StoreDSN, "SLACK_APP_TOKEN="+s.fake.AppToken(),
		"SLACK_BOT_TOKEN="+s.fake.BotToken(), "SLACK_API_URL="+s.fake.APIURL(), "TOGATHER_CHATOPS_CRASH_AT="+crashAt)
	p := &serveProc{cmd: cmd, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.fake.WaitOpens(ctx, before+1); err != nil {
		t.Fatalf("serve did not connect: %v\n%s", err, p.out)
	}
	return p
}

// exit waits for the process to end and returns how: its exit code, or
// the signal that killed it.
func (p *serveProc) exit(t *testing.T) (code int, signal syscall.Signal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatalf("serve did not exit:\n%s", p.out)
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// lockedBuffer is a bytes.Buffer a child process writes to while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
