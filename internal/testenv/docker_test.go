package testenv_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

func TestFreePort(t *testing.T) {
	port := testenv.FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("FreePort %d is not free: %v", port, err)
	}
	ln.Close()
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	testenv.WaitHTTP(t, srv.URL, 5*time.Second)
	if got := calls.Load(); got != 3 {
		t.Errorf("WaitHTTP returned after %d requests, want 3 (the first 2xx)", got)
	}
}

func TestRunTestapp(t *testing.T) {
	cli := testenv.Docker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	image := testenv.TestappImage(t, cli, "testenv-run", "healthy")
	name := fmt.Sprintf("chatops-test-%d-testenv", os.Getpid())

	// A leftover test container of the same name (a crashed earlier run) is
	// replaced.
	leftover, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: testenv.ContainerLabels(t, cli)}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}

	var id string
	t.Run("run", func(t *testing.T) {
		port := testenv.FreePort(t)
		id = testenv.RunTestapp(t, cli, name, image, port, "SLOT=blue")
		testenv.WaitHTTP(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/healthz", 20*time.Second)
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Config.Labels[localenv.TestLabel] != "true" || c.Config.Labels[testenv.RunLabel] == "" {
			t.Errorf("labels = %v", c.Config.Labels)
		}
	})
	if _, err := cli.ContainerInspect(ctx, leftover.ID); !cerrdefs.IsNotFound(err) {
		t.Errorf("leftover container not replaced: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
		t.Errorf("container %s outlived its test: %v", name, err)
	}
}
