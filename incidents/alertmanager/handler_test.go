package alertmanager_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/incidents/alertmanager"
)

const token = "s3cret-token-value"

// recorder is a Sink and Logf that remembers what it got.
type recorder struct {
	mu      sync.Mutex
	alerts  []incidents.Alert
	logs    []string
	sinkErr error
}

func (r *recorder) sink(_ context.Context, a incidents.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
	return r.sinkErr
}

func (r *recorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func TestHandler(t *testing.T) {
	firing := readFixture(t, "firing.json")
	tests := []struct {
		name        string
		token       string // Options.Token; defaults to token
		maxBody     int64
		sinkErr     error
		method      string // defaults to POST
		auth        string // Authorization header; "-" for none, "" for "Bearer <token>"
		contentType string // "-" for none, "" for application/json
		body        []byte // defaults to firing
		wantCode    int
		wantError   string // substring of the JSON error; "" means {"status":"ok"}
		wantSink    bool
	}{
		{name: "firing", wantCode: 200, wantSink: true},
		{name: "resolved", body: readFixture(t, "resolved.json"), wantCode: 200, wantSink: true},
		{name: "grouped", body: readFixture(t, "grouped.json"), wantCode: 200, wantSink: true},
		{name: "json with charset", contentType: "application/json; charset=utf-8", wantCode: 200, wantSink: true},
		{name: "vendor json type", contentType: "application/vnd.alertmanager+json", wantCode: 200, wantSink: true},
		{name: "missing content type is tolerated", contentType: "-", wantCode: 200, wantSink: true},
		{name: "lower-case scheme", auth: "bearer " + token, wantCode: 200, wantSink: true},
		{name: "GET", method: http.MethodGet, wantCode: 405, wantError: "only POST"},
		{name: "PUT", method: http.MethodPut, wantCode: 405, wantError: "only POST"},
		{name: "no token configured", token: "-", wantCode: 503, wantError: "not configured"},
		{name: "missing token", auth: "-", wantCode: 401, wantError: "bearer token is required"},
		{name: "empty bearer", auth: "Bearer ", wantCode: 401, wantError: "bearer token is required"},
		{name: "basic auth", auth: "Basic " + token, wantCode: 401, wantError: "bearer token is required"},
		{name: "wrong token", auth: "Bearer nope", wantCode: 403, wantError: "wrong bearer token"},
		{name: "token prefix", auth: "Bearer " + token[:len(token)-1], wantCode: 403, wantError: "wrong bearer token"},
		{name: "text content type", contentType: "text/plain", wantCode: 415, wantError: "application/json"},
		{name: "garbage content type", contentType: "application/json;;=", wantCode: 415, wantError: "application/json"},
		{name: "oversized", maxBody: int64(len(firing)) - 1, wantCode: 413, wantError: fmt.Sprintf("larger than %d bytes", len(firing)-1)},
		{name: "exactly max body", maxBody: int64(len(firing)), wantCode: 200, wantSink: true},
		{name: "oversized default limit", body: bytes.Repeat([]byte(" "), alertmanager.DefaultMaxBody+1), wantCode: 413, wantError: "larger than 1048576 bytes"},
		{name: "not json", body: readFixture(t, "malformed/not-json.json"), wantCode: 400, wantError: "body is not JSON: "},
		{name: "wrong version", body: readFixture(t, "malformed/wrong-version.json"), wantCode: 400, wantError: `version must be \"4\"`},
		{name: "empty alerts", body: readFixture(t, "malformed/empty-alerts.json"), wantCode: 400, wantError: "alerts is empty"},
		{name: "bad time", body: readFixture(t, "malformed/bad-starts-at.json"), wantCode: 400, wantError: "alerts[0].startsAt"},
		{name: "sink fails", sinkErr: errors.New("db down: password=hunter2"), wantCode: 500, wantError: "retry later", wantSink: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{sinkErr: tt.sinkErr}
			opts := alertmanager.Options{Token: token, MaxBody: tt.maxBody, Sink: rec.sink, Logf: rec.logf}
			if tt.token == "-" {
				opts.Token = ""
			}
			h := alertmanager.NewHandler(opts)

			body := tt.body
			if body == nil {
				body = firing
			}
			req := httptest.NewRequest(cmp.Or(tt.method, http.MethodPost), "/alertmanager", bytes.NewReader(body))
			switch tt.auth {
			case "-":
			case "":
				req.Header.Set("Authorization", "Bearer "+token)
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.contentType != "-" {
				req.Header.Set("Content-Type", cmp.Or(tt.contentType, "application/json"))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)

			if w.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantCode, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var resp struct{ Status, Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("response is not JSON: %v: %s", err, w.Body)
			}
			if tt.wantError == "" {
				if resp != (struct{ Status, Error string }{Status: "ok"}) {
					t.Errorf("response = %s, want {\"status\":\"ok\"}", w.Body)
				}
			} else {
				if resp.Status != "error" || !strings.Contains(w.Body.String(), tt.wantError) {
					t.Errorf("response = %s, want an error containing %s", w.Body, tt.wantError)
				}
				if len(rec.logs) == 0 {
					t.Error("refusal was not logged")
				}
			}
			switch tt.wantCode {
			case 405:
				if allow := w.Header().Get("Allow"); allow != http.MethodPost {
					t.Errorf("Allow = %q, want POST", allow)
				}
			case 401:
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
				}
			}

			if !tt.wantSink {
				if len(rec.alerts) != 0 {
					t.Errorf("sink got %d alerts, want none", len(rec.alerts))
				}
			} else {
				want, err := alertmanager.Decode(body)
				if err != nil {
					t.Fatal(err)
				}
				if len(rec.alerts) != 1 {
					t.Fatalf("sink got %d alerts, want 1", len(rec.alerts))
				}
				assertAlert(t, rec.alerts[0], want)
			}
			for _, l := range rec.logs {
				if strings.Contains(l, token[:8]) {
					t.Errorf("log line reveals the token: %q", l)
				}
			}
			if tt.sinkErr != nil && !strings.Contains(strings.Join(rec.logs, "\n"), tt.sinkErr.Error()) {
				t.Errorf("sink error not logged: %q", rec.logs)
			}
			if tt.sinkErr != nil && strings.Contains(w.Body.String(), "hunter2") {
				t.Errorf("sink error leaked to the client: %s", w.Body)
			}
		})
	}
}

func TestHandlerPassesRequestContextToSink(t *testing.T) {
	type key struct{}
	var got any
	h := alertmanager.NewHandler(alertmanager.Options{Token: token, Sink: func(ctx context.Context, _ incidents.Alert) error {
		got = ctx.Value(key{})
		return nil
	}})
	req := httptest.NewRequest(http.MethodPost, "/alertmanager", bytes.NewReader(readFixture(t, "firing.json")))
	req = req.WithContext(context.WithValue(req.Context(), key{}, "marker"))
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "marker" {
		t.Errorf("sink context value = %v, want the request's", got)
	}
}

func TestNewHandlerWithoutSinkPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHandler without a Sink did not panic")
		}
	}()
	alertmanager.NewHandler(alertmanager.Options{Token: token})
}
