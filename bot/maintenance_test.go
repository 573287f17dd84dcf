package bot_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/testclock"
	"github.com/togather-foundation/togather-chatops/ops"
)

// windows keeps maintenance windows in memory, with MoveWindow's
// compare-and-set and ClaimWindowEvent's once-ever claim.
type windows struct {
	bot.MaintenanceStore
	mu      sync.Mutex
	list    []ops.MaintenanceWindow
	claimed map[string]bool
}

func (s *windows) Windows(context.Context, time.Time) ([]ops.MaintenanceWindow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list), nil
}

func (s *windows) MoveWindow(_ context.Context, w ops.MaintenanceWindow, from []ops.MaintenanceState, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, stored := range s.list {
		if stored.ID == w.ID && slices.Contains(from, stored.State) {
			w.UpdatedAt = now
			s.list[i] = w
			return true, nil
		}
	}
	return false, nil
}

func (s *windows) ClaimWindowEvent(_ context.Context, id int64, event string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprint(id, event)
	if s.claimed[key] {
		return false, nil
	}
	s.claimed[key] = true
	return true, nil
}

func (s *windows) WindowAlerts(context.Context, int64, string) ([]bot.WindowAlert, error) {
	return nil, nil
}

// threadPoster records the texts posted, and accepts edits.
type threadPoster struct {
	mu    sync.Mutex
	posts []string
}

func (p *threadPoster) Post(_ context.Context, _, _ string, m bot.Message) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts = append(p.posts, m.PlainText())
	return "1.2", nil
}

func (p *threadPoster) Update(context.Context, string, string, bot.Message) error { return nil }

// TestMaintenanceEndPostedLate ends an active 4-minute window at the
// leader's tick: on time, the post gives the window's span; 70 s after its
// scheduled end (no replica ran at the end), it gives the scheduled end and
// says when and why it is posted late.
func TestMaintenanceEndPostedLate(t *testing.T) {
	start := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		mode     string
		late     time.Duration
		want     []string
		dontWant []string
	}{
		{name: "on time", late: 5 * time.Second, want: []string{"ended on schedule after 4m05s."}, dontWant: []string{"late"}},
		{name: "late", late: 70 * time.Second, want: []string{
			"ended on schedule at 14:04 UTC (4m00s); posted 1m10s late: no replica of the bot was running (or leading) at 14:04.",
		}},
		{name: "late with the maintenance page", mode: ops.Mode503, late: 70 * time.Second, want: []string{
			"posted 1m10s late: no replica of the bot was running (or leading) at 14:04, so the maintenance page stayed up until 14:05:10 UTC.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ops.MaintenanceWindow{ID: 7, Env: "staging", Owner: "UALICE", Mode: tt.mode, Start: start, End: start.Add(4 * time.Minute),
				State: ops.MaintActive, StartedAt: start, UpdatedAt: start, Channel: "CANN", TS: "1.1"}
			store := &windows{list: []ops.MaintenanceWindow{w}, claimed: map[string]bool{}}
			poster := &threadPoster{}
			clock := testclock.New(w.End.Add(tt.late))
			b := bot.New(bot.Options{Environments: []string{"staging"}, Auditor: &auditLog{}, Maintenance: store, Envs: instantPages{},
				MaintenanceRules: ops.MaintenanceRules{Location: time.UTC}, Now: clock.Now})
			b.SetPoster(poster)
			if err := b.MaintenanceTick(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(poster.posts) != 1 {
				t.Fatalf("posts: %q; want the end post", poster.posts)
			}
			for _, s := range tt.want {
				if !strings.Contains(poster.posts[0], s) {
					t.Errorf("the end post lacks %q:\n%s", s, poster.posts[0])
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(poster.posts[0], s) {
					t.Errorf("the end post has %q:\n%s", s, poster.posts[0])
				}
			}
		})
	}
}

// instantPages are environments whose proxy shows and takes down the
// maintenance page at once.
type instantPages struct{ bot.Environments }

func (instantPages) Maintenance(string) (bot.MaintenancePage, bool) { return instantPage{}, true }

type instantPage struct{}

func (instantPage) EnterMaintenance(context.Context, string) error { return nil }
func (instantPage) ExitMaintenance(context.Context) error          { return nil }
