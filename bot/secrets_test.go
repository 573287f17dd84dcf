package bot_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
)

// secretKey is an environment and a secret NAME.
type secretKey struct{ env, name string }

// secretStore is an in-memory bot.SecretStore with the store's claim rules.
type secretStore struct {
	mu       sync.Mutex
	last     map[secretKey]bot.Rotation
	reminded map[secretKey]time.Time // due time of the last claimed reminder
	err      error
}

func newSecretStore() *secretStore {
	return &secretStore{last: map[secretKey]bot.Rotation{}, reminded: map[secretKey]time.Time{}}
}

func (s *secretStore) RecordRotation(_ context.Context, env, name, by string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	k := secretKey{env, name}
	s.last[k] = bot.Rotation{Env: env, Name: name, By: by, RotatedAt: at}
	delete(s.reminded, k)
	return nil
}

func (s *secretStore) Rotations(context.Context) ([]bot.Rotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var list []bot.Rotation
	for _, r := range s.last {
		list = append(list, r)
	}
	return list, nil
}

func (s *secretStore) ClaimRotationReminder(_ context.Context, env, name string, due, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := secretKey{env, name}
	r, recorded := s.last[k]
	prev, reminded := s.reminded[k]
	if due.After(now) || (recorded && !r.RotatedAt.Before(due)) || (reminded && !prev.Before(due)) {
		return false, nil
	}
	s.reminded[k] = due
	return true, nil
}

var secretPolicy = map[string]time.Duration{"JWT_SECRET": 90 * 24 * time.Hour, "DATABASE_PASSWORD": 180 * 24 * time.Hour}

// secretsBot is a bot on store, posting to poster, at *now.
func secretsBot(store bot.SecretStore, poster bot.Poster, audit bot.Auditor, now *time.Time) *bot.Bot {
	b := bot.New(bot.Options{
		Environments: []string{"staging", "production"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      audit,
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Secrets:      store,
		SecretPolicy: secretPolicy,
		Logger:       zerolog.Nop(),
		Now:          func() time.Time { return *now },
	})
	b.SetPoster(poster)
	return b
}

func TestSecretsRotated(t *testing.T) {
	storeErr := errors.New("db down")
	tests := []struct {
		name     string
		user     string
		text     string
		noStore  bool
		storeErr error
		reply    string
		inChan   bool
		wantErr  bool
		recorded []bot.Rotation
		decision bot.Decision
	}{
		{name: "recorded with its next reminder", user: "UALICE", text: "secrets rotated production JWT_SECRET",
			reply:    ":key: JWT_SECRET on production marked rotated by <@UALICE> on 2026-11-27; next reminder 2027-02-25.",
			inChan:   true,
			recorded: []bot.Rotation{{Env: "production", Name: "JWT_SECRET", By: "UALICE", RotatedAt: admNow}},
			decision: bot.Allowed},
		{name: "a secret outside the policy", user: "UALICE", text: "secrets rotated staging API_KEY_SECRET",
			reply:    ":key: API_KEY_SECRET on staging marked rotated by <@UALICE> on 2026-11-27; no rotation policy names it, so no reminder is scheduled.",
			inChan:   true,
			recorded: []bot.Rotation{{Env: "staging", Name: "API_KEY_SECRET", By: "UALICE", RotatedAt: admNow}},
			decision: bot.Allowed},
		{name: "store failure", user: "UALICE", text: "secrets rotated production JWT_SECRET", storeErr: storeErr,
			reply: ":x: Could not record the rotation of JWT_SECRET on production: db down. Try again in a moment.", wantErr: true,
			decision: bot.Allowed},
		{name: "not tracked", user: "UALICE", text: "secrets rotated production JWT_SECRET", noStore: true,
			reply: "Secret rotations are not tracked on this bot.", decision: bot.Allowed},
		{name: "not permitted", user: "UBOB", text: "secrets rotated production JWT_SECRET",
			reply: ":no_entry:", decision: bot.Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, audit, now := newSecretStore(), &auditLog{}, admNow
			store.err = tt.storeErr
			var ss bot.SecretStore = store
			if tt.noStore {
				ss = nil
			}
			b := secretsBot(ss, &admPoster{}, audit, &now)
			var r replies
			err := b.HandleCommand(context.Background(), bot.Request{User: tt.user, Text: tt.text}, &r)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := r.last(t); !strings.HasPrefix(got, tt.reply) {
				t.Errorf("reply = %q, want %q", got, tt.reply)
			}
			if r[0].InChannel != tt.inChan {
				t.Errorf("reply in channel = %v, want %v", r[0].InChannel, tt.inChan)
			}
			store.err = nil
			if got, _ := store.Rotations(context.Background()); !reflect.DeepEqual(got, tt.recorded) {
				t.Errorf("recorded %+v, want %+v", got, tt.recorded)
			}
			if len(audit.entries) != 1 || audit.entries[0].Action != "secrets.rotated" || audit.entries[0].Decision != tt.decision {
				t.Errorf("audit = %+v, want one secrets.rotated entry, %v", audit.entries, tt.decision)
			}
		})
	}
}

