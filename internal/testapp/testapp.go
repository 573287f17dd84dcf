// Package testapp is a stand-in for the Togather server. It serves the same
// /health, /healthz, /readyz and /version contract as the real server
// (reference/togather-deploy.md §5) from a tiny static binary, so deploy,
// rollback and monitoring code can be tested against real containers. Its
// health follows a start-up mode (TESTAPP_MODE) and can be changed at run time
// through POST /_control.
package testapp

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode names accepted in TESTAPP_MODE.
const (
	ModeHealthy        = "healthy"         // every check passes
	ModeDegraded       = "degraded"        // one check warns: 200 degraded
	ModeNeverHealthy   = "never-healthy"   // the database check fails: 503 unhealthy
	ModeUnhealthyAfter = "unhealthy-after" // healthy, then unhealthy once Mode.After has passed
	ModeCrashAfter     = "crash-after"     // healthy; the command exits 1 once Mode.After has passed
	ModeCrashAtStart   = "crash-at-start"  // the command logs why and exits 1 before it listens
)

// Mode is a parsed TESTAPP_MODE value such as "degraded" or "crash-after=5s".
type Mode struct {
	Name  string        // one of the Mode constants
	After time.Duration // for unhealthy-after and crash-after
}

// ParseMode parses a TESTAPP_MODE value; empty means healthy.
func ParseMode(s string) (Mode, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(s), "=")
	switch name {
	case "":
		return Mode{Name: ModeHealthy}, nil
	case ModeHealthy, ModeDegraded, ModeNeverHealthy, ModeCrashAtStart:
		if hasArg {
			return Mode{}, fmt.Errorf("mode %q takes no duration", name)
		}
		return Mode{Name: name}, nil
	case ModeUnhealthyAfter, ModeCrashAfter:
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 {
			return Mode{}, fmt.Errorf("mode %q needs a duration, e.g. %s=30s", name, name)
		}
		return Mode{Name: name, After: d}, nil
	}
	return Mode{}, fmt.Errorf("unknown mode %q (want %s, %s, %s, %s, %s=<duration> or %s=<duration>)",
		name, ModeHealthy, ModeDegraded, ModeNeverHealthy, ModeCrashAtStart, ModeUnhealthyAfter, ModeCrashAfter)
}

// String formats m as TESTAPP_MODE accepts it.
func (m Mode) String() string {
	if m.Name == ModeUnhealthyAfter || m.Name == ModeCrashAfter {
		return m.Name + "=" + m.After.String()
	}
	return m.Name
}

// Options describe the server being impersonated.
type Options struct {
	Slot      string // reported in /health and the catch-all page
	Version   string // default "dev"
	GitCommit string // default "unknown"
	BuildDate string // default "unknown"
	Mode      Mode
}

// OptionsFromEnv reads DEPLOYMENT_SLOT (else SLOT), VERSION, GIT_COMMIT,
// BUILD_DATE and TESTAPP_MODE, as the real server reads its slot.
func OptionsFromEnv() (Options, error) {
	mode, err := ParseMode(os.Getenv("TESTAPP_MODE"))
	if err != nil {
		return Options{}, fmt.Errorf("TESTAPP_MODE: %w", err)
	}
	return Options{
		Slot:      cmp.Or(os.Getenv("DEPLOYMENT_SLOT"), os.Getenv("SLOT")),
		Version:   os.Getenv("VERSION"),
		GitCommit: os.Getenv("GIT_COMMIT"),
		BuildDate: os.Getenv("BUILD_DATE"),
		Mode:      mode,
	}, nil
}

// Health is the body of GET /health. While shutting down only Status is set.
type Health struct {
	Status    string           `json:"status"`
	Version   string           `json:"version,omitempty"`
	GitCommit string           `json:"git_commit,omitempty"`
	Slot      string           `json:"slot,omitempty"`
	DocsURL   string           `json:"docs_url,omitempty"`
	Checks    map[string]Check `json:"checks,omitempty"`
	Timestamp string           `json:"timestamp,omitempty"`
}

// Check is one entry of Health.Checks.
type Check struct {
	Status    string         `json:"status"` // pass, warn or fail
	Message   string         `json:"message"`
	LatencyMS int64          `json:"latency_ms,omitempty"`
	Details   map[string]any `json:"details"`
}

// Control is the run-time override of the app's health, read and changed
// through /_control.
type Control struct {
	// Status forces healthy, degraded or unhealthy; empty follows the mode.
	Status string `json:"status"`
	// LatencyMS delays every /health answer and is reported as the
	// database check's latency.
	LatencyMS int `json:"latency_ms"`
	// FailingChecks makes the named checks fail with the given message.
	FailingChecks map[string]string `json:"failing_checks"`
	// Garbage makes /health answer 200 with a body that is not JSON.
	Garbage bool `json:"garbage"`
	// DBPool is the connection pool reported by the database check.
	DBPool DBPool `json:"db_pool"`
}

// DBPool is the simulated database connection pool.
type DBPool struct {
	Acquired int `json:"acquired"`
	Max      int `json:"max"`
}

// controlPatch is a partial update of Control: absent fields stay as they
// are; a present failing_checks object replaces the whole set.
type controlPatch struct {
	Status        *string           `json:"status"`
	LatencyMS     *int              `json:"latency_ms"`
	FailingChecks map[string]string `json:"failing_checks"`
	Garbage       *bool             `json:"garbage"`
	DBPool        *struct {
		Acquired *int `json:"acquired"`
		Max      *int `json:"max"`
	} `json:"db_pool"`
}

// Check names, as the real server reports them.
var checkNames = []string{"database", "migrations", "job_queue", "jsonld_contexts", "http_endpoint"}

// Check statuses and overall statuses of the /health contract.
const (
	pass = "pass"
	warn = "warn"
	fail = "fail"

	healthy      = "healthy"
	degraded     = "degraded"
	unhealthy    = "unhealthy"
	shuttingDown = "shutting_down"
)

// App is the stand-in server; it is an http.Handler.
type App struct {
	opts    Options
	start   time.Time
	mux     *http.ServeMux
	closing atomic.Bool

	mu  sync.Mutex
	ctl Control
}

// New returns an App impersonating the server described by opts. Its
// unhealthy-after clock starts now.
func New(opts Options) *App {
	opts.Version = cmp.Or(opts.Version, "dev")
	opts.GitCommit = cmp.Or(opts.GitCommit, "unknown")
	opts.BuildDate = cmp.Or(opts.BuildDate, "unknown")
	opts.Mode.Name = cmp.Or(opts.Mode.Name, ModeHealthy)
	a := &App{
		opts:  opts,
		start: time.Now(),
		mux:   http.NewServeMux(),
		ctl:   Control{FailingChecks: map[string]string{}, DBPool: DBPool{Acquired: 1, Max: 25}},
	}
	a.mux.HandleFunc("GET /health", a.handleHealth)
	a.mux.HandleFunc("GET /healthz", a.handleHealthz)
	a.mux.HandleFunc("GET /readyz", a.handleReadyz)
	a.mux.HandleFunc("GET /version", a.handleVersion)
	a.mux.HandleFunc("GET /_control", a.handleGetControl)
	a.mux.HandleFunc("POST /_control", a.handlePostControl)
	a.mux.HandleFunc("/", a.handlePage)
	return a
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// StartShutdown makes /health and /healthz answer 503 shutting_down and
// /readyz 503 not_ready from now on, as the real server does while draining.
func (a *App) StartShutdown() { a.closing.Store(true) }

func (a *App) control() Control {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.ctl
	c.FailingChecks = make(map[string]string, len(a.ctl.FailingChecks))
	maps.Copy(c.FailingChecks, a.ctl.FailingChecks)
	return c
}

// report computes the /health answer at now under the current control state,
// with its HTTP status.
func (a *App) report(now time.Time) (Health, int) {
	ctl := a.control()
	checks := map[string]Check{
		"database":        {Status: pass, Message: "database connection ok", Details: poolDetails(ctl.DBPool)},
		"migrations":      {Status: pass, Message: "migrations applied", Details: map[string]any{"version": 1, "dirty": false}},
		"job_queue":       {Status: pass, Message: "job queue operational", Details: map[string]any{"active_jobs": 0}},
		"jsonld_contexts": {Status: pass, Message: "JSON-LD contexts loaded", Details: map[string]any{"path": "contexts/sel/v0.1.jsonld"}},
		"http_endpoint":   {Status: pass, Message: "HTTP endpoint responding", Details: map[string]any{}},
	}
	db := checks["database"]
	db.LatencyMS = int64(ctl.LatencyMS)
	checks["database"] = db

	switch cmp.Or(ctl.Status, a.modeStatus(now)) {
	case degraded:
		checks["job_queue"] = Check{Status: warn, Message: "job queue client not configured", Details: map[string]any{}}
	case unhealthy:
		ctl.FailingChecks["database"] = cmp.Or(ctl.FailingChecks["database"], "connection refused")
	}
	for name, msg := range ctl.FailingChecks {
		c := checks[name]
		c.Status, c.Message = fail, msg
		if name == "database" {
			c.Message = "database connection failed"
			c.Details["error"] = msg
			c.Details["remediation"] = "check DATABASE_URL and that PostgreSQL is reachable"
		}
		checks[name] = c
	}

	h := Health{
		Status:    healthy,
		Version:   a.opts.Version,
		GitCommit: a.opts.GitCommit,
		Slot:      a.opts.Slot,
		DocsURL:   "/api/docs",
		Checks:    checks,
		Timestamp: now.UTC().Format(time.RFC3339),
	}
	for _, c := range checks {
		switch {
		case c.Status == fail:
			h.Status = unhealthy
		case c.Status == warn && h.Status == healthy:
			h.Status = degraded
		}
	}
	if h.Status == unhealthy {
		return h, http.StatusServiceUnavailable
	}
	return h, http.StatusOK
}

// modeStatus is the overall status the start-up mode asks for at now.
func (a *App) modeStatus(now time.Time) string {
	switch a.opts.Mode.Name {
	case ModeDegraded:
		return degraded
	case ModeNeverHealthy:
		return unhealthy
	case ModeUnhealthyAfter:
		if now.Sub(a.start) >= a.opts.Mode.After {
			return unhealthy
		}
	}
	return healthy
}

// poolDetails reports pool as pgxpool statistics: up to two idle
// connections beside the acquired ones.
func poolDetails(pool DBPool) map[string]any {
	idle := min(2, pool.Max-pool.Acquired)
	return map[string]any{
		"max_connections":      pool.Max,
		"total_connections":    pool.Acquired + idle,
		"idle_connections":     idle,
		"acquired_connections": pool.Acquired,
	}
}

func (a *App) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctl := a.control()
	if !sleep(r.Context(), time.Duration(ctl.LatencyMS)*time.Millisecond) || a.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: shuttingDown})
		return
	}
	if ctl.Garbage {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html><body><h1>It works!</h1></body></html>\n")
		return
	}
	h, code := a.report(time.Now())
	writeJSON(w, code, h)
}

