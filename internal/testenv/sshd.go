package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a real OpenSSH server on a loopback port, logging in the test's
// own user (root under CI) with a generated key: a remote host for tests.
type SSHD struct {
	Dir          string // its files: config, keys, known_hosts
	Port         int
	IdentityFile string // the client's private key
	KnownHosts   string // pins the server's key
	HostKey      ssh.PublicKey
	Host         string // the address it listens on
	user         string
	config       string
	bin          string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// URL is the ssh:// URL that reaches the server as its user.
func (s *SSHD) URL() string { return fmt.Sprintf("ssh://%s@%s", s.user, s.addr()) }

// StartSSHD starts sshd (Debian's openssh-server) on loopback and stops it
// when the test ends. A missing sshd is reported through Missing.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	return StartSSHDOn(t, "127.0.0.1")
}

// StartSSHDOn is StartSSHD listening on the IPv4 address listen, such as
// the host side of a network namespace's veth pair.
func StartSSHDOn(t testing.TB, listen string) *SSHD {
	t.Helper()
	bin, err := exec.LookPath("/usr/sbin/sshd")
	if err != nil {
		Missing(t, "OpenSSH server (/usr/sbin/sshd)", err)
	}
	dir := t.TempDir()
	s := &SSHD{Dir: dir, Host: listen, user: currentUser(t)}
	hostPub := writeKey(t, filepath.Join(dir, "host_ed25519"))
	clientPub := writeKey(t, filepath.Join(dir, "id_ed25519"))
	s.IdentityFile = filepath.Join(dir, "id_ed25519")
	s.HostKey = hostPub
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600))
	s.Port = FreePort(t)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	must(t, os.WriteFile(s.KnownHosts, []byte(knownhosts.Line([]string{s.addr()}, hostPub)+"\n"), 0o644))
	s.config = filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
LogLevel ERROR
`, s.Port, listen, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	must(t, os.WriteFile(s.config, []byte(conf), 0o600))
	must(t, os.MkdirAll("/run/sshd", 0o755)) // privilege separation directory
	s.bin = bin
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *SSHD) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Start (re)starts the server on its port and waits until it accepts.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "-D", "-e", "-f", s.config)
	cmd.Stderr = &prefixWriter{t: t, prefix: "sshd: "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	s.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			// Read the banner and say ours, so sshd logs no aborted exchange.
			_ = c.SetDeadline(time.Now().Add(time.Second))
			banner := make([]byte, 64)
			n, _ := c.Read(banner)
			_, _ = c.Write([]byte("SSH-2.0-probe\r\n"))
			c.Close()
			if bytes.HasPrefix(banner[:n], []byte("SSH-")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and every session it serves, as a host going
// down would: their connections drop.
func (s *SSHD) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	for _, child := range descendants(pid) {
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// descendants lists the processes below pid (sshd's per-connection
// children start sessions of their own).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscan(string(stat[i+1:]), &state, &ppid); err == nil {
			parent[p] = ppid
		}
	}
	var out []int
	frontier := []int{pid}
	for len(frontier) > 0 {
		next := frontier[0]
		frontier = frontier[1:]
		for p, pp := range parent {
			if pp == next {
				out = append(out, p)
				frontier = append(frontier, p)
			}
		}
	}
	return out
}

// ChangeHostKey gives the server a new host key (known_hosts keeps the
// old one), as a reinstalled host or a man in the middle would; it takes
// effect at the next Start.
func (s *SSHD) ChangeHostKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	path := filepath.Join(s.Dir, "host_ed25519")
	must(t, os.Remove(path))
	return writeKey(t, path)
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	must(t, err)
	must(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	must(t, err)
	must(t, os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644))
	return sp
}

func currentUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	must(t, err)
	return u.Username
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// prefixWriter logs a child's output lines through the test.
type prefixWriter struct {
	t      testing.TB
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + string(p))
	return len(p), nil
}