func TestSecretsTick(t *testing.T) {
	day := 24 * time.Hour
	r0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	store, poster, now := newSecretStore(), &admPoster{}, r0
	b := secretsBot(store, poster, &auditLog{}, &now)
	for _, name := range []string{"JWT_SECRET", "DATABASE_PASSWORD"} {
		if err := store.RecordRotation(context.Background(), "production", name, "UALICE", r0); err != nil {
			t.Fatal(err)
		}
	}
	remind := func(env, name, state string) string {
		return ":warning: " + name + " on " + env + " " + state + ". Rotate it, then `/togather secrets rotated " + env + " " + name + "`."
	}
	steps := []struct {
		name   string
		at     time.Time
		rotate string // a secret rotated on production before the tick
		want   []string
	}{
		{name: "never recorded: reminded at first sight", at: r0.Add(time.Minute), want: []string{
			remind("staging", "DATABASE_PASSWORD", "was never recorded as rotated (policy 180 days)"),
			remind("staging", "JWT_SECRET", "was never recorded as rotated (policy 90 days)"),
		}},
		{name: "never recorded: not twice", at: r0.Add(2 * time.Minute)},
		{name: "not due yet", at: r0.Add(90*day - time.Second)},
		{name: "due", at: r0.Add(90 * day), want: []string{
			remind("production", "JWT_SECRET", "was last rotated on 2026-01-05 (90 days ago; policy 90 days)"),
		}},
		{name: "due: not twice", at: r0.Add(95 * day)},
		{name: "rotated: next cycle not due yet", at: r0.Add(179 * day), rotate: "JWT_SECRET"},
		{name: "the other secret due", at: r0.Add(180 * day), want: []string{
			remind("production", "DATABASE_PASSWORD", "was last rotated on 2026-01-05 (180 days ago; policy 180 days)"),
		}},
		{name: "rotated secret due again", at: r0.Add(269 * day), want: []string{
			remind("production", "JWT_SECRET", "was last rotated on 2026-07-03 (90 days ago; policy 90 days)"),
		}},
	}
	for _, st := range steps {
		if st.rotate != "" {
			now = r0.Add(179 * day)
			var r replies
			if err := b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "secrets rotated production " + st.rotate}, &r); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		now = st.at
		poster.posts = nil
		if err := b.SecretsTick(context.Background()); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var got []string
		for _, p := range poster.posts {
			if p.channel != "CDEPLOYS" || p.thread != "" {
				t.Errorf("%s: posted to %s/%s, want the deploys channel", st.name, p.channel, p.thread)
			}
			got = append(got, p.m.PlainText())
		}
		var want []string
		if st.want != nil {
			want = []string{strings.Join(st.want, "\n")}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: posts\n got %q\nwant %q", st.name, got, want)
		}
	}
}