func (a *App) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	if a.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": shuttingDown})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers ready when the database and migrations checks do not
// fail, as the real server does.
func (a *App) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	h, _ := a.report(time.Now())
	if a.closing.Load() || h.Checks["database"].Status == fail || h.Checks["migrations"].Status == fail {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *App) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"version":    a.opts.Version,
		"git_commit": a.opts.GitCommit,
		"build_date": a.opts.BuildDate,
		"go_version": runtime.Version(),
	})
}

func (a *App) handleGetControl(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.control())
}

func (a *App) handlePostControl(w http.ResponseWriter, r *http.Request) {
	var p controlPatch
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bad control JSON: %v", err)})
		return
	}
	if err := a.apply(p); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a.control())
}

// apply validates p and merges it into the control state; nothing changes
// when p is invalid.
func (a *App) apply(p controlPatch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := a.ctl
	if p.Status != nil {
		switch *p.Status {
		case "", healthy, degraded, unhealthy:
			next.Status = *p.Status
		default:
			return fmt.Errorf("status %q: want healthy, degraded, unhealthy or empty", *p.Status)
		}
	}
	if p.LatencyMS != nil {
		if *p.LatencyMS < 0 {
			return fmt.Errorf("latency_ms %d is negative", *p.LatencyMS)
		}
		next.LatencyMS = *p.LatencyMS
	}
	if p.FailingChecks != nil {
		for name := range p.FailingChecks {
			if !slices.Contains(checkNames, name) {
				return fmt.Errorf("failing_checks: unknown check %q (want one of %s)", name, strings.Join(checkNames, ", "))
			}
		}
		next.FailingChecks = maps.Clone(p.FailingChecks)
	}
	if p.Garbage != nil {
		next.Garbage = *p.Garbage
	}
	if p.DBPool != nil {
		if p.DBPool.Acquired != nil {
			next.DBPool.Acquired = *p.DBPool.Acquired
		}
		if p.DBPool.Max != nil {
			next.DBPool.Max = *p.DBPool.Max
		}
		if next.DBPool.Max <= 0 || next.DBPool.Acquired < 0 || next.DBPool.Acquired > next.DBPool.Max {
			return fmt.Errorf("db_pool: want 0 <= acquired <= max and max > 0, got acquired=%d max=%d",
				next.DBPool.Acquired, next.DBPool.Max)
		}
	}
	a.ctl = next
	return nil
}

// handlePage answers every other path with the slot and version, so load
// tests through the proxy can tell which slot served them.
func (a *App) handlePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "slot=%s version=%s", a.opts.Slot, a.opts.Version)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// sleep waits d unless ctx ends first; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
