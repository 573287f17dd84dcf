package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// CaddyfileOptions describes a Togather-format Caddyfile served on loopback.
type CaddyfileOptions struct {
	AdminPort    int      // admin API on 127.0.0.1; StartTogatherCaddy picks a free port for 0
	HTTPPort     int      // the site, http://127.0.0.1:<HTTPPort>; StartTogatherCaddy picks a free port for 0
	Slot         ops.Slot // the live slot, sent as X-Togather-Slot
	UpstreamPort int      // the live slot's port on localhost
	// HealthInterval, when set, adds an active health check of /health to
	// the main upstream (production uses 10s), with half of it as timeout.
	HealthInterval time.Duration
}

// TogatherCaddyfile returns a Caddyfile laid out like a Togather host's
// /etc/caddy/Caddyfile, but on loopback and plain HTTP: between the slot
// markers an SSE handle and the main reverse_proxy, both to
// localhost:<UpstreamPort>, the main one without keep-alive and naming the
// slot in X-Togather-Slot.
func TogatherCaddyfile(c CaddyfileOptions) []byte {
	var health string
	if c.HealthInterval > 0 {
		health = fmt.Sprintf("\t\thealth_uri /health\n\t\thealth_interval %s\n\t\thealth_timeout %s\n\t\thealth_status 2xx\n\n",
			c.HealthInterval, c.HealthInterval/2)
	}
	return fmt.Appendf(nil, `# Togather Caddyfile on loopback: the live slot is the block between the markers.
{
	admin 127.0.0.1:%[1]d
	auto_https off
}

http://127.0.0.1:%[2]d {
	bind 127.0.0.1

	# BLUE_GREEN_SLOT_START - Managed by deployment script (do not remove this marker)
	handle /api/v1/admin/scraper/events {
		reverse_proxy localhost:%[3]d {
			flush_interval -1
			transport http {
				keepalive 30s
			}
		}
	}

	reverse_proxy localhost:%[3]d {
%[4]s		header_up X-Real-IP {remote_host}
		transport http {
			keepalive off
		}
		header_down X-Togather-Slot "%[5]s"
	}
	# BLUE_GREEN_SLOT_END - Managed by deployment script (do not remove this marker)
}
`, c.AdminPort, c.HTTPPort, c.UpstreamPort, health, c.Slot)
}

// Caddy is a caddy process started by StartCaddy.
type Caddy struct {
	AdminURL      string // e.g. http://127.0.0.1:2019
	CaddyfilePath string // the Caddyfile it was started with
	LogPath       string // its stdout and stderr

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	stop sync.Once
}

// StartCaddy writes caddyfile to dir/Caddyfile and runs
// "caddy run --config dir/Caddyfile --adapter caddyfile" with its output in
// dir/caddy.log and its autosave and storage under dir. It returns once the
// admin API at adminAddr (host:port, as the Caddyfile sets it) answers, and
// fails if Caddy exits or ctx ends first.
func StartCaddy(ctx context.Context, dir string, caddyfile []byte, adminAddr string) (*Caddy, error) {
	c := &Caddy{
		AdminURL:      "http://" + adminAddr,
		CaddyfilePath: filepath.Join(dir, "Caddyfile"),
		LogPath:       filepath.Join(dir, "caddy.log"),
		done:          make(chan struct{}),
	}
	if err := os.WriteFile(c.CaddyfilePath, caddyfile, 0o644); err != nil {
		return nil, fmt.Errorf("write caddyfile: %w", err)
	}
	logFile, err := os.Create(c.LogPath)
	if err != nil {
		return nil, fmt.Errorf("create caddy log: %w", err)
	}
	defer logFile.Close()

	c.cmd = exec.Command("caddy", "run", "--config", c.CaddyfilePath, "--adapter", "caddyfile")
	c.cmd.Env = append(host.ChildEnv(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"))
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start caddy: %w", err)
	}
	go func() {
		_ = c.cmd.Wait() // the exit status is of no interest: Stop kills it
		close(c.done)
	}()
	if err := c.awaitAdmin(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("caddy did not come up: %w; its log:\n%s", err, c.logTail())
	}
	return c, nil
}

// StartTogatherCaddy runs Caddy in dir on TogatherCaddyfile(c), after giving
// a zero AdminPort or HTTPPort a free loopback port. It returns the site's
// base URL with it.
func StartTogatherCaddy(ctx context.Context, dir string, c CaddyfileOptions) (*Caddy, string, error) {
	for _, p := range []*int{&c.AdminPort, &c.HTTPPort} {
		if *p != 0 {
			continue
		}
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, "", err
		}
		*p = port
	}
	caddy, err := StartCaddy(ctx, dir, TogatherCaddyfile(c), "127.0.0.1:"+strconv.Itoa(c.AdminPort))
	if err != nil {
		return nil, "", err
	}
	return caddy, "http://127.0.0.1:" + strconv.Itoa(c.HTTPPort), nil
}

// Stop kills Caddy and waits for it to exit. Calling it again does nothing.
func (c *Caddy) Stop() {
	c.stop.Do(func() {
		_ = c.cmd.Process.Kill() // fails only when it has already exited
		<-c.done
	})
}

// awaitAdmin polls the admin API until it answers 200.
func (c *Caddy) awaitAdmin(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.AdminURL+"/config/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("admin API at %s: %w", c.AdminURL, ctx.Err())
		case <-c.done:
			return errors.New("caddy exited")
		case <-tick.C:
		}
	}
}

// logTail returns the end of Caddy's log.
func (c *Caddy) logTail() []byte {
	b, err := os.ReadFile(c.LogPath)
	if err != nil {
		return []byte(err.Error())
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return bytes.TrimSpace(b)
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
