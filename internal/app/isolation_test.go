package app_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
)

// nobody is the unprivileged account the isolated bot runs as.
const nobody = 65534

// The bot run in a network namespace of its own, as a user who can read
// none of the environment's files and is not in the docker group, reaches
// the environment through SSH and nothing else: with host ssh:// every
// part answers, with host local (the same configuration otherwise) none
// does. So Docker, Caddy's admin API, the health ports, the app database
// and the files are used only through the SSH connection.
func TestRemoteHostReachedOnlyThroughSSH(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to create a network namespace", nil)
	}
	ns := testenv.NewNetns(t)
	sshd := testenv.StartSSHDOn(t, ns.HostAddr)
	e := apptest.NewDeployEnv(t, apptest.Remote(sshd))
	bin := testenv.Binary(t, "./cmd/togather-chatops")

	// nobody's own directory: the binary, its key, known_hosts, configs.
	home, err := os.MkdirTemp("", "togather-nobody-") // t.TempDir's parent is root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{{bin, "togather-chatops", 0o755}, {sshd.IdentityFile, "id_ed25519", 0o600}, {sshd.KnownHosts, "known_hosts", 0o644},
		{e.EnvFile, "app.env", 0o600}, {e.Caddyfile, "Caddyfile", 0o644}} {
		data, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, f.dst), data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(e.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	remote := strings.NewReplacer(sshd.IdentityFile, filepath.Join(home, "id_ed25519"), sshd.KnownHosts, filepath.Join(home, "known_hosts")).Replace(string(cfg))
	// Locally, nobody gets copies of the files, so that what fails is the
	// network: the namespace's loopback is not the machine's.
	local := strings.Replace(remote, "    host: "+sshd.URL()+"\n", "    host: local\n", 1)
	local = strings.NewReplacer(e.EnvFile, filepath.Join(home, "app.env"), e.Caddyfile, filepath.Join(home, "Caddyfile")).Replace(local)
	if local == remote {
		t.Fatalf("the configuration has no host line for %s:\n%s", sshd.URL(), remote)
	}
	for name, text := range map[string]string{"remote.yaml": remote, "local.yaml": local} {
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	// The environment's files stay root's: nobody cannot read them.
	if err := os.Chmod(e.EnvFile, 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := ns.Command(ctx, nobody, nobody, append([]string{filepath.Join(home, "togather-chatops")}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("host", "check", "staging", "--config", filepath.Join(home, "remote.yaml"))
	if err != nil {
		t.Fatalf("host check through SSH from the namespace: %v\n%s", err, out)
	}
	for _, item := range []string{"host.files", "docker.api", "proxy.admin", "proxy.caddyfile", "disk.free", "database.reachable"} {
		if !strings.Contains(out, "PASS "+item) {
			t.Errorf("host check through SSH: %s did not pass:\n%s", item, out)
		}
	}
	if out, err := run("status", "staging", "--config", filepath.Join(home, "remote.yaml")); err != nil || !strings.Contains(out, "blue") {
		t.Errorf("status through SSH from the namespace: %v\n%s", err, out)
	}

	out, err = run("host", "check", "staging", "--config", filepath.Join(home, "local.yaml"))
	t.Logf("host check as local from the namespace:\n%s", out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("host check as local from the namespace passed (%v): the environment is reachable without SSH\n%s", err, out)
	}
	for item, why := range map[string]string{"docker.api": "permission denied", "proxy.admin": "connection refused", "database.reachable": "connect"} {
		line := lineOf(out, "FAIL "+item)
		if !strings.Contains(line, why) {
			t.Errorf("without SSH, %s was not refused for %q from the namespace: %q", item, why, line)
		}
	}
}

// lineOf is the line of out that holds s, or "".
func lineOf(out, s string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
