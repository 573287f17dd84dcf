package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Rotation is the last recorded rotation of one secret of one environment.
// Secrets are known by their variable NAME only, never by their value.
type Rotation struct {
	Env, Name, By string
	RotatedAt     time.Time
}

// SecretStore remembers when secrets were rotated.
type SecretStore interface {
	// RecordRotation records that by rotated secret name of env at at.
	RecordRotation(ctx context.Context, env, name, by string, at time.Time) error
	// Rotations returns the last recorded rotation of every secret.
	Rotations(ctx context.Context) ([]Rotation, error)
	// ClaimRotationReminder claims the reminder of secret name of env due
	// at due: it reports true to exactly one caller across replicas, once
	// due <= now, and only if no reminder was claimed for this due time or
	// a later one.
	ClaimRotationReminder(ctx context.Context, env, name string, due, now time.Time) (bool, error)
}

// EnvFiles reads which variables an environment's env file holds: their
// names, never their values.
type EnvFiles interface {
	EnvFileVars(ctx context.Context, env string) ([]string, error)
}

// envFileRefresh is how long what an env file holds is trusted before it is
// read again.
const envFileRefresh = time.Hour

// heldSecrets remembers which secrets each environment's env file holds,
// and which configuration problems were already reported.
type heldSecrets struct {
	files    EnvFiles
	defaults map[string]bool

	mu       sync.Mutex
	vars     map[string]map[string]bool // by environment
	readAt   map[string]time.Time
	reported map[string]bool // "env NAME"
}

// check sorts the policy's names for env: those to remind of, and the
// lines of configuration problems not reported yet (a name the user gave
// that the env file lacks). Without EnvFiles, or when the env file cannot
// be read, every name is reminded of: a reminder too many beats a missed
// one.
func (h *heldSecrets) check(ctx context.Context, env string, names []string, now time.Time) (remind, problems []string, err error) {
	if h.files == nil {
		return names, nil, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.vars == nil {
		h.vars, h.readAt, h.reported = map[string]map[string]bool{}, map[string]time.Time{}, map[string]bool{}
	}
	if at, ok := h.readAt[env]; !ok || now.Sub(at) >= envFileRefresh {
		list, err := h.files.EnvFileVars(ctx, env)
		if err != nil {
			return names, nil, fmt.Errorf("%s's env file (reminding of the whole policy): %w", env, err)
		}
		held := make(map[string]bool, len(list))
		for _, v := range list {
			held[v] = true
		}
		h.vars[env], h.readAt[env] = held, now
	}
	for _, name := range names {
		switch {
		case h.vars[env][name]:
			remind = append(remind, name)
		case !h.defaults[name] && !h.reported[env+" "+name]:
			h.reported[env+" "+name] = true
			problems = append(problems, fmt.Sprintf(":warning: secret_rotation names %s, which %s's env file does not hold: no reminder is sent for it there. Fix the bot's configuration or the env file.", name, env))
		}
	}
	return remind, problems, nil
}

// neverRotated is the due time of the reminder of a secret with no recorded
// rotation: the zero time, so it is due at first sight and, once claimed,
// never claimed again.
var neverRotated = time.Time{}

// handleSecrets runs `secrets rotated <env> <NAME>`, the only secrets
// subcommand: it records the rotation and says when the next reminder is.
func (b *Bot) handleSecrets(ctx context.Context, req Request, cmd Command, rw Responder) error {
	if b.secrets == nil {
		return rw.Reply(ctx, Textf("Secret rotations are not tracked on this bot."))
	}
	name, now := cmd.Args[0], b.now()
	if err := b.secrets.RecordRotation(ctx, cmd.Env, name, req.User, now); err != nil {
		return failReply(ctx, rw, fmt.Sprintf("record the rotation of %s on %s", name, cmd.Env), "Try again in a moment.", err)
	}
	next := "no rotation policy names it, so no reminder is scheduled"
	if period, ok := b.secretPolicy[name]; ok {
		next = "next reminder " + fmtDay(now.Add(period))
	}
	return rw.Reply(ctx, Message{InChannel: true, Text: fmt.Sprintf(":key: %s on %s marked rotated by %s on %s; %s.",
		name, cmd.Env, mention(req.User), fmtDay(now), next)})
}

// SecretsTick reminds, in the deploys channel, of every secret of the
// rotation policy that is due for rotation in an environment: its last
// recorded rotation is older than the policy's period, or none was ever
// recorded. Only the secrets an environment's env file holds are reminded
// of there (EnvFiles). Each reminder is claimed in the store, so with
// several replicas it is sent once; the reminders of one tick share one
// message.
func (b *Bot) SecretsTick(ctx context.Context) error {
	if b.secrets == nil || len(b.secretPolicy) == 0 {
		return nil
	}
	list, err := b.secrets.Rotations(ctx)
	if err != nil {
		return fmt.Errorf("secret reminders: %w", err)
	}
	type key struct{ env, name string }
	last := make(map[key]Rotation, len(list))
	for _, r := range list {
		last[key{r.Env, r.Name}] = r
	}
	names := make([]string, 0, len(b.secretPolicy))
	for name := range b.secretPolicy {
		names = append(names, name)
	}
	slices.Sort(names)
	now := b.now()
	var lines []string
	var errs []error
	for _, env := range b.envs {
		held, problems, err := b.held.check(ctx, env, names, now)
		if err != nil {
			errs = append(errs, err)
		}
		lines = append(lines, problems...)
		for _, name := range held {
			period := b.secretPolicy[name]
			r, recorded := last[key{env, name}]
			due := neverRotated
			if recorded {
				due = r.RotatedAt.Add(period)
			}
			if now.Before(due) {
				continue
			}
			claimed, err := b.secrets.ClaimRotationReminder(ctx, env, name, due, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if claimed {
				lines = append(lines, rotationReminder(env, name, period, r, recorded, now))
			}
		}
	}
	if len(lines) > 0 {
		if _, err := b.poster.Post(ctx, b.channels.Deploys, "", Textf(strings.Join(lines, "\n"))); err != nil {
			errs = append(errs, fmt.Errorf("post: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("secret reminders: %w", err)
	}
	return nil
}

// rotationReminder is one line of a reminder to rotate secret name of env.
func rotationReminder(env, name string, period time.Duration, r Rotation, recorded bool, now time.Time) string {
	state := fmt.Sprintf("was never recorded as rotated (policy %s)", fmtPeriod(period))
	if recorded {
		state = fmt.Sprintf("was last rotated on %s (%s ago; policy %s)",
			fmtDay(r.RotatedAt), days(int(now.Sub(r.RotatedAt)/(24*time.Hour))), fmtPeriod(period))
	}
	return fmt.Sprintf(":warning: %s on %s %s. Rotate it, then `/togather secrets rotated %s %s`.", name, env, state, env, name)
}

// fmtDay is a UTC date: 2026-11-27.
func fmtDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

// fmtPeriod is a rotation period: whole days as "90 days", else as fmtSpan.
func fmtPeriod(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return days(int(d / (24 * time.Hour)))
	}
	return fmtSpan(d)
}

// days is "1 day" or "n days".
func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
