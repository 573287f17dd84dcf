package ops_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
)

type hcEngine struct{ err error }

type hcProxy struct {
	pfProxy
	ping error
}

func (p hcProxy) Ping(context.Context) error { return p.ping }

func (e hcEngine) Version(context.Context) (string, string, error) { return "28.5.2", "1.51", e.err }

// hcFiles serves the host's /etc/group and /proc from a map, the rest from
// the bot's own file system.
type hcFiles struct {
	pfFiles
	group string
}

func (f hcFiles) ReadFile(name string) ([]byte, error) {
	if name == "/etc/group" {
		return []byte(f.group), nil
	}
	return f.pfFiles.ReadFile(name)
}

func TestCheckHost(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte("DATABASE_URL=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() ops.HostCheckDeps {
		return ops.HostCheckDeps{
			Env:         ops.Environment{Name: "staging", EnvFile: envFile, DatabaseVar: "DATABASE_URL"},
			Files:       hcFiles{pfFiles: zeroDropHost, group: "root:x:0:\ndocker:x:998:alice,deploy\n"},
			User:        "deploy",
			Engine:      hcEngine{},
			Proxy:       hcProxy{pfProxy: func(context.Context) (ops.Slot, int, error) { return ops.Blue, 8081, nil }},
			AppDB:       pfSizer(func(context.Context) (int64, error) { return 1 << 20, nil }),
			DiskFree:    func(string) (uint64, uint64, error) { return 60, 100, nil },
			SnapshotDir: "/var/lib/togather/db-snapshots",
		}
	}
	status := func(checks []ops.Check) map[string]ops.Check {
		m := map[string]ops.Check{}
		for _, c := range checks {
			m[c.Name] = c
		}
		return m
	}
	all := status(ops.CheckHost(context.Background(), base()))
	for _, name := range []string{"host.files", "host.tcp_migrate_req", "host.docker_group", "docker.api", "proxy.admin", "proxy.caddyfile", "disk.free", "database.reachable"} {
		if c, ok := all[name]; !ok || c.Status != ops.CheckPass {
			t.Errorf("%s = %+v, want pass", name, c)
		}
	}
	if len(all) != 8 {
		t.Errorf("%d checks, want 8: %v", len(all), all)
	}

	d := base()
	d.Files = hcFiles{pfFiles: zeroDropHost, group: "docker:x:998:alice\n"}
	d.Engine = hcEngine{err: errors.New("ssh://deploy@h: open unix /var/run/docker.sock: permission denied")}
	d.Proxy = hcProxy{pfProxy: func(context.Context) (ops.Slot, int, error) { return "", 0, errors.New("no marker block") },
		ping: errors.New("dial tcp 127.0.0.1:2019: connection refused")}
	d.AppDB = pfSizer(func(context.Context) (int64, error) { return 0, errors.New("password authentication failed") })
	d.Env.EnvFile = filepath.Join(t.TempDir(), "missing")
	got := status(ops.CheckHost(context.Background(), d))
	for name, want := range map[string]struct {
		status      ops.CheckStatus
		msg, remedy string
	}{
		"host.files":         {ops.CheckFail, "cannot be read", "chmod 600"},
		"host.docker_group":  {ops.CheckWarn, "deploy is not in the docker group", "usermod -aG docker deploy"},
		"docker.api":         {ops.CheckFail, "permission denied", "docker group"},
		"proxy.admin":        {ops.CheckFail, "connection refused", "admin API"},
		"proxy.caddyfile":    {ops.CheckFail, "no marker block", "marker block"},
		"database.reachable": {ops.CheckFail, "password authentication failed", "DATABASE_URL"},
	} {
		c := got[name]
		if c.Status != want.status || !strings.Contains(c.Message, want.msg) || !strings.Contains(c.Remediation, want.remedy) {
			t.Errorf("%s = %+v, want %s with %q and remedy %q", name, c, want.status, want.msg, want.remedy)
		}
	}
	if c := got["disk.free"]; c.Status != ops.CheckPass {
		t.Errorf("disk.free = %+v: one failing part must not hide the others", c)
	}
}
