package app

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/incidents/pagerduty"
	"github.com/togather-foundation/togather-chatops/internal/pagerdutyfake"
	"github.com/togather-foundation/togather-chatops/internal/testclock"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

const testRoutingKey = "0123456789abcdef0123456789abcdef"

// pagingDB is a migrated database of its own.
func pagingDB(t *testing.T) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	if err := postgres.MigrateUp(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// newSender opens a store on dsn (closed with the test) and a sender to
// fake as target "pd", on clock.
func newSender(t *testing.T, dsn string, fake *pagerdutyfake.Fake, clock *testclock.Clock) *pageSender {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &pageSender{store: s, now: clock.Now, log: zerolog.Nop(), targets: map[string]pageTarget{
		"pd": {RoutingKey: testRoutingKey, Client: &pagerduty.Client{URL: fake.URL(), Attempts: 1, Backoff: time.Millisecond}},
	}}
}

func triggerEvent(key string) pagerduty.Event {
	return pagerduty.Event{Action: pagerduty.Trigger, DedupKey: key,
		Payload: &pagerduty.Payload{Summary: "error rate above 5%", Source: "togather prod", Severity: pagerduty.Critical}}
}

func drainOnce(t *testing.T, s *pageSender) int {
	t.Helper()
	n, _ := s.drain(t.Context()) // failures are recorded on the row and asserted through the fake
	return n
}

// A page enqueued while PagerDuty fails is retried after its backoff,
// across a restart of the bot, and sent exactly once.
func TestPageOutboxRetriesAcrossRestart(t *testing.T) {
	dsn := pagingDB(t)
	fake := pagerdutyfake.New()
	defer fake.Close()
	clock := testclock.New(time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC))
	s := newSender(t, dsn, fake, clock)
	if err := enqueuePage(t.Context(), s.store, "pd", triggerEvent("prod/error-rate"), clock.Now()); err != nil {
		t.Fatal(err)
	}
	fake.FailNext(1, http.StatusInternalServerError)
	if n := drainOnce(t, s); n != 0 || len(fake.Accepted()) != 0 {
		t.Fatalf("while failing: sent %d, fake accepted %d", n, len(fake.Accepted()))
	}
	if n := drainOnce(t, s); n != 0 {
		t.Fatalf("before the backoff ran out: sent %d, want 0", n)
	}

	// A new store and sender on the same database: the bot restarted.
	s2 := newSender(t, dsn, fake, clock)
	clock.Set(clock.Now().Add(retryDelay(1)))
	if n := drainOnce(t, s2); n != 1 {
		t.Fatalf("after the restart and the backoff: sent %d, want 1", n)
	}
	clock.Set(clock.Now().Add(time.Hour))
	if n := drainOnce(t, s2) + drainOnce(t, s); n != 0 {
		t.Fatalf("after it was sent: sent %d more", n)
	}
	acc := fake.Accepted()
	if len(acc) != 1 || acc[0].DedupKey != "prod/error-rate" || acc[0].RoutingKey != testRoutingKey || acc[0].Action != "trigger" {
		t.Fatalf("fake accepted %+v, want one trigger of prod/error-rate", acc)
	}
}

// Two senders draining at once send each page once, and the events of one
// dedup key in the order they were enqueued.
func TestPageOutboxConcurrentSenders(t *testing.T) {
	dsn := pagingDB(t)
	fake := pagerdutyfake.New()
	defer fake.Close()
	clock := testclock.New(time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC))
	a, b := newSender(t, dsn, fake, clock), newSender(t, dsn, fake, clock)
	const keys = 30
	for i := range keys {
		key := "k" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		if err := enqueuePage(t.Context(), a.store, "pd", triggerEvent(key), clock.Now()); err != nil {
			t.Fatal(err)
		}
		res := pagerduty.Event{Action: pagerduty.Resolve, DedupKey: key}
		if err := enqueuePage(t.Context(), a.store, "pd", res, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, s := range []*pageSender{a, b} {
		wg.Go(func() {
			for range 2 * keys {
				drainOnce(t, s)
			}
		})
	}
	wg.Wait()
	acc := fake.Accepted()
	if len(acc) != 2*keys {
		t.Fatalf("fake accepted %d events, want %d (each once)", len(acc), 2*keys)
	}
	seen := map[string][]string{}
	for _, ev := range acc {
		seen[ev.DedupKey] = append(seen[ev.DedupKey], ev.Action)
	}
	for key, actions := range seen {
		if len(actions) != 2 || actions[0] != "trigger" || actions[1] != "resolve" {
			t.Errorf("%s: fake got %v, want [trigger resolve]", key, actions)
		}
	}
}

// A page PagerDuty refuses (400) is not retried and does not hold back
// the next event of its dedup key.
func TestPageOutboxRefusedNotRetried(t *testing.T) {
	dsn := pagingDB(t)
	fake := pagerdutyfake.New()
	defer fake.Close()
	clock := testclock.New(time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC))
	s := newSender(t, dsn, fake, clock)
	bad := triggerEvent("prod/db-errors")
	bad.Payload.Severity = "sev1"
	for _, ev := range []pagerduty.Event{bad, {Action: pagerduty.Resolve, DedupKey: "prod/db-errors"}} {
		if err := enqueuePage(context.Background(), s.store, "pd", ev, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		drainOnce(t, s)
		clock.Set(clock.Now().Add(time.Hour))
	}
	if fake.Refused() != 1 {
		t.Errorf("fake refused %d events, want 1 (not retried)", fake.Refused())
	}
	if acc := fake.Accepted(); len(acc) != 1 || acc[0].Action != "resolve" {
		t.Errorf("fake accepted %+v, want the resolve", acc)
	}
}
