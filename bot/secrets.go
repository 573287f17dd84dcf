package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// recorded. Each reminder is claimed in the store, so with several replicas
// it is sent once; the reminders of one tick share one message.
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
		for _, name := range names {
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
