// Package localenv builds and cleans up the local Docker material that tests
// and the demo console run against: the testapp image, a FROM scratch image
// of the static internal/testapp binary that impersonates the Togather
// server, and every container or image labelled as test material. It does not
// depend on package testing.
package localenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/togather-foundation/togather-chatops/internal/testapp"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// TestLabel marks containers and images created for tests and the demo,
// with the value "true".
const TestLabel = "com.togather.chatops.test"

// Image labels that tell whether an existing testapp image can be reused.
const (
	modeLabel   = "com.togather.chatops.testapp.mode"
	binaryLabel = "com.togather.chatops.testapp.binary" // sha256 of the binary
)

// Sample migrations baked into the image under /migrations.
var migrations = map[string]string{
	"000001_init.up.sql":   "CREATE TABLE IF NOT EXISTS testapp_sample (id bigserial PRIMARY KEY, note text NOT NULL);\n",
	"000001_init.down.sql": "DROP TABLE IF EXISTS testapp_sample;\n",
}

// builder holds the testapp binary, built once per process, and serialises
// image builds.
var builder struct {
	mu     sync.Mutex
	binary []byte
	sum    string
}

// CommitFor is the deterministic 40-hex git commit the testapp image of
// version reports.
func CommitFor(version string) string {
	sum := sha1.Sum([]byte(version))
	return hex.EncodeToString(sum[:])
}

// BuildTestapp makes sure the image togather-server:<version> runs the
// current testapp binary in mode (a TESTAPP_MODE value) and returns its
// reference. The binary is compiled once per process; the image is rebuilt
// only when the tag is missing or was built from another binary or mode.
// One version is one tag: use distinct versions for distinct modes.
func BuildTestapp(ctx context.Context, cli *client.Client, version, mode string) (string, error) {
	m, err := testapp.ParseMode(mode)
	if err != nil {
		return "", err
	}
	ref := "togather-server:" + version
	labels := map[string]string{TestLabel: "true", modeLabel: m.String()}

	builder.mu.Lock()
	defer builder.mu.Unlock()
	if err := buildBinary(ctx); err != nil {
		return "", err
	}
	labels[binaryLabel] = builder.sum

	img, err := cli.ImageInspect(ctx, ref)
	switch {
	case err == nil && img.Config != nil && hasLabels(img.Config.Labels, labels):
		return ref, nil
	case err != nil && !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}

	buildContext, err := contextTar(builder.binary, version, m)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	resp, err := cli.ImageBuild(ctx, bytes.NewReader(buildContext), build.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if err := readBuild(resp.Body); err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	if img.ID != "" {
		// The image the tag named before is now dangling. If a container
		// still uses it the engine refuses, and RemoveLabelled gets it later.
		if now, err := cli.ImageInspect(ctx, ref); err == nil && now.ID != img.ID {
			cli.ImageRemove(ctx, img.ID, image.RemoveOptions{PruneChildren: true})
		}
	}
	return ref, nil
}

// readBuild reads the engine's build output to its end; a failed build is
// an error carrying the build log.
func readBuild(r io.Reader) error {
	dec := json.NewDecoder(r)
	var buildLog strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		switch err := dec.Decode(&msg); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("read build output: %w", err)
		}
		buildLog.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("%s\nbuild log:\n%s", strings.TrimSpace(msg.Error), buildLog.String())
		}
	}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// buildBinary compiles the static testapp binary into builder unless that
// was done already. The caller holds builder.mu.
func buildBinary(ctx context.Context) error {
	if builder.binary != nil {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "togather-testapp-")
	if err != nil {
		return fmt.Errorf("build testapp: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "testapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/testapp/cmd/testapp")
	cmd.Dir = root
	// The Go tool's own settings, where it caches, and how it downloads.
	cmd.Env = append(host.ChildEnv("GO", "XDG_", "SSL_CERT_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"),
		"CGO_ENABLED=0", "GOOS=linux")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build testapp: go build: %w\n%s", err, output)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("build testapp: %w", err)
	}
	sum := sha256.Sum256(bin)
	builder.binary, builder.sum = bin, hex.EncodeToString(sum[:])
	return nil
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// contextTar is the build context of a testapp image: its Dockerfile, the
// binary and the sample migrations.
func contextTar(binary []byte, version string, mode testapp.Mode) ([]byte, error) {
	dockerfile := fmt.Sprintf(`FROM scratch
COPY testapp /testapp
COPY migrations /migrations
ENV VERSION=%q GIT_COMMIT=%q TESTAPP_MODE=%q
EXPOSE 8080
ENTRYPOINT ["/testapp"]
`, version, CommitFor(version), mode.String())
	type file struct {
		name string
		mode int64
		body []byte
	}
	files := []file{{"Dockerfile", 0o644, []byte(dockerfile)}, {"testapp", 0o755, binary}}
	for name, sql := range migrations {
		files = append(files, file{"migrations/" + name, 0o644, []byte(sql)})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RemoveLabelled force-removes every container, then every image, carrying
// the label key=value (any value of key when value is empty).
func RemoveLabelled(ctx context.Context, cli *client.Client, key, value string) error {
	label := key
	if value != "" {
		label += "=" + value
	}
	f := filters.NewArgs(filters.Arg("label", label))
	containers, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers labelled %s: %w", label, err)
	}
	var errs []error
	for _, c := range containers {
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
		}
	}
	images, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list images labelled %s: %w", label, err))...)
	}
	for _, img := range images {
		_, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", img.ID, err))
		}
	}
	return errors.Join(errs...)
}
