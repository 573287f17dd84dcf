package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// HealthStatus is the overall status of a slot as the bot understands it.
// The first three are the Togather server's own values; the others describe
// answers that are not a health report.
type HealthStatus string

// Health statuses.
const (
	Healthy      HealthStatus = "healthy"
	Degraded     HealthStatus = "degraded"
	Unhealthy    HealthStatus = "unhealthy"
	ShuttingDown HealthStatus = "shutting_down" // the server is draining
	Unreachable  HealthStatus = "unreachable"   // connection refused, timeout, …
	Invalid      HealthStatus = "invalid"       // an answer that is not the /health contract
)

// Serving reports whether the status means the slot answers requests.
func (s HealthStatus) Serving() bool { return s == Healthy || s == Degraded }

// HealthCheck is one named check of a /health report.
type HealthCheck struct {
	Name    string         `json:"name"`
	Status  string         `json:"status"` // pass, warn, fail
	Message string         `json:"message,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

// Health is the bot's reading of one /health answer.
type Health struct {
	Status     HealthStatus  `json:"status"`
	HTTPStatus int           `json:"http_status,omitempty"`
	Version    string        `json:"version,omitempty"`
	GitCommit  string        `json:"git_commit,omitempty"`
	Slot       string        `json:"slot,omitempty"`
	Checks     []HealthCheck `json:"checks,omitempty"`  // sorted by name
	Problem    string        `json:"problem,omitempty"` // why the status is Unreachable or Invalid
	Latency    time.Duration `json:"latency"`
}

// Failing returns the checks that did not pass.
func (h Health) Failing() []HealthCheck {
	var out []HealthCheck
	for _, c := range h.Checks {
		if c.Status != "pass" {
			out = append(out, c)
		}
	}
	return out
}

// Check returns the named check.
func (h Health) Check(name string) (HealthCheck, bool) {
	for _, c := range h.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return HealthCheck{}, false
}

// maxHealthBody bounds how much of a /health answer is read.
const maxHealthBody = 1 << 20

// HTTPProber reads /health over HTTP. The zero value uses
// http.DefaultClient with a 5 s budget per probe, as Togather's own tools do.
type HTTPProber struct {
	Client  *http.Client
	Timeout time.Duration
}

// Probe fetches url and interprets it under the /health contract: 200 with
// healthy or degraded, 503 with unhealthy or shutting_down. Every other answer
// is reported, never returned as an error.
func (p HTTPProber) Probe(ctx context.Context, url string) Health {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Health{Status: Invalid, Problem: fmt.Sprintf("bad health URL: %v", err)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Health{Status: Unreachable, Problem: describeTransportError(err, req.URL.Host, timeout), Latency: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	h := ParseHealth(resp.StatusCode, body)
	h.Latency = time.Since(start)
	if err != nil && h.Status != Invalid {
		h.Status, h.Problem = Unreachable, fmt.Sprintf("reading the answer: %v", err)
	}
	return h
}

// describeTransportError explains a failed probe of addr. A refusal by addr
// itself means nothing listens on the slot's port; any other failure (such
// as the host in between being unreachable) is reported as it is.
func describeTransportError(err error, addr string, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Addr != nil && op.Addr.String() == addr &&
		strings.Contains(op.Err.Error(), "connection refused") {
		return "connection refused: is the container running and its port published?"
	}
	return err.Error()
}

// ParseHealth interprets an HTTP status and body under the /health contract.
func ParseHealth(code int, body []byte) Health {
	h := Health{HTTPStatus: code}
	var raw struct {
		Status    string `json:"status"`
		Version   string `json:"version"`
		GitCommit string `json:"git_commit"`
		Slot      string `json:"slot"`
		Checks    map[string]struct {
			Status  string         `json:"status"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		h.Status = Invalid
		h.Problem = fmt.Sprintf("HTTP %d with a body that is not health JSON: %q", code, snippet(body))
		return h
	}
	h.Version, h.GitCommit, h.Slot = raw.Version, raw.GitCommit, raw.Slot
	for name, c := range raw.Checks {
		h.Checks = append(h.Checks, HealthCheck{Name: name, Status: c.Status, Message: c.Message, Details: c.Details})
	}
	sort.Slice(h.Checks, func(i, j int) bool { return h.Checks[i].Name < h.Checks[j].Name })
	switch st := HealthStatus(raw.Status); {
	case st == Healthy || st == Degraded:
		if code != http.StatusOK {
			h.Status, h.Problem = Invalid, fmt.Sprintf("status %q with HTTP %d (the contract says 200)", st, code)
			return h
		}
		h.Status = st
	case st == Unhealthy || st == ShuttingDown:
		h.Status = st
	case raw.Status == "":
		h.Status, h.Problem = Invalid, fmt.Sprintf("HTTP %d without a status field", code)
	default:
		h.Status, h.Problem = Invalid, fmt.Sprintf("HTTP %d with unknown status %q", code, raw.Status)
	}
	return h
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// reportedCommit returns the git commit that the server whose health URL
// is healthURL reports on /version beside it (…/health → …/version), or ""
// when it reports none: no answer, not the /version JSON, or "unknown".
func reportedCommit(ctx context.Context, client *http.Client, healthURL string) string {
	u, err := url.Parse(healthURL)
	if err != nil {
		return ""
	}
	u.Path, u.RawQuery = path.Join(path.Dir(u.Path), "version"), ""
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ""
	}
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		GitCommit string `json:"git_commit"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v) != nil || v.GitCommit == "unknown" {
		return ""
	}
	return v.GitCommit
}
