package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Exec runs cmd (resolved in the container's PATH) with env added to the
// container's environment in the running container name, feeding it stdin
// (none if nil) and copying its stdout and stderr as they come; it returns
// the command's exit code once its output has ended. An error means the
// command could not be run or its streams broke; a command that fails is
// its exit code. Cancelling ctx drops the streams; the command itself is
// not killed (the Engine API cannot), so callers that need it gone end it
// another way.
func (e *Engine) Exec(ctx context.Context, name string, cmd, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	created, err := e.cli.ContainerExecCreate(ctx, name, container.ExecOptions{
		Cmd: cmd, Env: env, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, e.containerErr("exec in", name, err)
	}
	resp, err := e.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("exec %s in container %s: %w", cmd[0], name, e.why(err))
	}
	defer resp.Close()
	stop := context.AfterFunc(ctx, resp.Close)
	defer stop()

	fed := make(chan error, 1)
	if stdin != nil {
		go func() {
			_, err := io.Copy(resp.Conn, stdin)
			if cerr := resp.CloseWrite(); err == nil {
				err = cerr
			}
			fed <- err
		}()
	} else {
		fed <- nil
	}
	_, outErr := stdcopy.StdCopy(stdout, stderr, resp.Reader)
	// The output has ended: the command is done (or the stream broke), so
	// nothing reads its input any more.
	resp.Close()
	inErr := <-fed
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec %s in container %s: %w", cmd[0], name, context.Cause(ctx))
	}
	if outErr != nil {
		return -1, fmt.Errorf("exec %s in container %s: read its output: %w", cmd[0], name, e.why(outErr))
	}
	code, err := e.execExitCode(ctx, created.ID)
	if err != nil {
		return -1, fmt.Errorf("exec %s in container %s: %w", cmd[0], name, err)
	}
	if inErr != nil && code == 0 {
		// It ended well without all its input: say why rather than succeed.
		return -1, fmt.Errorf("exec %s in container %s: write its input: %w", cmd[0], name, inErr)
	}
	return code, nil
}

// execExitCode waits (briefly: the output has ended) for the exec to be
// reported finished and returns its exit code.
func (e *Engine) execExitCode(ctx context.Context, id string) (int, error) {
	for tries := 0; ; tries++ {
		st, err := e.cli.ContainerExecInspect(ctx, id)
		if err != nil {
			return -1, fmt.Errorf("read its exit code: %w", e.why(err))
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		if tries == 100 {
			return -1, errors.New("its output ended but it still runs")
		}
		select {
		case <-ctx.Done():
			return -1, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
