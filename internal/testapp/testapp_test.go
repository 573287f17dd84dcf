package testapp_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/testapp"
)

// do serves one request and returns the status code and body.
func do(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	return doCtx(t, context.Background(), h, method, path, body)
}

func doCtx(t *testing.T, ctx context.Context, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func health(t *testing.T, h http.Handler) (int, testapp.Health) {
	t.Helper()
	code, body := do(t, h, http.MethodGet, "/health", "")
	var out testapp.Health
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("/health body %q is not JSON: %v", body, err)
	}
	return code, out
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    testapp.Mode
		wantErr bool
	}{
		{in: "", want: testapp.Mode{Name: testapp.ModeHealthy}},
		{in: "healthy", want: testapp.Mode{Name: testapp.ModeHealthy}},
		{in: "degraded", want: testapp.Mode{Name: testapp.ModeDegraded}},
		{in: "never-healthy", want: testapp.Mode{Name: testapp.ModeNeverHealthy}},
		{in: "unhealthy-after=30s", want: testapp.Mode{Name: testapp.ModeUnhealthyAfter, After: 30 * time.Second}},
		{in: "crash-after=1m", want: testapp.Mode{Name: testapp.ModeCrashAfter, After: time.Minute}},
		{in: "crash-after", wantErr: true},
		{in: "unhealthy-after=soon", wantErr: true},
		{in: "unhealthy-after=-1s", wantErr: true},
		{in: "healthy=5s", wantErr: true},
		{in: "sick", wantErr: true},
	}
	for _, tt := range tests {
		got, err := testapp.ParseMode(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseMode(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseMode(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if err != nil {
			continue
		}
		if again, err := testapp.ParseMode(got.String()); err != nil || again != got {
			t.Errorf("ParseMode(%q).String() = %q does not parse back (%+v, %v)", tt.in, got.String(), again, err)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("SLOT", "blue")
	t.Setenv("DEPLOYMENT_SLOT", "")
	t.Setenv("VERSION", "abc1234")
	t.Setenv("GIT_COMMIT", strings.Repeat("a", 40))
	t.Setenv("BUILD_DATE", "")
	t.Setenv("TESTAPP_MODE", "unhealthy-after=2s")
	got, err := testapp.OptionsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := testapp.Options{Slot: "blue", Version: "abc1234", GitCommit: strings.Repeat("a", 40),
		Mode: testapp.Mode{Name: testapp.ModeUnhealthyAfter, After: 2 * time.Second}}
	if got != want {
		t.Errorf("OptionsFromEnv() = %+v, want %+v", got, want)
	}

	t.Setenv("DEPLOYMENT_SLOT", "green")
	if got, _ := testapp.OptionsFromEnv(); got.Slot != "green" {
		t.Errorf("DEPLOYMENT_SLOT should win over SLOT, got slot %q", got.Slot)
	}
	t.Setenv("TESTAPP_MODE", "bogus")
	if _, err := testapp.OptionsFromEnv(); err == nil || !strings.Contains(err.Error(), "TESTAPP_MODE") {
		t.Errorf("bad mode: error = %v, want one naming TESTAPP_MODE", err)
	}
}

func TestHealthModes(t *testing.T) {
	tests := []struct {
		mode       string
		wantCode   int
		wantStatus string
		wantChecks map[string]string // checks that do not pass
	}{
		{mode: "healthy", wantCode: 200, wantStatus: "healthy", wantChecks: map[string]string{}},
		{mode: "crash-after=1h", wantCode: 200, wantStatus: "healthy", wantChecks: map[string]string{}},
		{mode: "unhealthy-after=1h", wantCode: 200, wantStatus: "healthy", wantChecks: map[string]string{}},
		{mode: "unhealthy-after=0s", wantCode: 503, wantStatus: "unhealthy", wantChecks: map[string]string{"database": "fail"}},
		{mode: "degraded", wantCode: 200, wantStatus: "degraded", wantChecks: map[string]string{"job_queue": "warn"}},
		{mode: "never-healthy", wantCode: 503, wantStatus: "unhealthy", wantChecks: map[string]string{"database": "fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			mode, err := testapp.ParseMode(tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			app := testapp.New(testapp.Options{Slot: "green", Version: "v1.2.3", GitCommit: "0123456789abcdef0123456789abcdef01234567", Mode: mode})
			code, h := health(t, app)
			if code != tt.wantCode || h.Status != tt.wantStatus {
				t.Fatalf("/health = %d %q, want %d %q", code, h.Status, tt.wantCode, tt.wantStatus)
			}
			if h.Version != "v1.2.3" || h.GitCommit != "0123456789abcdef0123456789abcdef01234567" || h.Slot != "green" || h.DocsURL != "/api/docs" {
				t.Errorf("identity fields = %+v", h)
			}
			if ts, err := time.Parse(time.RFC3339, h.Timestamp); err != nil || time.Since(ts) > time.Minute {
				t.Errorf("timestamp %q is not a recent RFC 3339 time (%v)", h.Timestamp, err)
			}
			names := make([]string, 0, len(h.Checks))
			notPassing := map[string]string{}
			for name, c := range h.Checks {
				names = append(names, name)
				if !slices.Contains([]string{"pass", "warn", "fail"}, c.Status) || c.Message == "" {
					t.Errorf("check %s = %+v", name, c)
				}
				if c.Status != "pass" {
					notPassing[name] = c.Status
				}
			}
			slices.Sort(names)
			if want := []string{"database", "http_endpoint", "job_queue", "jsonld_contexts", "migrations"}; !slices.Equal(names, want) {
				t.Errorf("checks = %v, want %v", names, want)
			}
			if !maps.Equal(notPassing, tt.wantChecks) {
				t.Errorf("non-passing checks = %v, want %v", notPassing, tt.wantChecks)
			}
			for _, k := range []string{"max_connections", "total_connections", "idle_connections", "acquired_connections"} {
				if _, ok := h.Checks["database"].Details[k]; !ok {
					t.Errorf("database details lack %s: %v", k, h.Checks["database"].Details)
				}
			}
			if tt.wantChecks["database"] == "fail" {
				if d := h.Checks["database"].Details; d["error"] != "connection refused" || d["remediation"] == nil {
					t.Errorf("failing database details = %v, want error and remediation", d)
				}
			}
		})
	}
}

func TestHealthJSONShape(t *testing.T) {
	app := testapp.New(testapp.Options{})
	_, body := do(t, app, http.MethodGet, "/health", "")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "version", "git_commit", "docs_url", "checks", "timestamp"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("/health lacks %q: %s", k, body)
		}
	}
	if _, ok := raw["slot"]; ok {
		t.Errorf("slot should be omitted when empty: %s", body)
	}
	if strings.Contains(body, "latency_ms") {
		t.Errorf("latency_ms should be omitted when 0: %s", body)
	}
	var defaults testapp.Health
	json.Unmarshal([]byte(body), &defaults)
	if defaults.Version != "dev" || defaults.GitCommit != "unknown" {
		t.Errorf("defaults = %q %q, want dev unknown", defaults.Version, defaults.GitCommit)
	}
}

func TestUnhealthyAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := testapp.New(testapp.Options{Mode: testapp.Mode{Name: testapp.ModeUnhealthyAfter, After: 30 * time.Second}})
		if code, h := health(t, app); code != 200 || h.Status != "healthy" {
			t.Fatalf("at start: %d %s, want 200 healthy", code, h.Status)
		}
		time.Sleep(29 * time.Second)
		if code, _ := health(t, app); code != 200 {
			t.Fatalf("after 29s: %d, want 200", code)
		}
		time.Sleep(time.Second)
		if code, h := health(t, app); code != 503 || h.Status != "unhealthy" {
			t.Fatalf("after 30s: %d %s, want 503 unhealthy", code, h.Status)
		}
	})
}

func TestControl(t *testing.T) {
	app := testapp.New(testapp.Options{Slot: "blue"})
	steps := []struct {
		name       string
		patch      string
		wantCode   int // of POST /_control
		wantHealth int
		wantStatus string
		check      func(t *testing.T, h testapp.Health)
	}{
		{name: "degrade", patch: `{"status":"degraded"}`, wantCode: 200, wantHealth: 200, wantStatus: "degraded"},
		{name: "fail a check too", patch: `{"failing_checks":{"migrations":"dirty migration 7"}}`, wantCode: 200, wantHealth: 503, wantStatus: "unhealthy",
			check: func(t *testing.T, h testapp.Health) {
				if c := h.Checks["migrations"]; c.Status != "fail" || c.Message != "dirty migration 7" {
					t.Errorf("migrations = %+v", c)
				}
				if h.Checks["job_queue"].Status != "warn" {
					t.Errorf("status override lost by a partial update: %+v", h.Checks["job_queue"])
				}
			}},
		{name: "clear checks", patch: `{"failing_checks":{}}`, wantCode: 200, wantHealth: 200, wantStatus: "degraded"},
		{name: "unknown check refused", patch: `{"failing_checks":{"disk":"full"}}`, wantCode: 400, wantHealth: 200, wantStatus: "degraded"},
		{name: "bad status refused", patch: `{"status":"sick"}`, wantCode: 400, wantHealth: 200, wantStatus: "degraded"},
		{name: "unknown field refused", patch: `{"stauts":"healthy"}`, wantCode: 400, wantHealth: 200, wantStatus: "degraded"},
		{name: "not JSON refused", patch: `status=healthy`, wantCode: 400, wantHealth: 200, wantStatus: "degraded"},
		{name: "back to mode", patch: `{"status":""}`, wantCode: 200, wantHealth: 200, wantStatus: "healthy"},
		{name: "force unhealthy", patch: `{"status":"unhealthy"}`, wantCode: 200, wantHealth: 503, wantStatus: "unhealthy"},
		{name: "heal", patch: `{"status":"healthy"}`, wantCode: 200, wantHealth: 200, wantStatus: "healthy"},
		{name: "pool pressure", patch: `{"db_pool":{"acquired":22,"max":25}}`, wantCode: 200, wantHealth: 200, wantStatus: "healthy",
			check: func(t *testing.T, h testapp.Health) {
				d := h.Checks["database"].Details
				// JSON numbers decode as float64.
				if d["acquired_connections"] != 22.0 || d["max_connections"] != 25.0 || d["idle_connections"] != 2.0 || d["total_connections"] != 24.0 {
					t.Errorf("database details = %v", d)
				}
			}},
		{name: "pool partial update", patch: `{"db_pool":{"acquired":25}}`, wantCode: 200, wantHealth: 200, wantStatus: "healthy",
			check: func(t *testing.T, h testapp.Health) {
				d := h.Checks["database"].Details
				if d["acquired_connections"] != 25.0 || d["max_connections"] != 25.0 || d["idle_connections"] != 0.0 {
					t.Errorf("database details = %v", d)
				}
			}},
		{name: "pool beyond max refused", patch: `{"db_pool":{"acquired":26}}`, wantCode: 400, wantHealth: 200, wantStatus: "healthy"},
		{name: "database refused", patch: `{"failing_checks":{"database":"connection refused"}}`, wantCode: 200, wantHealth: 503, wantStatus: "unhealthy",
			check: func(t *testing.T, h testapp.Health) {
				if d := h.Checks["database"].Details; d["error"] != "connection refused" || d["acquired_connections"] != 25.0 {
					t.Errorf("database details = %v", d)
				}
			}},
	}
	for _, s := range steps {
		code, body := do(t, app, http.MethodPost, "/_control", s.patch)
		if code != s.wantCode {
			t.Fatalf("%s: POST /_control %s = %d %s, want %d", s.name, s.patch, code, body, s.wantCode)
		}
		gotCode, h := health(t, app)
		if gotCode != s.wantHealth || h.Status != s.wantStatus {
			t.Fatalf("%s: /health = %d %s, want %d %s", s.name, gotCode, h.Status, s.wantHealth, s.wantStatus)
		}
		if s.check != nil {
			s.check(t, h)
		}
	}

	code, body := do(t, app, http.MethodGet, "/_control", "")
	var got testapp.Control
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /_control = %d %s (%v)", code, body, err)
	}
	want := testapp.Control{Status: "healthy", FailingChecks: map[string]string{"database": "connection refused"}, DBPool: testapp.DBPool{Acquired: 25, Max: 25}}
	if got.Status != want.Status || !maps.Equal(got.FailingChecks, want.FailingChecks) || got.DBPool != want.DBPool || got.Garbage || got.LatencyMS != 0 {
		t.Errorf("GET /_control = %+v, want %+v", got, want)
	}
}

func TestGarbage(t *testing.T) {
	app := testapp.New(testapp.Options{})
	if code, body := do(t, app, http.MethodPost, "/_control", `{"garbage":true}`); code != 200 {
		t.Fatalf("POST /_control = %d %s", code, body)
	}
	code, body := do(t, app, http.MethodGet, "/health", "")
	if code != 200 || json.Valid([]byte(body)) {
		t.Errorf("garbage /health = %d %q, want 200 with a body that is not JSON", code, body)
	}
	do(t, app, http.MethodPost, "/_control", `{"garbage":false}`)
	if code, h := health(t, app); code != 200 || h.Status != "healthy" {
		t.Errorf("after garbage off: %d %s", code, h.Status)
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app := testapp.New(testapp.Options{})
		do(t, app, http.MethodPost, "/_control", `{"latency_ms":1500}`)
		start := time.Now()
		_, h := health(t, app)
		if took := time.Since(start); took != 1500*time.Millisecond {
			t.Errorf("/health took %s, want 1.5s", took)
		}
		if got := h.Checks["database"].LatencyMS; got != 1500 {
			t.Errorf("database latency_ms = %d, want 1500", got)
		}
		if got := h.Checks["migrations"].LatencyMS; got != 0 {
			t.Errorf("migrations latency_ms = %d, want 0", got)
		}

		// A request abandoned while waiting is answered like the real server
		// answers a cancelled request.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		code, body := doCtx(t, ctx, app, http.MethodGet, "/health", "")
		if code != 503 || strings.TrimSpace(body) != `{"status":"shutting_down"}` {
			t.Errorf("cancelled /health = %d %s, want 503 shutting_down", code, body)
		}
	})
}

func TestShutdown(t *testing.T) {
	app := testapp.New(testapp.Options{})
	app.StartShutdown()
	tests := []struct {
		path, want string
	}{
		{"/health", `{"status":"shutting_down"}`},
		{"/healthz", `{"status":"shutting_down"}`},
		{"/readyz", `{"status":"not_ready"}`},
	}
	for _, tt := range tests {
		code, body := do(t, app, http.MethodGet, tt.path, "")
		if code != 503 || strings.TrimSpace(body) != tt.want {
			t.Errorf("%s while shutting down = %d %s, want 503 %s", tt.path, code, body, tt.want)
		}
	}
}

func TestOtherEndpoints(t *testing.T) {
	app := testapp.New(testapp.Options{Slot: "green", Version: "abc1234", GitCommit: "deadbeef", BuildDate: "2026-01-02T03:04:05Z"})
	never := testapp.New(testapp.Options{Mode: testapp.Mode{Name: testapp.ModeNeverHealthy}})
	degraded := testapp.New(testapp.Options{Mode: testapp.Mode{Name: testapp.ModeDegraded}})
	tests := []struct {
		name     string
		app      http.Handler
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz", app, "GET", "/healthz", 200, `{"status":"ok"}`},
		{"healthz never healthy", never, "GET", "/healthz", 200, `{"status":"ok"}`},
		{"readyz", app, "GET", "/readyz", 200, `{"status":"ready"}`},
		{"readyz degraded", degraded, "GET", "/readyz", 200, `{"status":"ready"}`},
		{"readyz never healthy", never, "GET", "/readyz", 503, `{"status":"not_ready"}`},
		{"version", app, "GET", "/version", 200,
			`{"build_date":"2026-01-02T03:04:05Z","git_commit":"deadbeef","go_version":"` + runtime.Version() + `","version":"abc1234"}`},
		{"root", app, "GET", "/", 200, "slot=green version=abc1234"},
		{"any path", app, "GET", "/api/v1/events?limit=5", 200, "slot=green version=abc1234"},
		{"any method", app, "POST", "/api/v1/events", 200, "slot=green version=abc1234"},
	}
	for _, tt := range tests {
		code, body := do(t, tt.app, tt.method, tt.path, "")
		if code != tt.wantCode || strings.TrimSpace(body) != tt.wantBody {
			t.Errorf("%s: %s %s = %d %q, want %d %q", tt.name, tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}
}
