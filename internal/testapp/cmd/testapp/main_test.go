package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

// TestMain lets the tests run this command as a child process: the test
// binary itself acts as testapp when TESTAPP_RUN_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("TESTAPP_RUN_MAIN") == "1" {
		exit(run(strings.Fields(os.Getenv("TESTAPP_ARGS"))))
	}
	os.Exit(m.Run())
}

// start runs testapp on a free loopback port with env and returns its base
// URL; the process is killed at cleanup if still running.
func start(t *testing.T, env ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"TESTAPP_RUN_MAIN=1", "PORT=" + strconv.Itoa(port)}, env...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, "http://127.0.0.1:" + strconv.Itoa(port), &logs
}

// get returns the status and body of url, or an error.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls url until it answers code, failing after timeout.
func waitFor(t *testing.T, url string, code int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, body, err := get(url)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d within %s (last: %d %q %v)", url, code, timeout, got, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitCode waits for cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("testapp did not exit within %s", timeout)
		return -1
	}
}

func TestGracefulShutdown(t *testing.T) {
	cmd, base, logs := start(t, "SLOT=blue", "VERSION=v9", "SHUTDOWN_DELAY=1s")
	waitFor(t, base+"/healthz", 200, 10*time.Second)
	if code, body, err := get(base + "/"); code != 200 || body != "slot=blue version=v9" {
		t.Fatalf("GET / = %d %q %v", code, body, err)
	}
	resp, err := http.Post(base+"/_control", "application/json", strings.NewReader(`{"latency_ms":1500}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /_control = %v %v", resp, err)
	}
	resp.Body.Close()

	// A slow /health is in flight when SIGTERM arrives: it must be answered,
	// not cut, and say shutting_down.
	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		code, body, err := get(base + "/health")
		slow <- answer{code, body, err}
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, base+"/healthz", 503, time.Second)
	a := <-slow
	if a.err != nil || a.code != 503 || strings.TrimSpace(a.body) != `{"status":"shutting_down"}` {
		t.Errorf("in-flight /health = %d %q %v, want 503 shutting_down", a.code, a.body, a.err)
	}
	if code := exitCode(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0; logs:\n%s", code, logs)
	}
	if _, _, err := get(base + "/healthz"); err == nil {
		t.Error("still answering after exit")
	}
}

func TestExitsWithError(t *testing.T) {
	tests := []struct {
		name, mode, wantLog string
	}{
		{"crash-after", "crash-after=300ms", "crashing as asked by mode crash-after=300ms"},
		{"crash-at-start", "crash-at-start", "fatal: crashing at start as asked by mode crash-at-start"},
		{"bad mode", "sick", "TESTAPP_MODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, logs := start(t, "TESTAPP_MODE="+tt.mode)
			if code := exitCode(t, cmd, 10*time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logs %q lack %q", logs, tt.wantLog)
			}
		})
	}
}

// TestRequiresTheRiverTables runs the command as the real server's release
// runs: without the second migration set it exits 1 naming the missing
// relation; migrate-river creates it; then it serves and sync succeeds
// (or fails when asked to).
func TestRequiresTheRiverTables(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	dsn := testenv.Postgres(t)
	db := "DATABASE_URL=" + dsn
	cmd, _, logs := start(t, db, "TESTAPP_REQUIRE_TABLES=river_queue,river_job")
	if code := exitCode(t, cmd, 20*time.Second); code != 1 || !strings.Contains(logs.String(), `relation "river_queue" does not exist`) {
		t.Fatalf("without the River tables: exit %d, logs:\n%s", code, logs)
	}
	for _, step := range []struct {
		args, fail string
		code       int
		wantLog    string
	}{
		{"sync", "", 1, `relation "river_queue" does not exist`},
		{"migrate-river", "", 0, "river: applied migrations"},
		{"migrate-river", "", 0, "river: applied migrations"}, // again: nothing changes
		{"sync", "", 0, `"sources_found":3`},
		{"sync", "1", 1, `"errors":1`},
		{"no-such-command", "", 1, `unknown command "no-such-command"`},
	} {
		cmd, _, logs := start(t, db, "TESTAPP_ARGS="+step.args, "TESTAPP_SYNC_FAIL="+step.fail)
		if code := exitCode(t, cmd, 20*time.Second); code != step.code || !strings.Contains(logs.String(), step.wantLog) {
			t.Fatalf("%s (fail=%q): exit %d, want %d with %q; logs:\n%s", step.args, step.fail, code, step.code, step.wantLog, logs)
		}
	}
	cmd, base, logs := start(t, db, "TESTAPP_REQUIRE_TABLES=river_queue,river_job")
	waitFor(t, base+"/healthz", 200, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 20*time.Second); code != 0 || !strings.Contains(logs.String(), "checking the database for river_queue,river_job") {
		t.Errorf("logs lack the start-up check:\n%s", logs)
	}
}
