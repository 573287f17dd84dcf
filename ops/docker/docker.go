// Package docker is the Docker Engine API adapter of ops: it inspects, runs,
// stops and removes slot containers, samples their resource use, reads their
// logs, resolves and pulls images, and copies files such as migrations out of
// an image.
package docker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// Errors callers can test for with errors.Is.
var (
	ErrImageNotFound     = errors.New("image not found")
	ErrContainerNotFound = errors.New("container not found")
	ErrContainerExists   = errors.New("container name already in use")
)

var _ ops.ContainerInspector = (*Engine)(nil)

// Engine talks to one Docker engine.
type Engine struct {
	cli     *client.Client
	files   host.Files            // where env files are read
	dialErr atomic.Pointer[error] // the last failed dial through a host
}

// New connects to the engine at dockerHost (e.g. unix:///var/run/docker.sock)
// from the bot's machine; an empty dockerHost uses the environment
// (DOCKER_HOST, default socket). The API version is negotiated, so older
// engines work.
func New(dockerHost string) (*Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if dockerHost != "" {
		opts = append(opts, client.WithHost(dockerHost))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Engine{cli: cli, files: host.Local{}.Files()}, nil
}

// OnHost connects to the engine socket at socket (a path on h, e.g.
// /var/run/docker.sock) through h; env files are read on h too.
func OnHost(h host.Host, socket string) (*Engine, error) {
	e := &Engine{files: h.Files()}
	cli, err := client.NewClientWithOpts(
		client.WithAPIVersionNegotiation(),
		client.WithHost("unix://"+socket),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := h.DialContext(ctx, "unix", socket)
			if err != nil {
				e.dialErr.Store(&err)
			}
			return c, err
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", h.Name(), err)
	}
	e.cli = cli
	return e, nil
}

// why gives a failed call the host's own account of a failed dial: the
// Docker client replaces any network error with "Cannot connect to the
// Docker daemon at unix://…", which names neither the host nor the cause.
func (e *Engine) why(err error) error {
	if last := e.dialErr.Load(); last != nil && client.IsErrConnectionFailed(err) {
		return *last
	}
	return err
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Ping checks that the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx); err != nil {
		return fmt.Errorf("ping docker engine: %w", e.why(err))
	}
	return nil
}

// Version reports the engine's version and the API version negotiated
// with it.
func (e *Engine) Version(ctx context.Context) (engine, api string, err error) {
	v, err := e.cli.ServerVersion(ctx)
	if err != nil {
		return "", "", fmt.Errorf("docker engine version: %w", e.why(err))
	}
	return v.Version, e.cli.ClientVersion(), nil
}

// Inspect reports the container called name; a missing container is
// Exists false and no error.
func (e *Engine) Inspect(ctx context.Context, name string) (ops.ContainerInfo, error) {
	c, err := e.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return ops.ContainerInfo{Name: name}, nil
	}
	if err != nil {
		return ops.ContainerInfo{}, fmt.Errorf("inspect container %s: %w", name, e.why(err))
	}
	info := ops.ContainerInfo{Name: name, Exists: true}
	if c.ContainerJSONBase != nil {
		info.Name = strings.TrimPrefix(c.Name, "/")
		info.ID = c.ID
		info.ImageID = c.Image
		info.RestartCount = c.RestartCount
		if c.State != nil {
			info.State = string(c.State.Status)
			info.Running = c.State.Running
			info.ExitCode = c.State.ExitCode
			info.OOMKilled = c.State.OOMKilled
			info.Error = c.State.Error
			// The engine reports 0001-01-01T00:00:00Z for never started.
			info.StartedAt, _ = time.Parse(time.RFC3339Nano, c.State.StartedAt)
		}
		if c.HostConfig != nil {
			info.RestartPolicy = string(c.HostConfig.RestartPolicy.Name)
		}
	}
	if c.Config != nil {
		info.Image = cmp.Or(c.Config.Labels[imageLabel], c.Config.Image)
		info.Labels = c.Config.Labels
	}
	return info, nil
}

