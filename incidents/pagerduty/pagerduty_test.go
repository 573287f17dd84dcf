package pagerduty_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents/pagerduty"
	"github.com/togather-foundation/togather-chatops/internal/pagerdutyfake"
)

const key = "0123456789abcdef0123456789abcdef"

func trigger() pagerduty.Event {
	return pagerduty.Event{
		RoutingKey: key, Action: pagerduty.Trigger, DedupKey: "prod/error-rate",
		Payload: &pagerduty.Payload{Summary: "error rate above 5%", Source: "togather prod",
			Severity: pagerduty.Critical, Timestamp: pagerduty.Timestamp(time.Unix(0, 0)),
			CustomDetails: map[string]any{"rule": "error-rate"}},
		Links: []pagerduty.Link{{Href: "https://slack.example/archives/C1/p1", Text: "Slack thread"}},
	}
}

func client(f *pagerdutyfake.Fake) *pagerduty.Client {
	return &pagerduty.Client{URL: f.URL(), Backoff: time.Millisecond, Attempts: 4}
}

func TestSendAccepted(t *testing.T) {
	f := pagerdutyfake.New()
	defer f.Close()
	got, err := client(f).Send(context.Background(), trigger())
	if err != nil {
		t.Fatal(err)
	}
	if got != "prod/error-rate" {
		t.Errorf("dedup key %q, want prod/error-rate", got)
	}
	acc := f.Accepted()
	if len(acc) != 1 {
		t.Fatalf("fake accepted %d events, want 1", len(acc))
	}
	ev := acc[0]
	if ev.Action != "trigger" || ev.Payload.Severity != "critical" || ev.Payload.Source != "togather prod" ||
		len(ev.Links) != 1 || ev.Links[0].Href != "https://slack.example/archives/C1/p1" ||
		!strings.Contains(string(ev.Payload.CustomDetails), "error-rate") {
		t.Errorf("fake received %+v", ev)
	}
}

func TestSendInvalidNotRetried(t *testing.T) {
	f := pagerdutyfake.New()
	defer f.Close()
	ev := trigger()
	ev.RoutingKey = "short"
	_, err := client(f).Send(context.Background(), ev)
	var perm *pagerduty.PermanentError
	if !errors.As(err, &perm) || perm.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want a permanent 400", err)
	}
	if !strings.Contains(err.Error(), "routing_key") {
		t.Errorf("error %q does not say what was wrong", err)
	}
	if f.Refused() != 1 || len(f.Accepted()) != 0 {
		t.Errorf("fake refused %d and accepted %d, want 1 refused and no retry", f.Refused(), len(f.Accepted()))
	}
}

func TestSendRetriesThenSends(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError} {
		f := pagerdutyfake.New()
		f.FailNext(2, status)
		if _, err := client(f).Send(context.Background(), trigger()); err != nil {
			t.Fatalf("after two %d: %v", status, err)
		}
		if n := len(f.Accepted()); n != 1 {
			t.Errorf("after two %d: fake accepted %d events, want 1", status, n)
		}
		f.Close()
	}
}

func TestSendGivesUp(t *testing.T) {
	f := pagerdutyfake.New()
	defer f.Close()
	f.FailNext(10, http.StatusServiceUnavailable)
	_, err := client(f).Send(context.Background(), trigger())
	var perm *pagerduty.PermanentError
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("err = %v, want a retryable failure after 4 attempts", err)
	}
	if !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("error %q", err)
	}
}
