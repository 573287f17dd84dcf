// Package pagerdutyfake is an in-process contract fake of PagerDuty's
// Events API v2 enqueue endpoint, written from the public docs: it checks
// each event's shape (routing_key of 32 characters, event_action and
// severity enums, a payload with summary, source and severity for
// triggers, a dedup_key for acknowledge and resolve) and answers 202 or
// 400 as PagerDuty does. Tests can make it fail the next requests with 429
// or 500 and read back every event it accepted.
package pagerdutyfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"unicode/utf8"
)

// Event is an event the fake accepted, as decoded from the request.
type Event struct {
	RoutingKey string          `json:"routing_key"`
	Action     string          `json:"event_action"`
	DedupKey   string          `json:"dedup_key"`
	Payload    *Payload        `json:"payload"`
	Links      []Link          `json:"links"`
	Images     json.RawMessage `json:"images"`
	Client     string          `json:"client"`
	ClientURL  string          `json:"client_url"`
}

// Payload is a trigger's payload.
type Payload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp"`
	Component     string          `json:"component"`
	Group         string          `json:"group"`
	Class         string          `json:"class"`
	CustomDetails json.RawMessage `json:"custom_details"`
}

// Link is a link attached to an event.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Fake is a running fake Events API v2.
type Fake struct {
	srv *httptest.Server

	mu       sync.Mutex
	failNext []int
	accepted []Event
	refused  int
}

// New starts a fake; Close stops it.
func New() *Fake {
	f := &Fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the enqueue endpoint to configure as events_url.
func (f *Fake) URL() string { return f.srv.URL + "/v2/enqueue" }

// Close stops the server.
func (f *Fake) Close() { f.srv.Close() }

// FailNext makes the next n requests answer status (429 or 5xx) without
// accepting them.
func (f *Fake) FailNext(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failNext = append(f.failNext, status)
	}
}

// Accepted returns the events answered 202, in arrival order.
func (f *Fake) Accepted() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.accepted...)
}

// Refused counts the requests answered 400.
func (f *Fake) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	if len(f.failNext) > 0 {
		status := f.failNext[0]
		f.failNext = f.failNext[1:]
		f.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	f.mu.Unlock()

	var ev Event
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 512<<10))
	err := dec.Decode(&ev)
	if err == nil {
		err = validate(&ev)
	}
	if err != nil {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		reply(w, http.StatusBadRequest, map[string]any{
			"status": "invalid event", "message": "Event object is invalid", "errors": []string{err.Error()}})
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = newKey()
	}
	f.mu.Lock()
	f.accepted = append(f.accepted, ev)
	f.mu.Unlock()
	reply(w, http.StatusAccepted, map[string]any{
		"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func validate(ev *Event) error {
	switch {
	case len(ev.RoutingKey) != 32:
		return fmt.Errorf("'routing_key' must be 32 characters, got %d", len(ev.RoutingKey))
	case ev.Action != "trigger" && ev.Action != "acknowledge" && ev.Action != "resolve":
		return fmt.Errorf("'event_action' is invalid: %q", ev.Action)
	case len(ev.DedupKey) > 255:
		return fmt.Errorf("'dedup_key' is longer than 255 characters")
	case ev.Action != "trigger" && ev.DedupKey == "":
		return fmt.Errorf("'dedup_key' is required for %s", ev.Action)
	case ev.Action != "trigger":
		return nil
	case ev.Payload == nil:
		return fmt.Errorf("'payload' is missing")
	case ev.Payload.Summary == "" || utf8.RuneCountInString(ev.Payload.Summary) > 1024:
		return fmt.Errorf("'payload.summary' must be 1 to 1024 characters")
	case ev.Payload.Source == "":
		return fmt.Errorf("'payload.source' is missing")
	}
	switch ev.Payload.Severity {
	case "critical", "error", "warning", "info":
		return nil
	}
	return fmt.Errorf("'payload.severity' is invalid: %q", ev.Payload.Severity)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
