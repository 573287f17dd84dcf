package caddy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/caddy"
)

// maintenancePage is a maintenance page with everything that needs quoting.
const maintenancePage = "<!doctype html>\n<title>Down for maintenance</title>\n" +
	"<p class=\"note\" data-x='1'>We'll be back {soon} at `{host}`.</p>\n<script>let t = `${1}`; if (a) { b() }</script>\n"

// trickyPages must each be served byte for byte.
var trickyPages = map[string]string{
	"plain":                      "Down for maintenance",
	"empty":                      "",
	"quotes":                     `<p class="a" title='b'>"x"</p>`,
	"backticks and quotes":       "`code` \"quoted\" a\\b \\\\\"",
	"placeholders":               "{host} {path} {http.request.uri} {args.0} {header.X} {vars.x} {{ }} {}",
	"environment variables":      "{$HOME} {$NOPE:default} {$} ${HOME} {$",
	"escaped braces":             `\{ \} \\{ \\} \`,
	"closing brace only":         "}",
	"opening brace only":         "{",
	"backtick and braces":        "`{$HOME}` \\{ `\\`",
	"backslash before quote":     `a \"b\" c\\`,
	"trailing backslash":         `ends with \`,
	"newlines":                   "line1\nline2\n\n\tindented\n",
	"carriage returns":           "line1\r\nline2\r\n\r",
	"lines like the slot block":  "# BLUE_GREEN_SLOT_END\n\treverse_proxy localhost:1\n# togather-maintenance: reverse_proxy localhost:2\n\theader_down X-Togather-Slot green\n}\n# BLUE_GREEN_SLOT_START\n",
	"status-like":                "503",
	"matcher-like":               "/path @named *",
	"star":                       "*",
	"heredoc-like":               "<<EOF\nx\nEOF",
	"unicode and odd spaces":     "Wartung – bitte später ✨\u00a0\u0085\u2003end",
	"comment-like":               "# not a comment\n  #nor this",
	"quote and backtick at ends": "\"`x`\"",
}

func TestWithMaintenance(t *testing.T) {
	const page = "<p class=\"x\">{host} `y`</p>\n# BLUE_GREEN_SLOT_END\n"
	in := site("\treverse_proxy localhost:8081 {", "", "\t\theader_down X-Togather-Slot \"blue\"", "\t}")
	want := "{\n\tadmin localhost:2019\n}\nexample.com {\n\t# BLUE_GREEN_SLOT_START\n" +
		"\t# togather-maintenance: reverse_proxy localhost:8081 {\n" +
		"# togather-maintenance:\n" +
		"\t\t# togather-maintenance: header_down X-Togather-Slot \"blue\"\n" +
		"\t# togather-maintenance: }\n" +
		"\t# Maintenance mode: the live block is kept above as comments, restored when maintenance ends.\n" +
		"\thandle {\n" +
		"\t\theader Retry-After 300\n" +
		"\t\theader Content-Type \"text/html; charset=utf-8\"\n" +
		"\t\theader Cache-Control no-store\n" +
		"\t\trespond * \"<p class=\\\"x\\\">\\{host\\} `y`</p>\n# BLUE_GREEN_SLOT_END\n\" 503\n" +
		"\t}\n" +
		"\t# BLUE_GREEN_SLOT_END\n}\n"
	got, err := caddy.WithMaintenance([]byte(in), page)
	if err != nil {
		t.Fatalf("WithMaintenance: %v", err)
	}
	if string(got) != want {
		t.Fatalf("WithMaintenance =\n%s\nwant\n%s", got, want)
	}
	b, err := caddy.Parse(got)
	want2 := caddy.Block{Slot: ops.Blue, Port: 8081, Ports: []int{8081}, Start: 5, End: 19, Maintenance: true}
	if err != nil || b.Slot != want2.Slot || b.Port != want2.Port || !slices.Equal(b.Ports, want2.Ports) ||
		b.Start != want2.Start || b.End != want2.End || !b.Maintenance {
		t.Errorf("Parse(WithMaintenance) = %+v, %v; want %+v", b, err, want2)
	}
	if b, err := caddy.Parse([]byte(in)); err != nil || b.Maintenance {
		t.Errorf("Parse of a normal file = %+v, %v; want Maintenance false", b, err)
	}
}

// TestMaintenanceRoundTrip checks, for files of every layout and every
// tricky page, that maintenance mode changes nothing outside the block,
// keeps what Parse says, refuses Rewrite, is idempotent and is undone byte
// for byte.
func TestMaintenanceRoundTrip(t *testing.T) {
	files := map[string]string{
		"production":                    production,
		"staging":                       staging,
		"crlf":                          strings.ReplaceAll(production, "\n", "\r\n"),
		"testenv":                       string(localenv.TogatherCaddyfile(localenv.CaddyfileOptions{Slot: ops.Green, UpstreamPort: 8082, AdminPort: 2019, HTTPPort: 8080})),
		"drifted":                       site("\treverse_proxy /events localhost:8081", "\treverse_proxy localhost:8082"),
		"spaces, comments, blank lines": site("    # live:", "", "    reverse_proxy localhost:8081 # {$PORT}", "  \t", "\t#   togather-maintenance is not a prefix"),
	}
	for name, file := range files {
		for pageName, page := range trickyPages {
			in := []byte(file)
			out, err := caddy.WithMaintenance(in, page)
			if err != nil {
				t.Errorf("%s, %s: WithMaintenance: %v", name, pageName, err)
				continue
			}
			checkMaintained(t, name+", "+pageName, in, out, page)
			other, err := caddy.WithMaintenance(out, "another page")
			if err != nil {
				t.Fatalf("%s, %s: WithMaintenance of a maintained file: %v", name, pageName, err)
			}
			checkMaintained(t, name+", new page over "+pageName, in, other, "another page")
		}
	}
}

// checkMaintained checks out, what WithMaintenance made of in with page.
func checkMaintained(t *testing.T, name string, in, out []byte, page string) {
	t.Helper()
	before, beforeErr := caddy.Parse(in)
	after, afterErr := caddy.Parse(out)
	if !after.Maintenance || !errors.Is(afterErr, errorKind(beforeErr)) || (beforeErr == nil) != (afterErr == nil) ||
		after.Slot != before.Slot || after.Port != before.Port || !slices.Equal(after.Ports, before.Ports) || after.Start != before.Start {
		t.Errorf("%s: Parse after = %+v, %v; before = %+v, %v", name, after, afterErr, before, beforeErr)
	}
	if after.End == 0 {
		return
	}
	inLines, outLines := bytes.SplitAfter(in, []byte("\n")), bytes.SplitAfter(out, []byte("\n"))
	if !slices.EqualFunc(inLines[:before.Start], outLines[:before.Start], bytes.Equal) ||
		!slices.EqualFunc(inLines[before.End-1:], outLines[after.End-1:], bytes.Equal) {
		t.Errorf("%s: lines outside the block changed:\n%s", name, out)
	}
	for i := before.Start; i < before.End-1; i++ {
		line := outLines[i]
		if !bytes.Contains(line, []byte("# togather-maintenance:")) || bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("reverse_proxy")) {
			t.Errorf("%s: line %d of the block not kept as a comment: %q", name, i+1, line)
		}
	}
	if _, err := caddy.Rewrite(out, ops.Green, 8082); !errors.Is(err, caddy.ErrMaintenance) || !strings.Contains(err.Error(), "end maintenance mode before switching") {
		t.Errorf("%s: Rewrite in maintenance = %v, want ErrMaintenance", name, err)
	}
	if back, err := caddy.WithoutMaintenance(out); err != nil || !bytes.Equal(back, in) {
		t.Errorf("%s: WithoutMaintenance = %v\n%q\nwant\n%q", name, err, back, in)
	}
	if again, err := caddy.WithoutMaintenance(in); err != nil || !bytes.Equal(again, in) {
		t.Errorf("%s: WithoutMaintenance of a normal file changed it: %v\n%s", name, err, again)
	}
	if again, err := caddy.WithMaintenance(out, page); err != nil || !bytes.Equal(again, out) {
		t.Errorf("%s: WithMaintenance twice changed the file (%v):\n%s", name, err, again)
	}
}

// errorKind returns the kind of a Parse error, or nil.
func errorKind(err error) error {
	for _, kind := range []error{caddy.ErrMarkers, caddy.ErrUpstream, caddy.ErrDrift} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	return nil
}

func TestWithMaintenanceErrors(t *testing.T) {
	tests := []struct {
		name, in, page string
		wantErr        error
		errText        string
	}{
		{"no markers", "example.com {\n\treverse_proxy localhost:8081\n}\n", "x", caddy.ErrMarkers, "no # BLUE_GREEN_SLOT_START"},
		{"no upstream", site("\trespond 503"), "x", caddy.ErrUpstream, "no reverse_proxy"},
		{"invalid UTF-8", production, "\xff", nil, "maintenance page is not valid UTF-8"},
		{"backtick and backslash before a quote", production, "`a` \\\"", nil, "odd run of backslashes before a double quote"},
		{"backtick and trailing backslash", production, "`a` \\\\\\", nil, "or at its end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caddy.WithMaintenance([]byte(tt.in), tt.page)
			if err == nil || !strings.Contains(err.Error(), tt.errText) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("WithMaintenance error = %v, want %v containing %q", err, tt.wantErr, tt.errText)
			}
			if got != nil {
				t.Errorf("WithMaintenance returned %q with its error", got)
			}
		})
	}
	if _, err := caddy.WithoutMaintenance([]byte("reverse_proxy localhost:8081\n")); !errors.Is(err, caddy.ErrMarkers) {
		t.Errorf("WithoutMaintenance without markers = %v, want ErrMarkers", err)
	}
	// A page whose quoted token never ends swallows the end marker.
	broken := site("\t# togather-maintenance: reverse_proxy localhost:8081", "\trespond `oops")
	if _, err := caddy.Parse([]byte(broken)); !errors.Is(err, caddy.ErrMarkers) {
		t.Errorf("Parse of an unterminated maintenance page = %v, want ErrMarkers", err)
	}
}

