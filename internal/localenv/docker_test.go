package localenv_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

func TestCommitFor(t *testing.T) {
	a, b := localenv.CommitFor("v1.0.0"), localenv.CommitFor("v1.0.1")
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(a) || a == b || a != localenv.CommitFor("v1.0.0") {
		t.Errorf("CommitFor = %q, %q: want distinct, deterministic 40-hex commits", a, b)
	}
}

func TestBuildTestapp(t *testing.T) {
	cli := testenv.Docker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	version := "localenv-build"

	if _, err := localenv.BuildTestapp(ctx, cli, version, "sick"); err == nil {
		t.Error("unknown mode: no error")
	}

	ref, err := localenv.BuildTestapp(ctx, cli, version, "degraded")
	if err != nil {
		t.Fatal(err)
	}
	if ref != "togather-server:"+version {
		t.Errorf("ref = %q", ref)
	}
	first, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(first.Config.Env, " ")
	for _, want := range []string{"VERSION=" + version, "GIT_COMMIT=" + localenv.CommitFor(version), "TESTAPP_MODE=degraded"} {
		if !strings.Contains(env, want) {
			t.Errorf("image env %q lacks %s", env, want)
		}
	}
	if first.Config.Labels[localenv.TestLabel] != "true" || strings.Join(first.Config.Entrypoint, " ") != "/testapp" {
		t.Errorf("image config = %+v", first.Config)
	}

	// Same version and mode: reused, not rebuilt.
	if _, err := localenv.BuildTestapp(ctx, cli, version, "degraded"); err != nil {
		t.Fatal(err)
	}
	if again, _ := cli.ImageInspect(ctx, ref); again.ID != first.ID {
		t.Errorf("image rebuilt: %s, then %s", first.ID, again.ID)
	}

	// Another mode under the same tag: rebuilt and retagged.
	if _, err := localenv.BuildTestapp(ctx, cli, version, "never-healthy"); err != nil {
		t.Fatal(err)
	}
	other, _ := cli.ImageInspect(ctx, ref)
	if other.ID == first.ID || !strings.Contains(strings.Join(other.Config.Env, " "), "TESTAPP_MODE=never-healthy") {
		t.Errorf("mode change not rebuilt: %s env %v", other.ID, other.Config.Env)
	}
	if _, err := cli.ImageInspect(ctx, first.ID); !cerrdefs.IsNotFound(err) {
		t.Errorf("the replaced image %s was left dangling: %v", first.ID, err)
	}

	// The image runs the testapp in its mode.
	port := testenv.FreePort(t)
	testenv.RunTestapp(t, cli, fmt.Sprintf("chatops-test-%d-localenv", os.Getpid()), ref, port, "SLOT=green")
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitHTTP(t, base+"/healthz", 20*time.Second)
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Status, Slot, Version, GitCommit string }
	json.NewDecoder(resp.Body).Decode(&h)
	if resp.StatusCode != 503 || h.Status != "unhealthy" || h.Slot != "green" {
		t.Errorf("/health = %d %+v, want 503 unhealthy on green", resp.StatusCode, h)
	}
}

// buildLabelled builds a one-layer image on top of base carrying label.
func buildLabelled(t *testing.T, ctx context.Context, cli *client.Client, base, tag, label string) {
	t.Helper()
	dockerfile := fmt.Sprintf("FROM %s\nLABEL %s\n", base, label)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))})
	tw.Write([]byte(dockerfile))
	tw.Close()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, out)
	}
}

func TestRemoveLabelled(t *testing.T) {
	cli := testenv.Docker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	base := testenv.TestappImage(t, cli, "localenv-remove", "healthy")
	key, value := "com.togather.chatops.test.localenv", strconv.Itoa(os.Getpid())
	tag := "togather-chatops-localenv-remove:" + value
	t.Cleanup(func() { localenv.RemoveLabelled(context.Background(), cli, key, value) }) // if the test fails midway
	buildLabelled(t, ctx, cli, base, tag, key+"="+value)

	var ids []string
	for i := range 2 {
		created, err := cli.ContainerCreate(ctx, &container.Config{Image: tag}, nil, nil, nil,
			fmt.Sprintf("chatops-test-%d-remove-%d", os.Getpid(), i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.ID)
	}
	if err := cli.ContainerStart(ctx, ids[0], container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := localenv.RemoveLabelled(ctx, cli, key, value); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
			t.Errorf("container %s survived: %v", id[:12], err)
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); !cerrdefs.IsNotFound(err) {
		t.Errorf("image %s survived: %v", tag, err)
	}
	if _, err := cli.ImageInspect(ctx, base); err != nil {
		t.Errorf("unlabelled base image %s removed: %v", base, err)
	}
	if err := localenv.RemoveLabelled(ctx, cli, key, value); err != nil {
		t.Errorf("nothing left to remove: %v", err)
	}
}
