package bot_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

type auditLog struct {
	mu      sync.Mutex
	entries []bot.AuditEntry
	err     error
}

func (a *auditLog) Audit(_ context.Context, e bot.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.entries = append(a.entries, e)
	return nil
}

type statusFunc func(ctx context.Context, env string) (ops.EnvStatus, error)

func (f statusFunc) Status(ctx context.Context, env string) (ops.EnvStatus, error) {
	return f(ctx, env)
}

type groups struct {
	calls   int
	members map[string][]string
	err     error
}

func (g *groups) GroupMembers(_ context.Context, id string) ([]string, error) {
	g.calls++
	if g.err != nil {
		return nil, g.err
	}
	return g.members[id], nil
}

type replies []bot.Message

func (r *replies) Reply(_ context.Context, m bot.Message) error {
	*r = append(*r, m)
	return nil
}

func (r replies) last(t *testing.T) string {
	t.Helper()
	if len(r) != 1 {
		t.Fatalf("got %d replies, want 1: %+v", len(r), r)
	}
	return r[0].PlainText()
}

var roles = []bot.Role{
	{Name: "deployers", Users: []string{"UALICE"}, Commands: []string{"*"}, Environments: []string{"*"}},
	{Name: "viewers", Groups: []string{"SVIEW"}, Commands: []string{"status", "history"}, Environments: []string{"staging"}},
}

func newBot(audit *auditLog, g *groups) *bot.Bot {
	st := statusFunc(func(_ context.Context, env string) (ops.EnvStatus, error) {
		return ops.EnvStatus{Env: env, Live: ops.Blue, LivePort: 8081, Slots: []ops.SlotStatus{
			{Slot: ops.Blue, Live: true, Spec: ops.SlotSpec{Container: "togather-server-blue"}, Container: ops.ContainerInfo{Exists: true, Running: true, State: "running", Image: "togather-server:v1"}, Health: ops.Health{Status: ops.Healthy, HTTPStatus: 200, Version: "v1"}},
			{Slot: ops.Green, Spec: ops.SlotSpec{Container: "togather-server-green"}, Health: ops.Health{Status: ops.Degraded, HTTPStatus: 200, Checks: []ops.HealthCheck{{Name: "job_queue", Status: "warn", Message: "river_job table missing"}}}},
		}}, nil
	})
	return bot.New(bot.Options{
		Environments: []string{"staging", "production"},
		Authorizer:   bot.NewAuthorizer(roles, g, time.Minute, nil),
		Auditor:      audit,
		Status:       st,
		Logger:       zerolog.Nop(),
	})
}

func TestHandleCommand(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		text      string
		want      []string
		wantAudit bot.Decision // "" when nothing is audited
	}{
		{"status for a deployer", "UALICE", "status staging", []string{"staging · live slot: blue", "*blue* (live)", "healthy", "*green*", "degraded", "job_queue: warn — river_job table missing"}, bot.Allowed},
		{"status through a group", "UBOB", "status staging", []string{"live slot: blue"}, bot.Allowed},
		{"group role does not reach production", "UBOB", "status production", []string{"not allowed to run status in production"}, bot.Denied},
		{"stranger refused", "UMALLORY", "status staging", []string{"not allowed to run status in staging"}, bot.Denied},
		{"unknown command suggests", "UALICE", "stauts staging", []string{`Did you mean "status"?`}, ""},
		{"unknown environment suggests", "UALICE", "status stagin", []string{`Did you mean "staging"?`}, ""},
		{"a command without its store says so", "UALICE", "maintenance list", []string{"not kept on this bot"}, bot.Allowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			audit := &auditLog{}
			var r replies
			b := newBot(audit, &groups{members: map[string][]string{"SVIEW": {"UBOB"}}})
			if err := b.HandleCommand(context.Background(), bot.Request{User: tc.user, Text: tc.text}, &r); err != nil {
				t.Fatal(err)
			}
			got := r.last(t)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply %q does not contain %q", got, w)
				}
			}
			switch {
			case tc.wantAudit == "" && len(audit.entries) != 0:
				t.Errorf("audited %+v, want nothing", audit.entries)
			case tc.wantAudit != "" && (len(audit.entries) != 1 || audit.entries[0].Decision != tc.wantAudit || audit.entries[0].Actor != tc.user):
				t.Errorf("audit = %+v, want one %s entry by %s", audit.entries, tc.wantAudit, tc.user)
			}
		})
	}
}