// FuzzMaintenance checks that any file Parse reads, and any page, round-trip
// through maintenance mode byte for byte without changing what Parse says.
func FuzzMaintenance(f *testing.F) {
	for _, s := range []string{production, staging, site("\treverse_proxy localhost:8081"), "\r\n#BLUE_GREEN_SLOT_START\r\nreverse_proxy localhost:1\r\n# BLUE_GREEN_SLOT_END"} {
		for _, p := range trickyPages {
			f.Add([]byte(s), p)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, page string) {
		out, err := caddy.WithMaintenance(in, page)
		if err != nil {
			return
		}
		if b, _ := caddy.Parse(in); b.Maintenance {
			// Already in maintenance: only the page may change.
			back, err := caddy.WithoutMaintenance(out)
			if orig, oerr := caddy.WithoutMaintenance(in); err != nil || oerr != nil || !bytes.Equal(back, orig) {
				t.Fatalf("a new page changed the kept block: %v, %v", err, oerr)
			}
			return
		}
		checkMaintained(t, "fuzz", in, out, page)
	})
}

// env methods for maintenance mode.

// fetch GETs path through Caddy.
func (e *env) fetch(t *testing.T, path string) (status int, body string, header http.Header) {
	t.Helper()
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// wantMaintenance fails unless requests through Caddy get page with 503.
func (e *env) wantMaintenance(t *testing.T, page string) {
	t.Helper()
	for _, path := range []string{"/", "/api/v1/admin/scraper/events", "/some/page?q=1"} {
		status, body, h := e.fetch(t, path)
		if status != http.StatusServiceUnavailable || body != page {
			t.Fatalf("GET %s = %d %q, want 503 %q", path, status, body, page)
		}
		if got, want := h.Get("Retry-After"), strconv.Itoa(int(caddy.MaintenanceRetryAfter/time.Second)); got != want {
			t.Errorf("GET %s: Retry-After %q, want %q", path, got, want)
		}
		if got := h.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, want text/html", path, got)
		}
		if got := h.Get("X-Togather-Slot"); got != "" {
			t.Errorf("GET %s: X-Togather-Slot %q during maintenance", path, got)
		}
	}
}

