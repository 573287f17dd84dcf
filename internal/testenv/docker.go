package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
)

// RunLabel is the container label whose value is unique to one test: the
// containers carrying it are removed when that test ends.
const RunLabel = "com.togather.chatops.test.run"

var runSeq atomic.Int64

// Docker returns a client of the local Docker engine after pinging it, with
// API-version negotiation; the engine missing is reported through Missing.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		Missing(t, "Docker engine", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		Missing(t, "Docker engine", err)
	}
	return cli
}

// TestappImage returns the testapp image togather-server:<version> running
// in mode, building it if needed (see localenv.BuildTestapp).
func TestappImage(t testing.TB, cli *client.Client, version, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref, err := localenv.BuildTestapp(ctx, cli, version, mode)
	if err != nil {
		t.Fatalf("testapp image: %v", err)
	}
	return ref
}

// ContainerLabels returns labels marking a container as test material of t
// (TestLabel and a RunLabel unique to this call) and removes every container
// carrying them when t ends.
func ContainerLabels(t testing.TB, cli *client.Client) map[string]string {
	t.Helper()
	run := fmt.Sprintf("%d-%d", os.Getpid(), runSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := localenv.RemoveLabelled(ctx, cli, RunLabel, run); err != nil {
			t.Errorf("remove test containers: %v", err)
		}
	})
	return map[string]string{localenv.TestLabel: "true", RunLabel: run}
}

// RunTestapp starts a container called name from the testapp image with
// 8080/tcp published on 127.0.0.1:hostPort and env (KEY=VALUE) set, and
// returns its id. The container is removed when t ends. A leftover test
// container of the same name is removed first; a non-test one fails t.
func RunTestapp(t testing.TB, cli *client.Client, name, image string, hostPort int, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old, err := cli.ContainerInspect(ctx, name)
	switch {
	case err == nil && old.Config != nil && old.Config.Labels[localenv.TestLabel] == "true":
		if err := cli.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("remove leftover container %s: %v", name, err)
		}
	case err == nil:
		t.Fatalf("container %s exists and is not test material; not touching it", name)
	case !cerrdefs.IsNotFound(err):
		t.Fatalf("inspect container %s: %v", name, err)
	}

	port := nat.Port("8080/tcp")
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: image, Env: env, Labels: ContainerLabels(t, cli), ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hostPort)}}}},
		nil, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	return created.ID
}

// WaitHTTP polls url until it answers a 2xx status, failing t after
// timeout.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering 2xx within %s: %v", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