// imageLabel holds the image reference of a container created from an
// image's content id (ContainerSpec.ImageID).
const imageLabel = "com.togather.chatops.image"

// Run creates and starts a container from spec and returns its id. The
// environment is spec.EnvFile's entries overridden by spec.Env (see env);
// the container port (default 8080/tcp) is published on
// 127.0.0.1:HostPort when HostPort is set. A name already in use is
// ErrContainerExists: the caller decides whether to remove the old
// container. A container that fails to start is removed.
func (e *Engine) Run(ctx context.Context, spec ops.ContainerSpec) (string, error) {
	id, err := e.create(ctx, spec)
	if err != nil {
		return "", err
	}
	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		err = fmt.Errorf("start container %s: %w", spec.Name, e.why(err))
		if rmErr := e.remove(context.WithoutCancel(ctx), id); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return "", err
	}
	return id, nil
}

// oneOffOutput bounds the output RunOnce keeps: the last lines are the
// ones that say why.
const oneOffOutput = 200

// RunOnce runs spec to completion in a container of its own (any leftover
// of the same name, from an interrupted run, is removed first): it waits up
// to timeout, kills the container when the time is up, keeps the last lines
// of its output and removes it. A command that fails is a OneOff with its
// exit code, not an error; an error means it could not be run.
func (e *Engine) RunOnce(ctx context.Context, spec ops.ContainerSpec, timeout time.Duration) (ops.OneOff, error) {
	if err := e.remove(ctx, spec.Name); err != nil {
		return ops.OneOff{}, err
	}
	id, err := e.create(ctx, spec)
	if err != nil {
		return ops.OneOff{}, err
	}
	defer func() { _ = e.remove(context.WithoutCancel(ctx), id) }()
	started := time.Now()
	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return ops.OneOff{}, fmt.Errorf("start container %s: %w", spec.Name, e.why(err))
	}
	var out ops.OneOff
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done, failed := e.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-done:
		out.ExitCode = int(res.StatusCode)
		if res.Error != nil && res.Error.Message != "" {
			return out, fmt.Errorf("wait for container %s: %s", spec.Name, res.Error.Message)
		}
	case err := <-failed:
		if ctx.Err() != nil || wctx.Err() == nil {
			return out, fmt.Errorf("wait for container %s: %w", spec.Name, e.why(err))
		}
		out.TimedOut, out.ExitCode = true, -1
		kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer kcancel()
		if err := e.cli.ContainerKill(kctx, id, "KILL"); err != nil && !cerrdefs.IsNotFound(err) {
			return out, fmt.Errorf("kill container %s after %s: %w", spec.Name, timeout, e.why(err))
		}
	}
	out.Took = time.Since(started)
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer lcancel()
	if out.Output, err = e.Logs(lctx, id, oneOffOutput); err != nil {
		return out, err
	}
	return out, nil
}

// create creates the container of spec, not started.
func (e *Engine) create(ctx context.Context, spec ops.ContainerSpec) (string, error) {
	env, err := e.env(spec)
	if err != nil {
		return "", err
	}
	// ${NAME} in the command is the container's variable (no shell runs
	// in a FROM-scratch image to do it).
	if spec.Cmd, err = expandArgs(spec.Cmd, env); err != nil {
		return "", fmt.Errorf("command of %s: %w", spec.Name, err)
	}
	if spec.Entrypoint, err = expandArgs(spec.Entrypoint, env); err != nil {
		return "", fmt.Errorf("entrypoint of %s: %w", spec.Name, err)
	}
	restart, err := restartPolicy(spec.RestartPolicy)
	if err != nil {
		return "", err
	}
	cfg := &container.Config{
		Image:      spec.Image,
		Env:        env,
		Labels:     spec.Labels,
		Cmd:        spec.Cmd,
		Entrypoint: spec.Entrypoint,
	}
	if spec.ImageID != "" {
		// The content, not the tag, which may point elsewhere by now; the
		// label keeps the reference for people and Inspect.
		cfg.Image = spec.ImageID
		cfg.Labels = maps.Clone(spec.Labels)
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[imageLabel] = spec.Image
	}
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: restart},
		NetworkMode:   container.NetworkMode(spec.Network),
	}
	if spec.HostPort > 0 {
		port := nat.Port(strconv.Itoa(cmp.Or(spec.ContainerPort, 8080)) + "/tcp")
		cfg.ExposedPorts = nat.PortSet{port: {}}
		host.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(spec.HostPort)}}}
	}
	created, err := e.cli.ContainerCreate(ctx, cfg, host, nil, nil, spec.Name)
	switch {
	case cerrdefs.IsConflict(err):
		state := "unknown state"
		if old, ierr := e.Inspect(ctx, spec.Name); ierr == nil && old.Exists {
			state = old.State
		}
		return "", fmt.Errorf("create container %s: %w (existing container is %s)", spec.Name, ErrContainerExists, state)
	case cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("create container %s: image %s: %w", spec.Name, spec.Image, ErrImageNotFound)
	case err != nil:
		return "", fmt.Errorf("create container %s: %w", spec.Name, e.why(err))
	}
	return created.ID, nil
}

