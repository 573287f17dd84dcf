package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/docker"
)

// Image versions used by this package only, so parallel test packages never
// retag them.
const (
	healthyVersion = "opsdocker-healthy"
	crashVersion   = "opsdocker-crash"
)

var nameSeq atomic.Int64

// setup returns the raw client (for checks the adapter does not offer), the
// adapter under test and a context bounded by the test.
func setup(t *testing.T) (*client.Client, *docker.Engine, context.Context) {
	t.Helper()
	cli := testenv.Docker(t)
	eng, err := docker.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	// The budget covers building the testapp image on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	if err := eng.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return cli, eng, ctx
}

// uniqueName returns a container name no other test or run uses.
func uniqueName(what string) string {
	return fmt.Sprintf("chatops-test-%d-%d-%s", os.Getpid(), nameSeq.Add(1), what)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	cli, eng, ctx := setup(t)
	image := testenv.TestappImage(t, cli, healthyVersion, "healthy")

	envFile := filepath.Join(t.TempDir(), ".env.test")
	os.WriteFile(envFile, []byte(`# CHANGE_ME in a comment is fine here
SLOT=green
VERSION=from-file
GIT_COMMIT="0123456789abcdef0123456789abcdef01234567"

BUILD_DATE='2026-01-02T03:04:05Z'
`), 0o600)
	name := uniqueName("life")
	port := testenv.FreePort(t)
	labels := testenv.ContainerLabels(t, cli)
	labels["com.togather.deployment.slot"] = "blue"
	spec := ops.ContainerSpec{
		Name:          name,
		Image:         image,
		EnvFile:       envFile,
		Env:           []string{"SLOT=blue", "VERSION=from-env"},
		HostPort:      port,
		Labels:        labels,
		RestartPolicy: "unless-stopped",
	}
	id, err := eng.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitHTTP(t, base+"/healthz", 20*time.Second)

	// The env file is read, unquoted and overridden by Env.
	var version map[string]string
	getJSON(t, base+"/version", &version)
	if version["version"] != "from-env" || version["git_commit"] != "0123456789abcdef0123456789abcdef01234567" || version["build_date"] != "2026-01-02T03:04:05Z" {
		t.Errorf("/version = %v", version)
	}
	var health struct{ Status, Slot string }
	getJSON(t, base+"/health", &health)
	if health.Status != "healthy" || health.Slot != "blue" {
		t.Errorf("/health = %+v, want healthy on blue", health)
	}

	info, err := eng.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	imageID, err := eng.ImageID(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Exists || !info.Running || info.State != "running" || info.ID != id || info.Name != name ||
		info.Image != image || info.ImageID != imageID || !strings.HasPrefix(imageID, "sha256:") ||
		!hasLabels(info.Labels, labels) || time.Since(info.StartedAt) > time.Minute || info.RestartCount != 0 {
		t.Errorf("Inspect = %+v (image id %s, labels %v)", info, imageID, labels)
	}
	raw, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b := raw.HostConfig.PortBindings["8080/tcp"]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != strconv.Itoa(port) {
		t.Errorf("port bindings = %+v, want 127.0.0.1:%d", raw.HostConfig.PortBindings, port)
	}
	if raw.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart policy = %q", raw.HostConfig.RestartPolicy.Name)
	}

	stats, err := eng.Stats(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if stats.MemUsage == 0 || stats.MemLimit < stats.MemUsage || stats.MemPercent <= 0 || stats.MemPercent > 100 ||
		stats.CPUPercent < 0 || stats.CPUPercent > 100 {
		t.Errorf("Stats = %+v", stats)
	}

	logs, err := eng.Logs(ctx, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, `testapp: listening on [::]:8080 slot="blue" version=from-env`) {
		t.Errorf("Logs = %q", logs)
	}

	// A taken name is refused, naming the container; the caller decides.
	if _, err := eng.Run(ctx, spec); !errors.Is(err, docker.ErrContainerExists) || !strings.Contains(err.Error(), name) {
		t.Errorf("Run on a running name: %v, want ErrContainerExists naming %s", err, name)
	}

	if err := eng.Stop(ctx, name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := eng.Stop(ctx, name, 10*time.Second); err != nil {
		t.Errorf("Stop of a stopped container: %v", err)
	}
	info, err = eng.Inspect(ctx, name)
	if err != nil || !info.Exists || info.Running || info.State != "exited" {
		t.Errorf("after Stop: %+v, %v", info, err)
	}
	if logs, _ := eng.Logs(ctx, name, 1); strings.TrimSpace(logs) == "" || strings.Count(strings.TrimSpace(logs), "\n") != 0 ||
		!strings.Contains(logs, "testapp: stopped") {
		t.Errorf("last log line after a graceful stop = %q", logs)
	}
	_, err = eng.Run(ctx, spec)
	if !errors.Is(err, docker.ErrContainerExists) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Run on a stopped container's name: %v, want ErrContainerExists naming %s and its state", err, name)
	}

	if err := eng.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	testenv.WaitHTTP(t, base+"/healthz", 20*time.Second)

	if err := eng.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if info, err := eng.Inspect(ctx, name); err != nil || info.Exists || info.Name != name {
		t.Errorf("after Remove: %+v, %v", info, err)
	}
	if err := eng.Remove(ctx, name); err != nil {
		t.Errorf("Remove of a missing container: %v", err)
	}
}

// hasLabels reports whether have holds want (a container also carries its
// image's labels).
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func TestMissingContainer(t *testing.T) {
	t.Parallel()
	_, eng, ctx := setup(t)
	name := uniqueName("missing")
	if info, err := eng.Inspect(ctx, name); err != nil || info.Exists {
		t.Errorf("Inspect = %+v, %v; want Exists false and no error", info, err)
	}
	calls := map[string]func() error{
		"Start": func() error { return eng.Start(ctx, name) },
		"Stop":  func() error { return eng.Stop(ctx, name, time.Second) },
		"Stats": func() error { _, err := eng.Stats(ctx, name); return err },
		"Logs":  func() error { _, err := eng.Logs(ctx, name, 10); return err },
	}
	for op, f := range calls {
		if err := f(); !errors.Is(err, docker.ErrContainerNotFound) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want ErrContainerNotFound naming the container", op, err)
		}
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	cli, eng, ctx := setup(t)
	image := testenv.TestappImage(t, cli, healthyVersion, "healthy")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name    string
		spec    ops.ContainerSpec
		wantErr error
		wantMsg string
	}{
		{name: "missing image", spec: ops.ContainerSpec{Image: "togather-server:never-built"}, wantErr: docker.ErrImageNotFound},
		{name: "bad restart policy", spec: ops.ContainerSpec{Image: image, RestartPolicy: "sometimes"}, wantMsg: "unknown restart policy"},
		{name: "bad env file", spec: ops.ContainerSpec{Image: image, EnvFile: "/nonexistent/.env"}, wantMsg: "env file"},
		{name: "host port taken", spec: ops.ContainerSpec{Image: image, HostPort: busy.Addr().(*net.TCPAddr).Port}, wantMsg: "start container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = uniqueName("fail")
			tt.spec.Labels = testenv.ContainerLabels(t, cli)
			_, err := eng.Run(ctx, tt.spec)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Run: %v, want %v %q", err, tt.wantErr, tt.wantMsg)
			}
			if info, err := eng.Inspect(ctx, tt.spec.Name); err != nil || info.Exists {
				t.Errorf("a failed Run left %+v (%v)", info, err)
			}
		})
	}
}

