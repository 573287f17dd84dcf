package ops_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestParseHealth(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		body        string
		want        ops.HealthStatus
		wantFailing []string
		wantProblem string
	}{
		{"healthy", 200, `{"status":"healthy","version":"abc1234","slot":"blue","checks":{"database":{"status":"pass"}}}`, ops.Healthy, nil, ""},
		{"degraded keeps warn checks", 200, `{"status":"degraded","checks":{"jsonld_contexts":{"status":"warn","message":"missing"},"database":{"status":"pass"}}}`, ops.Degraded, []string{"jsonld_contexts"}, ""},
		{"unhealthy 503 lists failing checks", 503, `{"status":"unhealthy","checks":{"database":{"status":"fail","message":"connection refused"},"migrations":{"status":"fail"}}}`, ops.Unhealthy, []string{"database", "migrations"}, ""},
		{"shutting down", 503, `{"status":"shutting_down"}`, ops.ShuttingDown, nil, ""},
		{"garbage body", 502, `<html>Bad Gateway</html>`, ops.Invalid, nil, "not health JSON"},
		{"empty body", 200, ``, ops.Invalid, nil, "not health JSON"},
		{"no status field", 200, `{"version":"x"}`, ops.Invalid, nil, "without a status"},
		{"unknown status", 200, `{"status":"ok"}`, ops.Invalid, nil, `unknown status "ok"`},
		{"healthy with a 500 breaks the contract", 500, `{"status":"healthy"}`, ops.Invalid, nil, "the contract says 200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := ops.ParseHealth(tc.code, []byte(tc.body))
			if h.Status != tc.want {
				t.Fatalf("status = %q, want %q (problem %q)", h.Status, tc.want, h.Problem)
			}
			var failing []string
			for _, c := range h.Failing() {
				failing = append(failing, c.Name)
			}
			if strings.Join(failing, ",") != strings.Join(tc.wantFailing, ",") {
				t.Errorf("failing = %v, want %v", failing, tc.wantFailing)
			}
			if !strings.Contains(h.Problem, tc.wantProblem) {
				t.Errorf("problem = %q, want it to contain %q", h.Problem, tc.wantProblem)
			}
			if h.HTTPStatus != tc.code {
				t.Errorf("http status = %d, want %d", h.HTTPStatus, tc.code)
			}
		})
	}
}

func TestHTTPProberTimeoutAndRefused(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)

	p := ops.HTTPProber{Timeout: 100 * time.Millisecond}
	h := p.Probe(context.Background(), slow.URL+"/health")
	if h.Status != ops.Unreachable || !strings.Contains(h.Problem, "no answer within") {
		t.Errorf("slow server: got %q %q, want unreachable with a timeout message", h.Status, h.Problem)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h = p.Probe(context.Background(), "http://"+addr+"/health")
	if h.Status != ops.Unreachable || !strings.Contains(h.Problem, "connection refused") {
		t.Errorf("closed port: got %q %q, want unreachable, connection refused", h.Status, h.Problem)
	}
}

func TestHTTPProberReadsServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unhealthy","version":"v2","checks":{"database":{"status":"fail","message":"timeout"}}}`))
	}))
	defer srv.Close()
	h := ops.HTTPProber{}.Probe(context.Background(), srv.URL)
	if h.Status != ops.Unhealthy || h.Version != "v2" {
		t.Fatalf("got %+v", h)
	}
	if c, ok := h.Check("database"); !ok || c.Message != "timeout" {
		t.Errorf("database check = %+v, %v", c, ok)
	}
}
