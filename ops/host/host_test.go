package host_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

func newSSH(t *testing.T, d *testenv.SSHD) *host.SSH {
	t.Helper()
	h, err := host.NewSSH(host.SSHConfig{URL: d.URL(), IdentityFile: d.IdentityFile, KnownHosts: d.KnownHosts, KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Every host gives the same files and network behaviour: the local one and
// a real sshd on loopback.
func TestHostsBehaveAlike(t *testing.T) {
	d := testenv.StartSSHD(t)
	for _, h := range []host.Host{host.Local{}, newSSH(t, d)} {
		t.Run(strings.SplitN(h.Name(), ":", 2)[0], func(t *testing.T) {
			dir := t.TempDir()
			f := h.Files()
			name := filepath.Join(dir, "sub", "Caddyfile")
			if err := f.MkdirAll(filepath.Dir(name), 0o750); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadFile(name); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
			}
			if err := host.WriteFileAtomic(f, name, []byte("one"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := host.WriteFileAtomic(f, name, []byte("two"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := f.ReadFile(name)
			if err != nil || string(got) != "two" {
				t.Fatalf("read %q, %v; want two", got, err)
			}
			info, err := os.Stat(name)
			if err != nil || info.Mode().Perm() != 0o640 {
				t.Fatalf("mode %v, %v: want 0640 kept from the first write", info.Mode(), err)
			}
			list, err := f.ReadDir(filepath.Dir(name))
			if err != nil || len(list) != 1 || list[0].Name() != "Caddyfile" {
				t.Fatalf("ReadDir = %v, %v: want only Caddyfile (no temporary file left)", list, err)
			}
			w, err := f.Create(name, 0o600)
			if err == nil || !errors.Is(err, fs.ErrExist) && !strings.Contains(err.Error(), "exist") && !strings.Contains(err.Error(), "Failure") {
				t.Fatalf("Create over an existing file = %v, want a failure", err)
			}
			if w != nil {
				w.Close()
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			w, err = f.Create(name+".big", 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ReadFrom(bytes.NewReader(big)); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(w.Sync(), w.Close()); err != nil {
				t.Fatal(err)
			}
			r, err := f.Open(name + ".big")
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(back, big) {
				t.Fatalf("read back %d bytes, %v; want the 1 MiB written", len(back), err)
			}
			disk, err := f.Disk(dir)
			if err != nil || disk.Total == 0 || disk.Free > disk.Total {
				t.Fatalf("Disk = %+v, %v", disk, err)
			}
			uid, _, err := f.Owner(name)
			if err != nil || uid != os.Getuid() {
				t.Fatalf("Owner = %d, %v; want %d", uid, err, os.Getuid())
			}

			// The network as the host sees it: a TCP port and the Docker socket.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })}
			go srv.Serve(ln)
			defer srv.Close()
			resp, err := host.HTTPClient(h, 5*time.Second).Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello" {
				t.Fatalf("body %q", body)
			}
			c, err := h.DialContext(context.Background(), "unix", "/var/run/docker.sock")
			if err != nil {
				testenv.Missing(t, "the Docker socket", err)
			}
			c.Close()
			local, err := h.Reach(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			resp, err = http.Get("http://" + local + "/")
			if err != nil {
				t.Fatalf("through Reach(%s) = %s: %v", ln.Addr(), local, err)
			}
			resp.Body.Close()
		})
	}
}

// One connection serves many users at once, and a lost one is opened again.
func TestSSHSharesOneConnectionAndReconnects(t *testing.T) {
	d := testenv.StartSSHD(t)
	h := newSSH(t, d)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := h.Files().Stat(dir)
				errs <- err
				return
			}
			c, err := h.DialContext(context.Background(), "unix", "/var/run/docker.sock")
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Connections(); n != 1 {
		t.Fatalf("%d connections opened for 40 concurrent users, want 1", n)
	}

	d.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for h.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the connection still counts as open 10 s after sshd died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := h.Files().Stat(dir)
	var he *host.Error
	if !errors.As(err, &he) || he.Step != "connect" {
		t.Fatalf("with sshd down: %v, want a connect error naming the step", err)
	}
	d.Start(t)
	for {
		if _, err = h.Files().Stat(dir); err == nil {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("no reconnect after sshd came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := h.Connections(); n != 2 {
		t.Fatalf("%d connections, want 2 (the first and one reconnect)", n)
	}
}

// A host key the known_hosts file does not pin is refused, and the error
// says what was seen and how to trust it.
func TestSSHRefusesUnknownAndChangedHostKeys(t *testing.T) {
	d := testenv.StartSSHD(t)
	h := newSSH(t, d)
	if _, err := h.Files().Stat("/"); err != nil {
		t.Fatal(err)
	}
	h.Close()

	d.Stop()
	newKey := d.ChangeHostKey(t)
	d.Start(t)
	h = newSSH(t, d)
	_, err := h.Files().Stat("/")
	var hk *host.HostKeyError
	if !errors.As(err, &hk) || !hk.Changed {
		t.Fatalf("changed key: %v, want a HostKeyError with Changed", err)
	}
	for _, want := range []string{"CHANGED", "127.0.0.1", fingerprint(newKey), "ssh-keygen -R", d.KnownHosts} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h2, err := host.NewSSH(host.SSHConfig{URL: d.URL(), IdentityFile: d.IdentityFile, KnownHosts: empty})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	_, err = h2.Files().Stat("/")
	if !errors.As(err, &hk) || hk.Changed {
		t.Fatalf("unknown key: %v, want a HostKeyError without Changed", err)
	}
	for _, want := range []string{"not trusted", fingerprint(newKey), "ssh-keyscan -p", empty} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"ssh://deploy@staging.example", "deploy@staging.example:22", ""},
		{"ssh://deploy@10.0.0.1:2222", "deploy@10.0.0.1:2222", ""},
		{"ssh://staging.example", "", "name the user"},
		{"ssh://deploy:pw@staging.example", "", "no password"},
		{"ssh://deploy@staging.example:99999", "", "port"},
		{"tcp://deploy@staging.example", "", "want ssh://"},
		{"ssh://deploy@staging.example/x", "", "nothing after"},
		{"deploy@staging.example", "", "want ssh://"},
	} {
		got, err := host.ParseTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTarget(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.User+"@"+got.Addr() != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }
