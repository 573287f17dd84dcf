package caddy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/caddy"
)

var defaultPorts = map[ops.Slot]int{ops.Blue: 8081, ops.Green: 8082}

func TestLiveSlot(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantSlot ops.Slot
		wantPort int
		wantErr  error
		errText  string
	}{
		{name: "header and port agree", file: production, wantSlot: ops.Blue, wantPort: 8081},
		{name: "two upstreams", file: staging, wantSlot: ops.Green, wantPort: 8082},
		{name: "no header, port of green", file: site("\treverse_proxy localhost:8082"), wantSlot: ops.Green, wantPort: 8082},
		{name: "no header, port of no slot", file: site("\treverse_proxy localhost:8083"),
			wantErr: caddy.ErrDrift, errText: "upstream port 8083 belongs to no slot (blue 8081, green 8082)"},
		{name: "header of no slot's port", file: site("\treverse_proxy localhost:8083 {", "\t\theader_down X-Togather-Slot blue", "\t}"),
			wantErr: caddy.ErrDrift, errText: "port 8083 belongs to no slot"},
		{name: "header contradicts port", file: site("\treverse_proxy localhost:8081 {", "\t\theader_down X-Togather-Slot green", "\t}"),
			wantErr: caddy.ErrDrift, errText: "X-Togather-Slot says green but upstream port 8081 is blue's"},
		{name: "no markers", file: "example.com {\n\treverse_proxy localhost:8081\n}\n", wantErr: caddy.ErrMarkers, errText: "Caddyfile: bad slot markers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			slot, port, err := caddy.New("http://127.0.0.1:1", path, defaultPorts).LiveSlot(t.Context())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("LiveSlot error = %v, want %v containing %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil || slot != tt.wantSlot || port != tt.wantPort {
				t.Fatalf("LiveSlot = %q, %d, %v; want %q, %d", slot, port, err, tt.wantSlot, tt.wantPort)
			}
		})
	}

	_, _, err := caddy.New("http://127.0.0.1:1", filepath.Join(t.TempDir(), "none"), defaultPorts).LiveSlot(t.Context())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LiveSlot of a missing file = %v, want fs.ErrNotExist", err)
	}
}

// env is a real Caddy in front of two backends, one per slot, each answering
// with its slot's name.
type env struct {
	proxy  *caddy.Proxy
	ports  map[ops.Slot]int
	admin  string // Caddy's admin API
	url    string // the site through Caddy
	path   string // its Caddyfile
	client *http.Client
}

func newEnv(t *testing.T, live ops.Slot) *env {
	t.Helper()
	ports := map[ops.Slot]int{}
	for _, s := range ops.Slots {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, string(s))
		}))
		t.Cleanup(srv.Close)
		ports[s] = srv.Listener.Addr().(*net.TCPAddr).Port
	}
	c, url := testenv.Caddy(t, live, ports)
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	return &env{
		proxy: caddy.New(c.AdminURL, c.CaddyfilePath, ports),
		ports: ports, admin: c.AdminURL, url: url, path: c.CaddyfilePath, client: client,
	}
}

// get fetches path through Caddy and returns the backend's answer and the
// X-Togather-Slot header.
func (e *env) get(path string) (body, header string, err error) {
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", errors.New(resp.Status + ": " + string(b))
	}
	return string(b), resp.Header.Get("X-Togather-Slot"), nil
}

// wantServed fails unless a request through Caddy reaches slot's backend and
// carries slot's header.
func (e *env) wantServed(t *testing.T, slot ops.Slot) {
	t.Helper()
	body, header, err := e.get("/")
	if err != nil || body != string(slot) || header != string(slot) {
		t.Fatalf("GET / = %q (X-Togather-Slot %q), %v; want %s", body, header, err, slot)
	}
}

