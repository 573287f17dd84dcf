package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/incidents/pagerduty"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// pageLease is how long a claimed page is held by its sender before
// another sender may claim it again (its sender presumed dead).
const pageLease = time.Minute

// pagePoll is how often the sender looks for pages to send.
const pagePoll = 2 * time.Second

// pageBatch bounds the pages claimed at once.
const pageBatch = 20

// pageTarget is one configured paging target: where its events go and
// the routing key they carry (read from the environment, never stored).
type pageTarget struct {
	RoutingKey string
	Client     *pagerduty.Client
}

// pageSender drains the page outbox: it claims due pages, sends each to
// its target, and records the outcome, retrying failures with backoff.
type pageSender struct {
	store   *postgres.Store
	targets map[string]pageTarget
	now     func() time.Time
	log     zerolog.Logger
}

// retryDelay is the wait after the n-th failed attempt of a page: 5 s
// doubling to 5 min.
func retryDelay(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// run drains the outbox every every until ctx ends.
func (s *pageSender) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.drain(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("paging: drain the outbox")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain sends the pages due now, once each, and reports how many were
// accepted.
func (s *pageSender) drain(ctx context.Context) (sent int, err error) {
	pages, err := s.store.ClaimPages(ctx, s.now(), pageLease, pageBatch)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, p := range pages {
		ok, err := s.send(ctx, p)
		if ok {
			sent++
		}
		errs = append(errs, err)
	}
	return sent, errors.Join(errs...)
}

// send sends one claimed page and records the outcome; ok is true when
// the target accepted it.
func (s *pageSender) send(ctx context.Context, p postgres.Page) (ok bool, err error) {
	target, known := s.targets[p.Target]
	var ev pagerduty.Event
	if !known {
		err = &pagerduty.PermanentError{Body: fmt.Sprintf("paging target %q is not configured", p.Target)}
	} else if err = json.Unmarshal(p.Event, &ev); err != nil {
		err = &pagerduty.PermanentError{Body: fmt.Sprintf("stored event is not JSON: %v", err)}
	} else {
		ev.RoutingKey = target.RoutingKey
		_, err = target.Client.Send(ctx, ev)
	}
	now := s.now()
	var perm *pagerduty.PermanentError
	switch {
	case err == nil:
		return true, s.store.PageSent(ctx, p.ID, now)
	case errors.As(err, &perm):
		s.log.Error().Err(err).Str("target", p.Target).Str("dedup_key", p.DedupKey).Msg("paging: event refused for good; fix the config or the event")
		return false, s.store.PageAbandoned(ctx, p.ID, now, err.Error())
	default:
		s.log.Warn().Err(err).Str("target", p.Target).Str("dedup_key", p.DedupKey).Msg("paging: send failed, will retry")
		return false, s.store.PageFailed(ctx, p.ID, now.Add(retryDelay(p.Attempts+1)), err.Error())
	}
}

// enqueuePage adds ev for target to the outbox; the sender sends it.
func enqueuePage(ctx context.Context, store *postgres.Store, target string, ev pagerduty.Event, now time.Time) error {
	ev.RoutingKey = ""
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode page: %w", err)
	}
	return store.EnqueuePage(ctx, target, ev.DedupKey, string(ev.Action), b, now)
}

// maxDedupKey is the longest dedup_key the Events API v2 accepts.
const maxDedupKey = 255

// alertPager queues the pages of alert groups (bot.Pager) for every
// target that pages their severity; the sender sends them.
type alertPager struct {
	store   *postgres.Store
	targets map[string]config.PagingTarget
	now     func() time.Time
}

// newAlertPager is the pager of cfg's paging targets; nil (no paging
// beyond chat) when there is none.
func newAlertPager(cfg *config.Config, store *postgres.Store, now func() time.Time) bot.Pager {
	if len(cfg.Paging.Targets) == 0 || store == nil {
		return nil
	}
	return &alertPager{store: store, targets: cfg.Paging.Targets, now: now}
}

// PageAlert queues action for alert group a to each target paging its
// severity, with a link to its chat thread when it has one.
func (p *alertPager) PageAlert(ctx context.Context, action bot.PageAction, a incidents.Alert, channel, ts string) error {
	ev := pagerduty.Event{Action: pagerduty.Action(action), DedupKey: alertDedupKey(a.Key)}
	if action == bot.PageTrigger {
		ev.Payload = &pagerduty.Payload{
			Summary: cmp.Or(a.Summary, a.Name), Source: "togather " + cmp.Or(a.Env, a.Source),
			Severity: pagerduty.AlertSeverity(a.Severity), Timestamp: pagerduty.Timestamp(cmp.Or(a.StartsAt, p.now())),
			CustomDetails: map[string]any{"rule": a.Name, "env": a.Env, "source": a.Source, "alerts": a.Count, "labels": a.Labels},
		}
	}
	if channel != "" && ts != "" {
		ev.Links = []pagerduty.Link{{Href: "https://slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", ""), Text: "Slack thread"}}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.targets)) {
		if p.targets[name].Pages(string(a.Severity)) {
			errs = append(errs, enqueuePage(ctx, p.store, name, ev, p.now()))
		}
	}
	return errors.Join(errs...)
}

// alertDedupKey is the stable dedup key of an alert group: its key
// ("<env>/<rule>" for monitors), or a digest of a key too long for one.
func alertDedupKey(key string) string {
	k := "alert:" + key
	if len(k) > maxDedupKey {
		sum := sha256.Sum256([]byte(key))
		k = "alert:sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}

// pagingTargets are the configured targets the sender sends to, each with
// its routing key and client.
func pagingTargets(cfg *config.Config) map[string]pageTarget {
	targets := map[string]pageTarget{}
	for name, t := range cfg.Paging.Targets {
		targets[name] = pageTarget{RoutingKey: cfg.Secrets.PagingKeys[name], Client: &pagerduty.Client{URL: t.EventsURL}}
	}
	return targets
}