func TestHelpListsOnlyWhatTheCallerMayRun(t *testing.T) {
	b := newBot(&auditLog{}, &groups{members: map[string][]string{"SVIEW": {"UBOB"}}})
	var r replies
	if err := b.HandleCommand(context.Background(), bot.Request{User: "UBOB", Text: "help"}, &r); err != nil {
		t.Fatal(err)
	}
	got := r.last(t)
	if !strings.Contains(got, "status <env>") || !strings.Contains(got, "history <env>") {
		t.Errorf("viewer help lacks status or history: %q", got)
	}
	if strings.Contains(got, "deploy <env>") || strings.Contains(got, "rollback <env>") {
		t.Errorf("viewer help lists commands the viewer may not run: %q", got)
	}
	r = nil
	if err := b.HandleCommand(context.Background(), bot.Request{User: "UMALLORY", Text: "help"}, &r); err != nil {
		t.Fatal(err)
	}
	if got := r.last(t); !strings.Contains(got, "may not run any command") {
		t.Errorf("stranger help = %q", got)
	}
}

func TestAuditFailureRefusesChangesButNotReads(t *testing.T) {
	audit := &auditLog{err: errors.New("db down")}
	b := newBot(audit, &groups{})
	var r replies
	_ = b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "rollback staging --force"}, &r)
	if got := r.last(t); !strings.Contains(got, "audit log cannot be written") {
		t.Errorf("rollback with a broken audit log: %q", got)
	}
	r = nil
	_ = b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "status staging"}, &r)
	if got := r.last(t); !strings.Contains(got, "live slot: blue") {
		t.Errorf("status with a broken audit log: %q", got)
	}
}

func TestAuthorizerGroupCache(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	g := &groups{members: map[string][]string{"SVIEW": {"UBOB"}}}
	a := bot.NewAuthorizer(roles, g, time.Minute, func() time.Time { return now })
	ctx := context.Background()
	for range 3 {
		if ok, why := a.Decide(ctx, "UBOB", "status", "staging"); !ok {
			t.Fatalf("refused: %s", why)
		}
	}
	if g.calls != 1 {
		t.Errorf("group resolved %d times within the TTL, want 1", g.calls)
	}
	now = now.Add(2 * time.Minute)
	g.err = errors.New("slack down")
	if ok, why := a.Decide(ctx, "UBOB", "status", "staging"); !ok {
		t.Errorf("a failed refresh should fall back to the stale list for a read; refused: %s", why)
	}
	fresh := bot.NewAuthorizer(roles, g, time.Minute, nil)
	ok, why := fresh.Decide(ctx, "UBOB", "status", "staging")
	if ok || !strings.Contains(why, "could not be checked") {
		t.Errorf("no cache and resolver down: ok=%v why=%q", ok, why)
	}
}

// After the TTL a group list Slack cannot refresh decides reads only: a
// write or an approval is refused with why, and allowed again once Slack
// answers (issue 11 item 9).
func TestStaleGroupFailsClosedForChanges(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	g := &groups{members: map[string][]string{"SOPS": {"UCAROL"}}}
	roles := []bot.Role{{Name: "ops", Groups: []string{"SOPS"}, Commands: []string{"*"}, Environments: []string{"*"}}}
	a := bot.NewAuthorizer(roles, g, time.Minute, func() time.Time { return now })
	ctx := context.Background()
	for _, perm := range []string{"status", "deploy", "approve"} {
		if ok, why := a.Decide(ctx, "UCAROL", perm, "production"); !ok {
			t.Fatalf("%s with a fresh list refused: %s", perm, why)
		}
	}
	now = now.Add(5 * time.Minute)
	g.err = errors.New("ratelimited")
	if ok, why := a.Decide(ctx, "UCAROL", "status", "production"); !ok {
		t.Errorf("a read on the stale list refused: %s", why)
	}
	for _, perm := range []string{"deploy", "approve", "rollback", "snapshot.restore"} {
		ok, why := a.Decide(ctx, "UCAROL", perm, "production")
		if ok || !strings.Contains(why, "could not be refreshed") || !strings.Contains(why, "ratelimited") ||
			!strings.Contains(why, "cached 5m0s ago") || !strings.Contains(why, "read-only commands still work") {
			t.Errorf("%s on a stale list: ok=%v why=%q; want refused, saying why and what still works", perm, ok, why)
		}
	}
	g.err = nil
	if ok, why := a.Decide(ctx, "UCAROL", "deploy", "production"); !ok {
		t.Errorf("deploy once Slack answers again refused: %s", why)
	}
}

func TestPermissionPatterns(t *testing.T) {
	a := bot.NewAuthorizer([]bot.Role{{Users: []string{"U1"}, Commands: []string{"snapshot.*", "incident.list"}, Environments: []string{"staging"}}}, nil, time.Minute, nil)
	ctx := context.Background()
	cases := []struct {
		perm, env string
		want      bool
	}{
		{"snapshot.create", "staging", true},
		{"snapshot.restore", "staging", true},
		{"snapshot.create", "production", false},
		{"snapshotx", "staging", false},
		{"incident.list", "", true},
		{"incident.declare", "", false},
		{"deploy", "staging", false},
	}
	for _, c := range cases {
		if got, _ := a.Decide(ctx, "U1", c.perm, c.env); got != c.want {
			t.Errorf("Decide(%s, %q) = %v, want %v", c.perm, c.env, got, c.want)
		}
	}
}