func (e *env) file(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSwitch(t *testing.T) {
	e := newEnv(t, ops.Blue)
	e.wantServed(t, ops.Blue)
	if err := os.Chmod(e.path, 0o640); err != nil {
		t.Fatal(err)
	}
	before := e.file(t)

	start := time.Now()
	previous, err := e.proxy.Switch(t.Context(), ops.Green)
	switched := time.Now()
	if err != nil {
		t.Fatalf("Switch: %v", err)
	}
	// Load is synchronous: the first request after Switch should reach
	// green. Poll briefly anyway to measure rather than assume.
	var tries int
	for deadline := time.Now().Add(2 * time.Second); ; tries++ {
		if body, _, err := e.get("/"); err == nil && body == "green" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("proxy did not serve green within 2s of Switch")
		}
	}
	t.Logf("Switch took %v; green served %v after it returned (%d earlier requests reached blue)",
		switched.Sub(start), time.Since(switched), tries)
	e.wantServed(t, ops.Green)
	if body, _, err := e.get("/api/v1/admin/scraper/events"); err != nil || body != "green" {
		t.Errorf("SSE route served %q, %v; want green", body, err)
	}

	if !bytes.Equal(previous, before) {
		t.Errorf("Switch returned previous =\n%s\nwant the file as it was:\n%s", previous, before)
	}
	want, err := caddy.Rewrite(before, ops.Green, e.ports[ops.Green])
	if err != nil {
		t.Fatal(err)
	}
	if got := e.file(t); !bytes.Equal(got, want) {
		t.Errorf("file after Switch =\n%s\nwant\n%s", got, want)
	}
	if slot, _, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Green {
		t.Errorf("LiveSlot after Switch = %q, %v; want green", slot, err)
	}
	info, err := os.Stat(e.path)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("file mode after Switch = %v, %v; want -rw-r-----", info.Mode(), err)
	}
	entries, err := os.ReadDir(filepath.Dir(e.path))
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if strings.Contains(en.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", en.Name())
		}
	}

	if _, err := e.proxy.Switch(t.Context(), "purple"); err == nil || !strings.Contains(err.Error(), `no port configured for slot "purple"`) {
		t.Errorf("Switch(purple) = %v, want an error naming the slot", err)
	}
}

func TestLoadRejected(t *testing.T) {
	e := newEnv(t, ops.Blue)
	good := e.file(t)

	bad := bytes.Replace(good, []byte("\tbind 127.0.0.1\n"), []byte("\tbind 127.0.0.1\n\tno_such_directive\n"), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("test Caddyfile has no bind line to corrupt")
	}
	err := e.proxy.Load(t.Context(), bad)
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "unrecognized directive: no_such_directive") {
		t.Fatalf("Load(corrupt) = %v, want Caddy's 400 and its message", err)
	}
	e.wantServed(t, ops.Blue)

	// A corrupt file on disk: Switch must fail with Caddy's message, leave
	// the file as it is and keep blue serving.
	if err := os.WriteFile(e.path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.proxy.Switch(t.Context(), ops.Green); err == nil || !strings.Contains(err.Error(), "switch to green: load: caddy admin answered 400") ||
		!strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("Switch with a corrupt Caddyfile = %v, want Caddy's rejection", err)
	}
	if got := e.file(t); !bytes.Equal(got, bad) {
		t.Errorf("Switch rewrote the file although Caddy rejected it:\n%s", got)
	}
	e.wantServed(t, ops.Blue)
}

func TestRestore(t *testing.T) {
	e := newEnv(t, ops.Blue)
	previous, err := e.proxy.Switch(t.Context(), ops.Green)
	if err != nil {
		t.Fatalf("Switch: %v", err)
	}
	e.wantServed(t, ops.Green)

	if err := e.proxy.Restore(t.Context(), previous); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	e.wantServed(t, ops.Blue)
	if got := e.file(t); !bytes.Equal(got, previous) {
		t.Errorf("file after Restore =\n%s\nwant\n%s", got, previous)
	}
	if slot, _, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Blue {
		t.Errorf("LiveSlot after Restore = %q, %v; want blue", slot, err)
	}

	if err := e.proxy.Restore(t.Context(), []byte("example.com {\n\tnot_a_directive\n}\n")); err == nil || !strings.Contains(err.Error(), "restore: load:") {
		t.Errorf("Restore(corrupt) = %v, want a load error", err)
	}
	if got := e.file(t); !bytes.Equal(got, previous) {
		t.Errorf("a rejected Restore changed the file:\n%s", got)
	}
	e.wantServed(t, ops.Blue)
}