// env is the environment of spec's container: the env file's entries, then
// spec.Env, whose ${NAME} references are filled in from the env file.
func (e *Engine) env(spec ops.ContainerSpec) ([]string, error) {
	if spec.EnvFile == "" {
		return spec.Env, nil
	}
	fileEnv, err := readEnvFile(e.files, spec.EnvFile)
	if err != nil {
		return nil, err
	}
	overrides, err := ops.ExpandEnv(spec.Env, lookupIn(fileEnv))
	if err != nil {
		return nil, fmt.Errorf("environment of %s: %w", spec.Name, err)
	}
	return mergeEnv(fileEnv, overrides), nil
}

func restartPolicy(name string) (container.RestartPolicyMode, error) {
	switch mode := container.RestartPolicyMode(name); mode {
	case "", container.RestartPolicyDisabled:
		return container.RestartPolicyDisabled, nil
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped, container.RestartPolicyOnFailure:
		return mode, nil
	}
	return "", fmt.Errorf("unknown restart policy %q (want no, always, unless-stopped or on-failure)", name)
}

// lookupIn looks names up in a KEY=VALUE list, the last entry winning.
func lookupIn(env []string) func(string) (string, bool) {
	values := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		values[k] = v
	}
	return func(k string) (string, bool) { v, ok := values[k]; return v, ok }
}

func expandArgs(args, env []string) ([]string, error) {
	var out []string
	lookup := lookupIn(env)
	for _, a := range args {
		a, err := ops.Expand(a, lookup)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Start starts the container called name; starting a running container is
// not an error.
func (e *Engine) Start(ctx context.Context, name string) error {
	return e.containerErr("start", name, e.cli.ContainerStart(ctx, name, container.StartOptions{}))
}

// Stop stops the container called name, killing it after timeout; a
// negative timeout uses the container's own stop timeout. Stopping a stopped
// container is not an error.
func (e *Engine) Stop(ctx context.Context, name string, timeout time.Duration) error {
	var opts container.StopOptions
	if timeout >= 0 {
		secs := int(math.Ceil(timeout.Seconds()))
		opts.Timeout = &secs
	}
	return e.containerErr("stop", name, e.cli.ContainerStop(ctx, name, opts))
}

// Remove force-removes the container called name with its anonymous
// volumes; a missing container is not an error.
func (e *Engine) Remove(ctx context.Context, name string) error {
	return e.remove(ctx, name)
}

func (e *Engine) remove(ctx context.Context, nameOrID string) error {
	err := e.cli.ContainerRemove(ctx, nameOrID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", nameOrID, e.why(err))
	}
	return nil
}

// containerErr wraps err of operation op on container name, mapping a
// missing container to ErrContainerNotFound.
func (e *Engine) containerErr(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s container %s: %w", op, name, ErrContainerNotFound)
	}
	return fmt.Errorf("%s container %s: %w", op, name, e.why(err))
}

// Stats samples the resource use of the container called name. CPU is the
// share of all host CPUs used between two engine samples (docker stats
// multiplies this by the number of CPUs); memory excludes the page cache,
// as docker stats does.
func (e *Engine) Stats(ctx context.Context, name string) (ops.ContainerStats, error) {
	s, err := e.sample(ctx, name)
	if err != nil {
		return ops.ContainerStats{}, err
	}
	if s.PreCPUStats.SystemUsage == 0 {
		// A one-shot read carries no previous sample: take a second one.
		prev := s.CPUStats
		if s, err = e.sample(ctx, name); err != nil {
			return ops.ContainerStats{}, err
		}
		s.PreCPUStats = prev
	}
	return statsOf(s), nil
}

func (e *Engine) sample(ctx context.Context, name string) (container.StatsResponse, error) {
	r, err := e.cli.ContainerStats(ctx, name, false)
	if err != nil {
		return container.StatsResponse{}, e.containerErr("stats of", name, err)
	}
	defer r.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		return container.StatsResponse{}, fmt.Errorf("stats of container %s: decode: %w", name, err)
	}
	return s, nil
}