func TestRestartCount(t *testing.T) {
	t.Parallel()
	cli, eng, ctx := setup(t)
	image := testenv.TestappImage(t, cli, crashVersion, "crash-after=300ms")
	name := uniqueName("crash")
	if _, err := eng.Run(ctx, ops.ContainerSpec{Name: name, Image: image, Labels: testenv.ContainerLabels(t, cli), RestartPolicy: "on-failure"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := eng.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.RestartCount >= 2 {
			if info.ExitCode != 1 && info.Running || info.RestartPolicy != "on-failure" {
				t.Errorf("exit code %d, restart policy %q: %+v", info.ExitCode, info.RestartPolicy, info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart count still %d after 20s: %+v", info.RestartCount, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs, _ := eng.Logs(ctx, name, 0); !strings.Contains(logs, "crashing as asked by mode crash-after=300ms") {
		t.Errorf("logs = %q", logs)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	cli, eng, ctx := setup(t)
	image := testenv.TestappImage(t, cli, healthyVersion, "healthy")

	if _, err := eng.ImageID(ctx, "togather-server:never-built"); !errors.Is(err, docker.ErrImageNotFound) {
		t.Errorf("ImageID of a missing image: %v, want ErrImageNotFound", err)
	}
	// No registry is reachable (and traffic stays on loopback): a pull fails.
	if err := eng.Pull(ctx, "127.0.0.1:9/togather-server:none"); err == nil || !strings.Contains(err.Error(), "pull 127.0.0.1:9/togather-server:none") {
		t.Errorf("Pull from a dead registry: %v", err)
	}

	copyContainers := func() int {
		t.Helper()
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", "com.togather.chatops.purpose=copy-from-image"), filters.Arg("ancestor", image))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	before := copyContainers()

	dir := t.TempDir()
	if err := eng.CopyFromImage(ctx, image, "/migrations", dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "000001_init.down.sql,000001_init.up.sql" {
		t.Errorf("copied %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "000001_init.up.sql")); !strings.Contains(string(b), "CREATE TABLE") {
		t.Errorf("up migration = %q", b)
	}

	single := filepath.Join(t.TempDir(), "new", "dir")
	if err := eng.CopyFromImage(ctx, image, "/migrations/000001_init.down.sql", single); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(single, "000001_init.down.sql")); !strings.Contains(string(b), "DROP TABLE") {
		t.Errorf("down migration = %q", b)
	}

	if err := eng.CopyFromImage(ctx, image, "/no/such/path", t.TempDir()); err == nil {
		t.Error("copying a missing path: no error")
	}
	if err := eng.CopyFromImage(ctx, "togather-server:never-built", "/migrations", t.TempDir()); !errors.Is(err, docker.ErrImageNotFound) {
		t.Errorf("copying from a missing image: %v, want ErrImageNotFound", err)
	}
	if after := copyContainers(); after != before {
		t.Errorf("CopyFromImage left %d containers behind", after-before)
	}
}

// TestRunOnce runs one-off commands of the testapp image: one that fails
// (its exit code and output come back, the container is gone), one that
// would run for ever (killed at its timeout), and one whose environment
// has ${NAME} filled in from the env file.
func TestRunOnce(t *testing.T) {
	t.Parallel()
	cli, eng, ctx := setup(t)
	image := testenv.TestappImage(t, cli, healthyVersion, "healthy")
	envFile := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(envFile, []byte("POSTGRES_PASSWORD=pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := func(cmd ...string) ops.ContainerSpec {
		return ops.ContainerSpec{Name: uniqueName("once"), Image: image, Labels: testenv.ContainerLabels(t, cli), Cmd: cmd}
	}

	res, err := eng.RunOnce(ctx, spec("no-such-command"), time.Minute)
	if err != nil || res.ExitCode != 1 || res.TimedOut || !strings.Contains(res.Output, `unknown command "no-such-command"`) {
		t.Errorf("failing command: %+v, %v", res, err)
	}

	s := spec()
	res, err = eng.RunOnce(ctx, s, 2*time.Second)
	if err != nil || !res.TimedOut || !strings.Contains(res.Output, "listening on") {
		t.Errorf("command past its timeout: %+v, %v", res, err)
	}
	if info, err := eng.Inspect(ctx, s.Name); err != nil || info.Exists {
		t.Errorf("the one-off container was left: %+v (%v)", info, err)
	}

	// The command gets the env file with spec.Env over it, ${NAME} filled
	// in; a reference the env file lacks is refused before anything runs.
	s = spec("sync")
	s.EnvFile = envFile
	s.Env = []string{"DATABASE_URL=postgres://u:${POSTGRES_PASSWORD}@127.0.0.1:1/db"}
	res, err = eng.RunOnce(ctx, s, time.Minute)
	if err != nil || res.ExitCode != 1 || !strings.Contains(res.Output, "connect to the database") {
		t.Errorf("sync without a database: %+v, %v", res, err)
	}
	s = spec("${GREETING}-${POSTGRES_PASSWORD}")
	s.EnvFile, s.Env = envFile, []string{"GREETING=hello"}
	res, err = eng.RunOnce(ctx, s, time.Minute)
	if err != nil || !strings.Contains(res.Output, `unknown command "hello-pw-from-file"`) {
		t.Errorf("the command's ${NAME} are the container's variables: %+v, %v", res, err)
	}
	s = spec("sync")
	s.EnvFile = envFile
	s.Env = []string{"DATABASE_URL=postgres://u:${NO_SUCH_VAR}@db/db"}
	if _, err := eng.RunOnce(ctx, s, time.Minute); err == nil || !strings.Contains(err.Error(), "DATABASE_URL refers to ${NO_SUCH_VAR}, which the env file does not hold") {
		t.Errorf("a reference the env file lacks: %v", err)
	}
}