func TestSecretsTickReplicasRemindOnce(t *testing.T) {
	store, poster, now := newSecretStore(), &admPoster{}, admNow
	replicas := []*bot.Bot{secretsBot(store, poster, &auditLog{}, &now), secretsBot(store, poster, &auditLog{}, &now)}
	var wg sync.WaitGroup
	for _, b := range replicas {
		wg.Go(func() {
			if err := b.SecretsTick(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	lines := 0
	for _, p := range poster.posts {
		lines += len(strings.Split(p.m.Text, "\n"))
	}
	if want := 2 * len(secretPolicy); lines != want {
		t.Errorf("replicas reminded %d times, want %d (once per environment and secret)", lines, want)
	}
}

func TestSecretsTickErrors(t *testing.T) {
	now := admNow
	t.Run("store", func(t *testing.T) {
		store, poster := newSecretStore(), &admPoster{}
		store.err = errors.New("db down")
		if err := secretsBot(store, poster, &auditLog{}, &now).SecretsTick(context.Background()); err == nil || !strings.Contains(err.Error(), "db down") {
			t.Errorf("err = %v, want the store's", err)
		}
		if len(poster.posts) != 0 {
			t.Errorf("posted %d reminders without rotations", len(poster.posts))
		}
	})
	t.Run("post", func(t *testing.T) {
		poster := &admPoster{err: errors.New("slack down")}
		if err := secretsBot(newSecretStore(), poster, &auditLog{}, &now).SecretsTick(context.Background()); err == nil || !strings.Contains(err.Error(), "slack down") {
			t.Errorf("err = %v, want the poster's", err)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		poster := &admPoster{}
		if err := secretsBot(nil, poster, &auditLog{}, &now).SecretsTick(context.Background()); err != nil || len(poster.posts) != 0 {
			t.Errorf("without a store: err %v, %d posts; want nothing", err, len(poster.posts))
		}
	})
}

// envFiles answers which variables each environment's env file holds.
type envFiles struct {
	mu    sync.Mutex
	vars  map[string][]string
	err   error
	reads int
}

func (f *envFiles) EnvFileVars(_ context.Context, env string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.vars[env], f.err
}

func TestSecretsTickNamesOnlyWhatTheEnvFileHolds(t *testing.T) {
	store, poster, now := newSecretStore(), &admPoster{}, admNow
	files := &envFiles{vars: map[string][]string{
		"staging":    {"DATABASE_URL", "JWT_SECRET", "POSTGRES_PASSWORD"},
		"production": {"DATABASE_URL", "JWT_SECRET", "POSTGRES_PASSWORD", "ADMIN_PASSWORD", "API_KEY"},
	}}
	b := bot.New(bot.Options{
		Environments: []string{"staging", "production"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      &auditLog{},
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Secrets:      store,
		SecretPolicy: map[string]time.Duration{"JWT_SECRET": 90 * 24 * time.Hour, "POSTGRES_PASSWORD": 180 * 24 * time.Hour,
			"ADMIN_PASSWORD": 180 * 24 * time.Hour, "API_KEY": 30 * 24 * time.Hour},
		DefaultSecrets: map[string]bool{"JWT_SECRET": true, "POSTGRES_PASSWORD": true, "ADMIN_PASSWORD": true},
		EnvFiles:       files,
		Logger:         zerolog.Nop(),
		Now:            func() time.Time { return now },
	})
	b.SetPoster(poster)
	tick := func() string {
		t.Helper()
		poster.posts = nil
		if err := b.SecretsTick(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range poster.posts {
			got = append(got, p.m.PlainText())
		}
		return strings.Join(got, "\n")
	}

	got := tick()
	for _, want := range []string{
		"ADMIN_PASSWORD on production was never recorded", "API_KEY on production was never recorded",
		"JWT_SECRET on production", "POSTGRES_PASSWORD on production", "JWT_SECRET on staging", "POSTGRES_PASSWORD on staging",
		"secret_rotation names API_KEY, which staging's env file does not hold",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("first tick lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"ADMIN_PASSWORD on staging", "API_KEY on staging", "ADMIN_PASSWORD, which", "DATABASE_PASSWORD"} {
		if strings.Contains(got, not) {
			t.Errorf("first tick says %q:\n%s", not, got)
		}
	}
	now = now.Add(time.Minute)
	if got := tick(); got != "" {
		t.Errorf("second tick posted %q, want nothing (the configuration problem is reported once)", got)
	}
	if files.reads != 2 {
		t.Errorf("env files read %d times in two ticks, want once per environment", files.reads)
	}
}

func TestSecretsTickUnreadableEnvFile(t *testing.T) {
	store, poster, now := newSecretStore(), &admPoster{}, admNow
	files := &envFiles{err: errors.New("ssh: connection refused")}
	b := bot.New(bot.Options{
		Environments: []string{"staging"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      &auditLog{},
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Secrets:      store,
		SecretPolicy: secretPolicy,
		EnvFiles:     files,
		Logger:       zerolog.Nop(),
		Now:          func() time.Time { return now },
	})
	b.SetPoster(poster)
	// Unreadable: the whole policy is reminded of (a reminder too many
	// beats a missed one) and the error is returned to be logged.
	if err := b.SecretsTick(context.Background()); err == nil || !strings.Contains(err.Error(), "staging's env file (reminding of the whole policy): ssh: connection refused") {
		t.Errorf("err = %v, want the env file's", err)
	}
	if len(poster.posts) != 1 || !strings.Contains(poster.posts[0].m.Text, "JWT_SECRET on staging") || !strings.Contains(poster.posts[0].m.Text, "DATABASE_PASSWORD on staging") {
		t.Fatalf("without the env file: posts %+v, want every name of the policy", poster.posts)
	}
	// Readable again: nothing is reminded twice; the configured name the
	// env file lacks is reported as a configuration problem.
	files.err, files.vars = nil, map[string][]string{"staging": {"JWT_SECRET"}}
	now = now.Add(10 * time.Second)
	if err := b.SecretsTick(context.Background()); err != nil || len(poster.posts) != 2 ||
		!strings.Contains(poster.posts[1].m.Text, "secret_rotation names DATABASE_PASSWORD, which staging's env file does not hold") {
		t.Errorf("after the env file is readable: err %v, posts %+v", err, poster.posts)
	}
}
