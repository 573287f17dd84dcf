package pg

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// client runs PostgreSQL's client programs (pg_dump, psql) for a
// Snapshotter: on the bot's machine, or in the database's container.
type client interface {
	// run runs program with args against database db of srv, reading its
	// input from in (none if nil) and writing its output to out (nil: it
	// has none worth keeping). It fails when the program does, with the
	// end of what it printed on stderr.
	run(ctx context.Context, srv server, db, program string, args []string, in io.Reader, out io.Writer) error
	// where says where the programs run, for messages.
	where() string
}

// run runs a client program through s.client (see client.run), with the
// secrets s.opts.Redactor knows hidden in its error: what the program
// printed may quote them.
func (s *Snapshotter) run(ctx context.Context, srv server, db, program string, args []string, in io.Reader, out io.Writer) error {
	err := s.client.run(ctx, srv, db, program, args, in, out)
	if err == nil {
		return nil
	}
	return redactedError{text: s.opts.Redactor.Redact(err.Error()), err: err}
}

// redactedError is err with its text redacted; errors.Is and errors.As
// still see err.
type redactedError struct {
	text string
	err  error
}

func (e redactedError) Error() string { return e.text }
func (e redactedError) Unwrap() error { return e.err }

// localClient runs the client programs on the bot's machine.
type localClient struct{ pgDump, psql string }

func (c localClient) where() string { return "the bot's machine" }

func (c localClient) binary(program string) string {
	if program == "pg_dump" {
		return c.pgDump
	}
	return c.psql
}

func (c localClient) run(parent context.Context, srv server, db, program string, args []string, in io.Reader, out io.Writer) error {
	env, cleanup, err := srv.clientEnv(db)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.binary(program), args...)
	cmd.Env = env
	stderr := &tailBuffer{max: stderrTail}
	cmd.Stderr = stderr
	var stdout io.ReadCloser
	if out != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return fmt.Errorf("%s: %w", program, err)
		}
	}
	var stdin io.WriteCloser
	if in != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return fmt.Errorf("%s: %w", program, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", program, err)
	}

	var wg sync.WaitGroup
	var feedErr error
	src := &errReader{r: in}
	if in != nil {
		wg.Go(func() {
			_, feedErr = io.Copy(stdin, src)
			if src.err != nil {
				// The input cannot be read: the program must die before it
				// sees the end of it, or psql would take a cut script as whole.
				cmd.Process.Kill()
			}
			stdin.Close()
		})
	}
	var copyErr error
	if out != nil {
		growPipe(stdout)
		if _, copyErr = io.Copy(out, stdout); copyErr != nil {
			cancel() // the program would block on a full pipe
		}
	}
	wg.Wait()
	waitErr := cmd.Wait()
	return runError(parent, program, src.err, copyErr, waitErr, feedErr, stderr)
}

// runError chooses what a client program's run failed of: the caller's
// context, its input, its output, the program itself, or feeding it.
func runError(parent context.Context, program string, srcErr, copyErr, progErr, feedErr error, stderr *tailBuffer) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: %w", program, context.Cause(parent))
	case srcErr != nil:
		return fmt.Errorf("read the input of %s: %w", program, srcErr)
	case copyErr != nil:
		return fmt.Errorf("write the output of %s: %w", program, copyErr)
	case progErr != nil:
		return commandError(program, progErr, stderr)
	case feedErr != nil:
		return fmt.Errorf("write to %s: %w", program, feedErr)
	}
	return nil
}

// Execer runs a command in a running container with its standard streams
// (the Docker adapter's Engine is one).
type Execer interface {
	Exec(ctx context.Context, container string, cmd, env []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)
}

// containerClient runs the client programs inside the database's own
// container, so their version is the server's whatever the bot's machine
// has. They connect through the container's local socket as the URL's
// user, with its password in the exec's environment (never on a command
// line).
type containerClient struct {
	exec Execer
	name string
}

func (c containerClient) where() string { return "container " + c.name }

func (c containerClient) run(parent context.Context, srv server, db, program string, args []string, in io.Reader, out io.Writer) error {
	app := "togather-chatops-" + strings.ToLower(rand.Text()[:12])
	env := []string{"PGDATABASE=" + db, "PGAPPNAME=" + app}
	if srv.user != "" {
		env = append(env, "PGUSER="+srv.user)
	}
	if srv.password != "" {
		env = append(env, "PGPASSWORD="+srv.password)
	}
	if out == nil {
		out = io.Discard
	}
	stderr := &tailBuffer{max: stderrTail}
	src := &errReader{r: in}
	var stdin io.Reader
	if in != nil {
		stdin = src
	}
	code, err := c.exec.Exec(parent, c.name, append([]string{program}, args...), env, stdin, out, stderr)
	if parent.Err() != nil {
		// The Engine API cannot kill an exec: end its session so that it
		// stops, and a restore's transaction is rolled back.
		c.terminate(parent, srv, db, app)
	}
	var progErr error
	switch {
	case err != nil:
		progErr = err
	case code != 0:
		progErr = fmt.Errorf("exit status %d in %s", code, c.where())
	}
	return runError(parent, program, src.err, nil, progErr, nil, stderr)
}

// terminate ends the database sessions of the program run as app.
func (c containerClient) terminate(parent context.Context, srv server, db, app string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer cancel()
	conn, err := srv.connect(ctx, db)
	if err != nil {
		return // the session dies with the server, or when its client ends
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
}
