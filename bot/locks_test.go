package bot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

// The fakes below embed the interface they stand in for: a method the
// admin handlers do not call panics through the nil embedded value.

// admLocks is an in-memory ops.Locker with the store's rules: an owner
// may re-acquire its own lock; another owner's live lock is a LockError.
type admLocks struct {
	ops.Locker
	mu   sync.Mutex
	held map[string]ops.Lock
}

func (l *admLocks) Acquire(_ context.Context, lk ops.Lock, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.live(lk.Env, now); ok && cur.Owner != lk.Owner {
		return &ops.LockError{Held: cur}
	}
	if l.held == nil {
		l.held = map[string]ops.Lock{}
	}
	l.held[lk.Env] = lk
	return nil
}

func (l *admLocks) Release(_ context.Context, env, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[env].Owner == owner {
		delete(l.held, env)
	}
	return nil
}

func (l *admLocks) ForceRelease(_ context.Context, env string) (ops.Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.held[env]
	if !ok {
		return ops.Lock{}, fmt.Errorf("force release lock on %s: %w", env, ops.ErrNotFound)
	}
	delete(l.held, env)
	return cur, nil
}

func (l *admLocks) Get(_ context.Context, env string, now time.Time) (ops.Lock, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.live(env, now)
	return cur, ok, nil
}

func (l *admLocks) List(_ context.Context, now time.Time) ([]ops.Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ops.Lock
	for _, env := range []string{"production", "staging"} {
		if cur, ok := l.live(env, now); ok {
			out = append(out, cur)
		}
	}
	return out, nil
}

func (l *admLocks) live(env string, now time.Time) (ops.Lock, bool) {
	cur, ok := l.held[env]
	if !ok || (!cur.ExpiresAt.IsZero() && !cur.ExpiresAt.After(now)) {
		return ops.Lock{}, false
	}
	return cur, true
}

// admPost is one message posted to a channel.
type admPost struct {
	channel, thread string
	m               bot.Message
}

type admPoster struct {
	bot.Poster
	mu    sync.Mutex
	posts []admPost
	err   error
}

func (p *admPoster) Post(_ context.Context, channel, threadTS string, m bot.Message) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return "", p.err
	}
	p.posts = append(p.posts, admPost{channel, threadTS, m})
	return fmt.Sprintf("ts-%d", len(p.posts)), nil
}

// admJournal answers History.
type admJournal struct {
	bot.Operations
	list     []ops.Operation
	err      error
	gotEnv   string
	gotLimit int
}

func (j *admJournal) History(_ context.Context, env string, limit int) ([]ops.Operation, error) {
	j.gotEnv, j.gotLimit = env, limit
	return j.list, j.err
}

// admEnvs gives each environment's snapshotter.
type admEnvs struct {
	bot.Environments
	snaps map[string]ops.Snapshotter
}

func (e admEnvs) Snapshots(env string) (ops.Snapshotter, bool) {
	s, ok := e.snaps[env]
	return s, ok
}

// adminRoles: UALICE may do anything, UBOB and UCAROL run the lock,
// history and snapshot commands but may not force an unlock.
var adminRoles = []bot.Role{
	{Name: "admins", Users: []string{"UALICE"}, Commands: []string{"*"}, Environments: []string{"*"}},
	{Name: "operators", Users: []string{"UBOB", "UCAROL"}, Commands: []string{"lock", "unlock", "locks", "history", "snapshot.*"}, Environments: []string{"*"}},
}

var admNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// admFixture is a bot wired to the admin fakes.
type admFixture struct {
	b      *bot.Bot
	locks  *admLocks
	poster *admPoster
	audit  *auditLog
	ops    *admJournal
	snaps  *admSnaps
	now    time.Time
	// failAudit is an action whose audit entry cannot be written.
	failAudit string
}

type auditFunc func(ctx context.Context, e bot.AuditEntry) error

func (f auditFunc) Audit(ctx context.Context, e bot.AuditEntry) error { return f(ctx, e) }

func newAdmin(t *testing.T) *admFixture {
	t.Helper()
	f := &admFixture{locks: &admLocks{}, poster: &admPoster{}, audit: &auditLog{}, ops: &admJournal{}, snaps: &admSnaps{}, now: admNow}
	f.b = bot.New(bot.Options{
		Environments: []string{"staging", "production"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor: auditFunc(func(ctx context.Context, e bot.AuditEntry) error {
			if e.Action == f.failAudit {
				return errors.New("db down")
			}
			return f.audit.Audit(ctx, e)
		}),
		Ops:      f.ops,
		Envs:     admEnvs{snaps: map[string]ops.Snapshotter{"staging": f.snaps}},
		Locks:    f.locks,
		Channels: bot.Channels{Deploys: "CDEPLOYS"},
		Logger:   zerolog.Nop(),
		Now:      func() time.Time { return f.now },
	})
	f.b.SetPoster(f.poster)
	return f
}

// run sends text as user and returns the replies.
func (f *admFixture) run(t *testing.T, user, text string) (replies, error) {
	t.Helper()
	var r replies
	err := f.b.HandleCommand(context.Background(), bot.Request{User: user, Text: text}, &r)
	return r, err
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s %q does not contain %q", what, got, w)
		}
	}
}

