// Package pagerduty is the adapter to PagerDuty's Events API v2: it sends
// trigger, acknowledge and resolve events for one dedup key, so that a page
// wakes the on-call person and follows the alert or incident it belongs to.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
)

// DefaultEventsURL is the Events API v2 endpoint.
const DefaultEventsURL = "https://events.pagerduty.com/v2/enqueue"

// Action is an Events API v2 event_action.
type Action string

// The event actions the bot sends.
const (
	Trigger     Action = "trigger"
	Acknowledge Action = "acknowledge"
	Resolve     Action = "resolve"
)

// Severity is an Events API v2 payload severity.
type Severity string

// The severities the Events API v2 accepts.
const (
	Critical Severity = "critical"
	Error    Severity = "error"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// AlertSeverity maps an alert rule's severity to PagerDuty's.
func AlertSeverity(s incidents.Severity) Severity {
	switch s {
	case incidents.Critical:
		return Critical
	case incidents.Warning:
		return Warning
	}
	return Info
}

// IncidentSeverity maps an incident's severity to PagerDuty's.
func IncidentSeverity(s incidents.Sev) Severity {
	switch s {
	case incidents.SEV1:
		return Critical
	case incidents.SEV2:
		return Error
	case incidents.SEV3:
		return Warning
	}
	return Info
}

// Event is one event for the Events API v2. Payload is required for
// Trigger and ignored by PagerDuty otherwise.
type Event struct {
	RoutingKey string   `json:"routing_key"`
	Action     Action   `json:"event_action"`
	DedupKey   string   `json:"dedup_key"`
	Payload    *Payload `json:"payload,omitempty"`
	Links      []Link   `json:"links,omitempty"`
}

// Payload describes what is wrong, for a Trigger event.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      Severity       `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown with the PagerDuty alert, such as the Slack thread.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Timestamp formats t the way the Events API v2 expects (ISO 8601).
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// PermanentError is an event PagerDuty refused (HTTP 400 or another 4xx
// other than 429): sending it again will not help.
type PermanentError struct {
	Status int
	Body   string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("pagerduty refused the event (HTTP %d): %s", e.Status, e.Body)
}

// Client sends events to the Events API v2.
type Client struct {
	// URL is the enqueue endpoint; DefaultEventsURL if empty.
	URL string
	// HTTP is the HTTP client; a client with a 10 s timeout if nil.
	HTTP *http.Client
	// Attempts bounds tries of one event (default 4).
	Attempts int
	// Backoff is the first wait after a 429 or 5xx, doubling each retry
	// (default 500 ms); a 429's Retry-After wins when present.
	Backoff time.Duration
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// Send posts ev, retrying 429 and 5xx answers and transport errors with
// backoff within ctx. It returns the dedup key PagerDuty answered with, a
// *PermanentError when PagerDuty refused the event, or the last error.
func (c *Client) Send(ctx context.Context, ev Event) (string, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode pagerduty event: %w", err)
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	wait := c.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		key, retryAfter, err := c.post(ctx, body)
		var perm *PermanentError
		if err == nil || errors.As(err, &perm) || attempt == attempts {
			if err != nil && !errors.As(err, &perm) {
				err = fmt.Errorf("pagerduty %s %s: gave up after %d attempts: %w", ev.Action, ev.DedupKey, attempt, err)
			}
			return key, err
		}
		if retryAfter > 0 {
			wait = retryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("pagerduty %s %s: %w (gave up waiting: %w)", ev.Action, ev.DedupKey, err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// post makes one request; a non-nil error that is not a *PermanentError
// may be retried, after retryAfter when the server said so.
func (c *Client) post(ctx context.Context, body []byte) (key string, retryAfter time.Duration, err error) {
	url := c.URL
	if url == "" {
		url = DefaultEventsURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", 0, &PermanentError{Body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		var ans struct {
			DedupKey string `json:"dedup_key"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return "", 0, fmt.Errorf("pagerduty answered %d with a body that is not JSON: %w", resp.StatusCode, err)
		}
		return ans.DedupKey, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return "", time.Duration(secs) * time.Second, fmt.Errorf("pagerduty rate limited the event (HTTP 429)")
	case resp.StatusCode >= 500:
		return "", 0, fmt.Errorf("pagerduty server error (HTTP %d): %s", resp.StatusCode, b)
	default:
		return "", 0, &PermanentError{Status: resp.StatusCode, Body: string(b)}
	}
}