func TestMaintenance(t *testing.T) {
	e := newEnv(t, ops.Blue)
	before := e.file(t)
	if in, err := e.proxy.InMaintenance(t.Context()); err != nil || in {
		t.Fatalf("InMaintenance before = %v, %v; want false", in, err)
	}

	if err := e.proxy.EnterMaintenance(t.Context(), maintenancePage); err != nil {
		t.Fatalf("EnterMaintenance: %v", err)
	}
	e.wantMaintenance(t, maintenancePage)
	entered := e.file(t)
	if want, err := caddy.WithMaintenance(before, maintenancePage); err != nil || !bytes.Equal(entered, want) {
		t.Errorf("file after EnterMaintenance =\n%s\nwant\n%s", entered, want)
	}
	if in, err := e.proxy.InMaintenance(t.Context()); err != nil || !in {
		t.Errorf("InMaintenance = %v, %v; want true", in, err)
	}
	if slot, port, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Blue || port != e.ports[ops.Blue] {
		t.Errorf("LiveSlot in maintenance = %q, %d, %v; want blue, %d", slot, port, err, e.ports[ops.Blue])
	}

	// Entering again changes nothing: not even Caddy is asked.
	unreachable := caddy.New("http://127.0.0.1:1", e.path, e.ports)
	if err := unreachable.EnterMaintenance(t.Context(), maintenancePage); err != nil {
		t.Errorf("EnterMaintenance again: %v", err)
	}
	if err := e.proxy.EnterMaintenance(t.Context(), maintenancePage); err != nil || !bytes.Equal(e.file(t), entered) {
		t.Errorf("EnterMaintenance again = %v, file changed: %v", err, !bytes.Equal(e.file(t), entered))
	}

	// Switching would drop maintenance mode: refused, nothing changes.
	previous, err := e.proxy.Switch(t.Context(), ops.Green)
	if !errors.Is(err, caddy.ErrMaintenance) || !strings.Contains(err.Error(), "switch to green: slot block in maintenance mode") || previous != nil {
		t.Errorf("Switch in maintenance = %q, %v; want ErrMaintenance", previous, err)
	}
	if !bytes.Equal(e.file(t), entered) {
		t.Errorf("refused Switch changed the file:\n%s", e.file(t))
	}
	e.wantMaintenance(t, maintenancePage)

	// A new page replaces the old one.
	if err := e.proxy.EnterMaintenance(t.Context(), "<p>Still working on it</p>"); err != nil {
		t.Fatalf("EnterMaintenance with a new page: %v", err)
	}
	e.wantMaintenance(t, "<p>Still working on it</p>")

	// Another process, knowing only the file, ends maintenance.
	fresh := caddy.New(e.admin, e.path, e.ports)
	if err := fresh.ExitMaintenance(t.Context()); err != nil {
		t.Fatalf("ExitMaintenance: %v", err)
	}
	e.wantServed(t, ops.Blue)
	if got := e.file(t); !bytes.Equal(got, before) {
		t.Errorf("file after ExitMaintenance =\n%s\nwant as before EnterMaintenance:\n%s", got, before)
	}
	if in, err := fresh.InMaintenance(t.Context()); err != nil || in {
		t.Errorf("InMaintenance after exit = %v, %v; want false", in, err)
	}
	if err := unreachable.ExitMaintenance(t.Context()); err != nil {
		t.Errorf("ExitMaintenance again: %v", err)
	}
	if err := e.proxy.ExitMaintenance(t.Context()); err != nil || !bytes.Equal(e.file(t), before) {
		t.Errorf("ExitMaintenance again = %v, file changed: %v", err, !bytes.Equal(e.file(t), before))
	}

	// Switching works again, and maintenance keeps the slot switched to.
	if _, err := e.proxy.Switch(t.Context(), ops.Green); err != nil {
		t.Fatalf("Switch after maintenance: %v", err)
	}
	if err := e.proxy.EnterMaintenance(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if slot, port, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Green || port != e.ports[ops.Green] {
		t.Errorf("LiveSlot in maintenance after a switch = %q, %d, %v; want green", slot, port, err)
	}
	if err := e.proxy.ExitMaintenance(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.wantServed(t, ops.Green)
}

// TestMaintenancePages serves every tricky page through a real Caddy.
func TestMaintenancePages(t *testing.T) {
	e := newEnv(t, ops.Blue)
	before := e.file(t)
	for name, page := range trickyPages {
		if err := e.proxy.EnterMaintenance(t.Context(), page); err != nil {
			t.Errorf("%s: EnterMaintenance: %v", name, err)
			continue
		}
		if status, body, _ := e.fetch(t, "/"); status != http.StatusServiceUnavailable || body != page {
			t.Errorf("%s: GET / = %d\n%q\nwant 503\n%q", name, status, body, page)
		}
		if slot, _, err := e.proxy.LiveSlot(t.Context()); err != nil || slot != ops.Blue {
			t.Errorf("%s: LiveSlot = %q, %v; want blue", name, slot, err)
		}
	}
	if err := e.proxy.ExitMaintenance(t.Context()); err != nil {
		t.Fatalf("ExitMaintenance: %v", err)
	}
	e.wantServed(t, ops.Blue)
	if got := e.file(t); !bytes.Equal(got, before) {
		t.Errorf("file after ExitMaintenance =\n%s\nwant\n%s", got, before)
	}
}

// TestMaintenanceLoadRejected: when Caddy rejects the new configuration,
// the error carries its message and neither the file nor the traffic
// changes.
func TestMaintenanceLoadRejected(t *testing.T) {
	e := newEnv(t, ops.Blue)
	good := e.file(t)
	bad := bytes.Replace(good, []byte("\tbind 127.0.0.1\n"), []byte("\tbind 127.0.0.1\n\tno_such_directive\n"), 1)
	if err := os.WriteFile(e.path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.proxy.EnterMaintenance(t.Context(), "down")
	if err == nil || !strings.Contains(err.Error(), "enter maintenance: load: caddy admin answered 400") || !strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("EnterMaintenance with a corrupt Caddyfile = %v, want Caddy's rejection", err)
	}
	if got := e.file(t); !bytes.Equal(got, bad) {
		t.Errorf("EnterMaintenance rewrote the file although Caddy rejected it:\n%s", got)
	}
	e.wantServed(t, ops.Blue)

	if err := os.WriteFile(e.path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.proxy.EnterMaintenance(t.Context(), "down"); err != nil {
		t.Fatal(err)
	}
	entered := e.file(t)
	badEntered := bytes.Replace(entered, []byte("\tbind 127.0.0.1\n"), []byte("\tbind 127.0.0.1\n\tno_such_directive\n"), 1)
	if err := os.WriteFile(e.path, badEntered, 0o644); err != nil {
		t.Fatal(err)
	}
	err = e.proxy.ExitMaintenance(t.Context())
	if err == nil || !strings.Contains(err.Error(), "exit maintenance: load: caddy admin answered 400") || !strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("ExitMaintenance with a corrupt Caddyfile = %v, want Caddy's rejection", err)
	}
	if got := e.file(t); !bytes.Equal(got, badEntered) {
		t.Errorf("ExitMaintenance rewrote the file although Caddy rejected it:\n%s", got)
	}
	e.wantMaintenance(t, "down")
}

// TestMaintenanceSaveFailure: when Caddy accepted maintenance mode but the
// file cannot be saved, Caddy is put back on what the file says.
func TestMaintenanceSaveFailure(t *testing.T) {
	e := newEnv(t, ops.Blue)
	// A file name so long that the temporary file beside it cannot be made.
	long := filepath.Join(t.TempDir(), strings.Repeat("c", 250))
	if err := os.WriteFile(long, e.file(t), 0o644); err != nil {
		t.Fatal(err)
	}
	p := caddy.New(e.admin, long, e.ports)
	err := p.EnterMaintenance(t.Context(), "down")
	if err == nil || !strings.Contains(err.Error(), "saving it failed") || !strings.Contains(err.Error(), "caddy was put back on the file's configuration") {
		t.Fatalf("EnterMaintenance with an unsavable file = %v", err)
	}
	e.wantServed(t, ops.Blue)
	if in, err := p.InMaintenance(t.Context()); err != nil || in {
		t.Errorf("InMaintenance after a failed save = %v, %v; want false", in, err)
	}
}