// statsOf computes the figures of docker stats from one engine sample.
func statsOf(s container.StatsResponse) ops.ContainerStats {
	var out ops.ContainerStats
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	system := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if cpu > 0 && system > 0 {
		out.CPUPercent = cpu / system * 100
	}
	out.MemUsage = s.MemoryStats.Usage
	// cgroup v1 reports total_inactive_file, cgroup v2 inactive_file.
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < out.MemUsage {
		out.MemUsage -= v
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && v < out.MemUsage {
		out.MemUsage -= v
	}
	out.MemLimit = s.MemoryStats.Limit
	if out.MemLimit > 0 {
		out.MemPercent = float64(out.MemUsage) / float64(out.MemLimit) * 100
	}
	return out
}

// Logs returns the last tail lines (all when tail <= 0) of the container's
// stdout and stderr, interleaved as written.
func (e *Engine) Logs(ctx context.Context, name string, tail int) (string, error) {
	c, err := e.cli.ContainerInspect(ctx, name)
	if err != nil {
		return "", e.containerErr("logs of", name, err)
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	rc, err := e.cli.ContainerLogs(ctx, c.ID, opts)
	if err != nil {
		return "", e.containerErr("logs of", name, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if c.Config != nil && c.Config.Tty {
		_, err = io.Copy(&buf, rc)
	} else {
		_, err = stdcopy.StdCopy(&buf, &buf, rc)
	}
	if err != nil {
		return "", fmt.Errorf("logs of container %s: %w", name, e.why(err))
	}
	return buf.String(), nil
}

// ImageID returns the local id (sha256:…) of the image ref, or
// ErrImageNotFound.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("image %s: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, e.why(err))
	}
	return img.ID, nil
}

// Pull pulls the image ref from its registry, anonymously.
func (e *Engine) Pull(ctx context.Context, ref string) error {
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, e.why(err))
	}
	defer rc.Close()
	if err := readStream(rc); err != nil {
		return fmt.Errorf("pull %s: %w", ref, e.why(err))
	}
	return nil
}

// readStream reads a JSON progress stream of the Engine API to its end and
// returns the first error the engine reported in it.
func readStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		switch err := dec.Decode(&msg); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("read engine stream: %w", err)
		}
		if m := cmp.Or(msg.ErrorDetail.Message, msg.Error); m != "" {
			return errors.New(strings.TrimSpace(m))
		}
	}
}

// Network reports the network called name and the IPv4 address of each
// container attached to it; a missing network is Exists false.
func (e *Engine) Network(ctx context.Context, name string) (ops.NetworkInfo, error) {
	nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return ops.NetworkInfo{Name: name}, nil
	}
	if err != nil {
		return ops.NetworkInfo{}, fmt.Errorf("inspect network %s: %w", name, e.why(err))
	}
	info := ops.NetworkInfo{Name: nw.Name, Exists: true, Containers: map[string]string{}}
	for _, c := range nw.Containers {
		if ip, _, err := net.ParseCIDR(c.IPv4Address); err == nil {
			info.Containers[c.Name] = ip.String()
		}
	}
	return info, nil
}