func TestPing(t *testing.T) {
	e := newEnv(t, ops.Blue)
	if err := e.proxy.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	down := caddy.New(closed, e.path, defaultPorts)
	if err := down.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "ping:") {
		t.Errorf("Ping of a closed port = %v, want an error", err)
	}
	if _, err := down.Switch(t.Context(), ops.Green); err == nil {
		t.Error("Switch with Caddy unreachable succeeded")
	}

	// The admin API refuses a Host it does not serve; the error says so.
	wrongHost := caddy.New(e.admin, e.path, defaultPorts, caddy.WithHTTPClient(&http.Client{
		Transport: hostRewriter{"example.com"}, Timeout: 5 * time.Second,
	}))
	if err := wrongHost.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "403 Forbidden: host not allowed: example.com") {
		t.Errorf("Ping with a foreign Host = %v, want Caddy's 403 message", err)
	}
}

// hostRewriter sends every request with another Host header.
type hostRewriter struct{ host string }

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

// TestSwitchUnderLoad sends requests through Caddy without pause while
// switching five times, and expects every one to succeed with a slot header
// matching the backend that answered.
func TestSwitchUnderLoad(t *testing.T) {
	e := newEnv(t, ops.Blue)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()

	type result struct {
		ok, failed, mismatched int
		served                 map[string]int
		firstErr               error
	}
	done := make(chan result)
	go func() {
		r := result{served: map[string]int{}}
		for ctx.Err() == nil {
			body, header, err := e.get("/")
			switch {
			case err != nil:
				r.failed++
				if r.firstErr == nil {
					r.firstErr = err
				}
			case body != header:
				r.mismatched++
			default:
				r.ok++
				r.served[body]++
			}
		}
		done <- r
	}()

	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	slot := ops.Blue
	for range 5 {
		<-tick.C
		slot = slot.Other()
		if _, err := e.proxy.Switch(t.Context(), slot); err != nil {
			t.Errorf("Switch to %s: %v", slot, err)
		}
	}
	r := <-done

	t.Logf("%d requests through 5 switches: %d failed, %d with a wrong header, served %v", r.ok+r.failed+r.mismatched, r.failed, r.mismatched, r.served)
	if r.failed != 0 || r.mismatched != 0 {
		t.Errorf("%d requests failed (first: %v), %d carried another slot's header", r.failed, r.firstErr, r.mismatched)
	}
	if r.served["blue"] == 0 || r.served["green"] == 0 {
		t.Errorf("served %v, want both slots", r.served)
	}
	if r.ok < 100 {
		t.Errorf("only %d requests succeeded in 2s; the test measured nothing", r.ok)
	}
	if slot, _, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Green {
		t.Errorf("LiveSlot after 5 switches from blue = %q, %v; want green", slot, err)
	}
}

// TestSwitchSaveFailureReturnsPrevious covers Caddy accepting the new
// configuration while the file cannot be saved: Switch must hand back the
// previous configuration, because traffic already moved.
func TestSwitchSaveFailureReturnsPrevious(t *testing.T) {
	e := newEnv(t, ops.Blue)
	// A file name so long that the temporary file beside it cannot be made.
	long := filepath.Join(t.TempDir(), strings.Repeat("c", 250))
	if err := os.WriteFile(long, e.file(t), 0o644); err != nil {
		t.Fatal(err)
	}
	p := caddy.New(e.admin, long, e.ports)
	previous, err := p.Switch(t.Context(), ops.Green)
	if err == nil || !strings.Contains(err.Error(), "saving it failed") {
		t.Fatalf("Switch with an unsavable file: err = %v", err)
	}
	if len(previous) == 0 {
		t.Fatal("Switch did not return the previous configuration although Caddy now serves green")
	}
	e.wantServed(t, ops.Green)
	if err := e.proxy.Restore(t.Context(), previous); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	e.wantServed(t, ops.Blue)
}