func TestLockThenLockAgain(t *testing.T) {
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "lock staging db maintenance until noon")
	if err != nil {
		t.Fatal(err)
	}
	got := r.last(t)
	wantAll(t, "lock reply", got, "staging locked by <@UBOB>: db maintenance until noon", "/togather unlock staging")
	if !r[0].InChannel {
		t.Error("lock reply is ephemeral; the channel should see it")
	}
	held := f.locks.held["staging"]
	if held.Owner != "UBOB" || held.Holder != "UBOB" || !held.Manual || held.Reason != "db maintenance until noon" || !held.AcquiredAt.Equal(admNow) {
		t.Errorf("lock taken = %+v", held)
	}

	f.now = admNow.Add(90 * time.Minute)
	r, err = f.run(t, "UCAROL", "lock staging load test")
	if err != nil {
		t.Fatal(err)
	}
	got = r.last(t)
	wantAll(t, "second lock reply", got, "*staging* is locked by <@UBOB>", "since 2026-11-27 10:00 UTC (1h30m ago)", "db maintenance until noon")
	if r[0].InChannel {
		t.Error("a refused lock is announced to the channel")
	}
	if f.locks.held["staging"].Owner != "UBOB" {
		t.Errorf("lock changed hands: %+v", f.locks.held["staging"])
	}
}

func TestUnlock(t *testing.T) {
	manual := ops.Lock{Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow.Add(-time.Hour)}
	lease := ops.Lock{Env: "staging", Owner: "dep_1", Holder: "UCAROL", Reason: "deploy v1.2.3", AcquiredAt: admNow.Add(-2 * time.Minute), ExpiresAt: admNow.Add(time.Minute)}
	tests := []struct {
		name      string
		held      *ops.Lock
		user      string
		want      []string
		inChannel bool
		released  bool
	}{
		{"holder releases", &manual, "UBOB", []string{"staging unlocked by <@UBOB>", "Deploys may run again"}, true, true},
		{"another user is refused", &manual, "UCAROL", []string{"locked by <@UBOB>", "db maintenance", "Only <@UBOB> can release it", "--force", "audited"}, false, false},
		{"an operation's lease is not released by hand", &lease, "UCAROL", []string{"operation `dep_1`", "released when that operation ends", "--force"}, false, false},
		{"nothing to unlock", nil, "UBOB", []string{"staging is not locked"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdmin(t)
			if tc.held != nil {
				f.locks.held = map[string]ops.Lock{"staging": *tc.held}
			}
			r, err := f.run(t, tc.user, "unlock staging")
			if err != nil {
				t.Fatal(err)
			}
			wantAll(t, "reply", r.last(t), tc.want...)
			if r[0].InChannel != tc.inChannel {
				t.Errorf("InChannel = %v, want %v", r[0].InChannel, tc.inChannel)
			}
			_, still := f.locks.held["staging"]
			if tc.held != nil && still == tc.released {
				t.Errorf("lock still held = %v, want released = %v", still, tc.released)
			}
			if len(f.poster.posts) != 0 {
				t.Errorf("an unforced unlock posted %+v", f.poster.posts)
			}
		})
	}
}

