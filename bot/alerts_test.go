package bot_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
)

// memAlerts is an in-memory alert store.
type memAlerts struct {
	mu   sync.Mutex
	recs map[string]bot.AlertRecord
}

func (m *memAlerts) UpsertAlert(_ context.Context, a incidents.Alert, _ time.Time) (bot.AlertRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.recs[a.Key]
	next := prev
	next.Alert = a
	m.recs[a.Key] = next
	return prev, ok, nil
}

func (m *memAlerts) SetAlertMessage(_ context.Context, key, channel, ts string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[key]
	r.Channel, r.TS = channel, ts
	m.recs[key] = r
	return nil
}

func (m *memAlerts) AckAlert(_ context.Context, key, user string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[key]
	if r.AckedBy != "" {
		return false, nil
	}
	r.AckedBy = user
	m.recs[key] = r
	return true, nil
}

func (m *memAlerts) SilenceAlert(_ context.Context, key string, until, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[key]
	r.SilencedUntil = until
	m.recs[key] = r
	return nil
}

func (m *memAlerts) GetAlert(_ context.Context, key string) (bot.AlertRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[key], nil
}

func (m *memAlerts) AlertsOnMessage(_ context.Context, channel, ts string) ([]bot.AlertRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var list []bot.AlertRecord
	for _, r := range m.recs {
		if r.Channel == channel && r.TS == ts {
			list = append(list, r)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Alert.Key < list[j].Alert.Key })
	return list, nil
}

// countingPoster records every post and edit.
type countingPoster struct {
	mu    sync.Mutex
	n     int
	texts map[string]string // ts → latest text
}

func (p *countingPoster) Post(_ context.Context, channel, thread string, m bot.Message) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	ts := fmt.Sprintf("%d", p.n)
	p.texts[ts] = m.PlainText()
	return ts, nil
}

func (p *countingPoster) Update(_ context.Context, channel, ts string, m bot.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.texts[ts] = m.PlainText()
	return nil
}

func TestAlertStormIsCoalescedAndNothingIsLost(t *testing.T) {
	store := &memAlerts{recs: map[string]bot.AlertRecord{}}
	poster := &countingPoster{texts: map[string]string{}}
	b := bot.New(bot.Options{Alerts: store, Channels: bot.Channels{AlertsWarning: "CWARN", AlertsCritical: "CCRIT"}, Logger: zerolog.Nop(),
		Authorizer: bot.NewAuthorizer(nil, nil, time.Minute, nil)})
	b.SetPoster(poster)
	ctx := context.Background()
	start := time.Now()
	for i := range 300 {
		a := incidents.Alert{Key: fmt.Sprintf("am:group-%03d", i), Name: "HighLatency", Severity: incidents.Warning, Firing: true, Summary: fmt.Sprintf("alert %03d", i), StartsAt: start}
		if err := b.HandleAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Second) // three bursts a second apart
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		store.mu.Lock()
		posted := 0
		for _, r := range store.recs {
			if r.TS != "" {
				posted++
			}
		}
		store.mu.Unlock()
		if posted == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 300 alert groups reached a message", posted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	poster.mu.Lock()
	defer poster.mu.Unlock()
	if poster.n > 8 {
		t.Errorf("%d messages for 300 alerts in 3 bursts, want a handful", poster.n)
	}
	all := ""
	for _, text := range poster.texts {
		all += text + "\n"
	}
	for i := range 300 {
		if !strings.Contains(all, fmt.Sprintf("alert %03d", i)) {
			t.Fatalf("alert %03d is in no message", i)
		}
	}
}