func TestForceUnlock(t *testing.T) {
	tests := []struct {
		name     string
		held     ops.Lock
		wantPost []string
	}{
		{"manual lock", ops.Lock{Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow.Add(-time.Hour)},
			[]string{"staging was force-unlocked* by <@UALICE> at 2026-11-27 10:00 UTC", "<@UBOB>: your manual lock", "since 2026-11-27 09:00 UTC", "“db maintenance”"}},
		{"operation lease", ops.Lock{Env: "staging", Owner: "dep_1", Holder: "UCAROL", Reason: "deploy v1.2.3", AcquiredAt: admNow.Add(-time.Minute), ExpiresAt: admNow.Add(time.Minute)},
			[]string{"by <@UALICE>", "<@UCAROL>: the lease of your operation `dep_1`", "“deploy v1.2.3”", "recovery will run"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdmin(t)
			f.locks.held = map[string]ops.Lock{"staging": tc.held}
			r, err := f.run(t, "UALICE", "unlock staging --force")
			if err != nil {
				t.Fatal(err)
			}
			wantAll(t, "reply", r.last(t), "announced in <#CDEPLOYS>")
			if _, still := f.locks.held["staging"]; still {
				t.Error("lock still held after a forced unlock")
			}
			if len(f.poster.posts) != 1 || f.poster.posts[0].channel != "CDEPLOYS" {
				t.Fatalf("posts = %+v, want one in CDEPLOYS", f.poster.posts)
			}
			wantAll(t, "announcement", f.poster.posts[0].m.PlainText(), tc.wantPost...)
			var forced []bot.AuditEntry
			for _, e := range f.audit.entries {
				if e.Action == "unlock.force" {
					forced = append(forced, e)
				}
			}
			if len(forced) != 1 || forced[0].Decision != bot.Allowed || forced[0].Actor != "UALICE" || forced[0].Environment != "staging" {
				t.Errorf("unlock.force audit = %+v, want one allowed entry by UALICE on staging", forced)
			}
		})
	}
}

func TestForceUnlockRefusedWithoutPermission(t *testing.T) {
	f := newAdmin(t)
	f.locks.held = map[string]ops.Lock{"staging": {Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow}}
	r, err := f.run(t, "UCAROL", "unlock staging --force")
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "reply", r.last(t), "not allowed to run unlock.force in staging")
	if _, still := f.locks.held["staging"]; !still {
		t.Error("lock released without unlock.force")
	}
	if len(f.poster.posts) != 0 {
		t.Errorf("refused forced unlock posted %+v", f.poster.posts)
	}
	last := f.audit.entries[len(f.audit.entries)-1]
	if last.Action != "unlock.force" || last.Decision != bot.Denied || last.Actor != "UCAROL" {
		t.Errorf("last audit entry = %+v, want unlock.force denied for UCAROL", last)
	}
}

func TestForceUnlockAnnouncedInPlaceWhenThePostFails(t *testing.T) {
	f := newAdmin(t)
	f.locks.held = map[string]ops.Lock{"staging": {Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow}}
	f.poster.err = errors.New("channel_not_found")
	r, err := f.run(t, "UALICE", "unlock staging --force")
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Errorf("error = %v, want the post failure", err)
	}
	wantAll(t, "reply", r.last(t), "force-unlocked", "<@UBOB>", "could not be posted in the deploys channel (channel_not_found)")
	if !r[0].InChannel {
		t.Error("fallback announcement is ephemeral")
	}
}

func TestForceUnlockNotAuditedIsNotDone(t *testing.T) {
	f := newAdmin(t)
	f.locks.held = map[string]ops.Lock{"staging": {Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow}}
	f.failAudit = "unlock.force"
	r, err := f.run(t, "UALICE", "unlock staging --force")
	if err == nil || !strings.Contains(err.Error(), "db down") {
		t.Errorf("error = %v, want the audit failure", err)
	}
	wantAll(t, "reply", r.last(t), "never done unaudited")
	if _, still := f.locks.held["staging"]; !still || len(f.poster.posts) != 0 {
		t.Errorf("lock held = %v, posts = %+v: a forced unlock happened unaudited", still, f.poster.posts)
	}
}

func TestLocksListing(t *testing.T) {
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "locks")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.last(t); got != ":unlock: No environment is locked." {
		t.Errorf("no locks: %q", got)
	}
	f.locks.held = map[string]ops.Lock{
		"staging":    {Env: "staging", Owner: "UBOB", Holder: "UBOB", Reason: "db maintenance", Manual: true, AcquiredAt: admNow.Add(-3 * time.Hour)},
		"production": {Env: "production", Owner: "dep_9", Holder: "cli:alice", Reason: "deploy v2.0.0", AcquiredAt: admNow.Add(-45 * time.Second), ExpiresAt: admNow.Add(30 * time.Second)},
	}
	r, err = f.run(t, "UBOB", "locks")
	if err != nil {
		t.Fatal(err)
	}
	got := r.last(t)
	wantAll(t, "locks", got,
		"2 environment(s) locked",
		"*production* is held by operation `dep_9` for cli:alice since 2026-11-27 09:59 UTC (45s ago): “deploy v2.0.0”; lease until 2026-11-27 10:00 UTC",
		"*staging* is locked by <@UBOB> since 2026-11-27 07:00 UTC (3h00m ago): “db maintenance”.")
	if strings.Contains(got, "<@cli:") {
		t.Errorf("terminal actor rendered as a mention: %q", got)
	}
}
