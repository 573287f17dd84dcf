package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// permForceUnlock is what releasing someone else's lock needs on top of
// unlock.
const permForceUnlock = "unlock.force"

// handleLock takes a manual lock on the environment for the requester.
func (b *Bot) handleLock(ctx context.Context, req Request, cmd Command, rw Responder) error {
	reason := strings.Join(cmd.Args, " ")
	now := b.now()
	err := b.locks.Acquire(ctx, ops.Lock{Env: cmd.Env, Owner: req.User, Holder: req.User, Reason: reason, Manual: true, AcquiredAt: now}, now)
	var held *ops.LockError
	switch {
	case errors.As(err, &held):
		return rw.Reply(ctx, Textf(fmt.Sprintf(":lock: %s\nAsk them to run `/togather unlock %s` when they are done.", lockSummary(held.Held, now), cmd.Env)))
	case err != nil:
		return failReply(ctx, rw, "lock "+cmd.Env, "Nothing was locked; check the bot's database and try again.", err)
	}
	return rw.Reply(ctx, Message{InChannel: true, Text: fmt.Sprintf(":lock: %s locked by %s: %s. Deploys are refused until `/togather unlock %s`.",
		cmd.Env, mention(req.User), escape(reason), cmd.Env)})
}

// handleUnlock releases the requester's manual lock, or with --force
// anyone's lock.
func (b *Bot) handleUnlock(ctx context.Context, req Request, cmd Command, rw Responder) error {
	if cmd.Bool("force") {
		return b.forceUnlock(ctx, req, cmd.Env, rw)
	}
	now := b.now()
	l, held, err := b.locks.Get(ctx, cmd.Env, now)
	switch {
	case err != nil:
		return failReply(ctx, rw, "read the lock of "+cmd.Env, "Nothing was released; check the bot's database and try again.", err)
	case !held:
		return rw.Reply(ctx, Textf(fmt.Sprintf(":unlock: %s is not locked.", cmd.Env)))
	case !l.Manual:
		return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: %s\nIt is released when that operation ends. If the operation is stuck, `/togather unlock %s --force` releases it "+
			"(needs the %s permission; audited and announced), and the operation's recovery then runs.", lockSummary(l, now), cmd.Env, permForceUnlock)))
	case l.Owner != req.User:
		return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: %s\nOnly %s can release it. `/togather unlock %s --force` releases it anyway "+
			"(needs the %s permission; audited and announced in the deploys channel).", lockSummary(l, now), mention(l.Holder), cmd.Env, permForceUnlock)))
	}
	if err := b.locks.Release(ctx, cmd.Env, req.User); err != nil {
		return failReply(ctx, rw, "unlock "+cmd.Env, "The lock is still held; check the bot's database and try again.", err)
	}
	return rw.Reply(ctx, Message{InChannel: true, Text: fmt.Sprintf(":unlock: %s unlocked by %s. Deploys may run again.", cmd.Env, mention(req.User))})
}

// forceUnlock releases env's lock whoever holds it, once the requester is
// authorised and the decision audited, and announces it in the deploys
// channel: a forced unlock is never silent.
func (b *Bot) forceUnlock(ctx context.Context, req Request, env string, rw Responder) error {
	allowed, why := b.authz.Decide(ctx, req.User, permForceUnlock, env)
	if err := b.record(ctx, req, permForceUnlock, env, allowed, why); err != nil && allowed {
		return failReply(ctx, rw, "audit the forced unlock of "+env, "A forced unlock is never done unaudited, so the lock is still held; check the bot's database.", err)
	}
	if !allowed {
		return rw.Reply(ctx, Textf(":no_entry: "+why))
	}
	l, err := b.locks.ForceRelease(ctx, env)
	switch {
	case errors.Is(err, ops.ErrNotFound):
		return rw.Reply(ctx, Textf(fmt.Sprintf(":unlock: %s is not locked; there was nothing to force.", env)))
	case err != nil:
		return failReply(ctx, rw, "force the unlock of "+env, "The lock is still held; check the bot's database and try again.", err)
	}
	m := RenderForcedUnlock(l, req.User, b.now())
	if b.poster == nil {
		err = errors.New("no chat poster configured")
	} else {
		_, err = b.poster.Post(ctx, b.channels.Deploys, "", m)
	}
	if err != nil {
		// The lock is gone: say so where the requester is, to everyone.
		m.InChannel = true
		m.Text += fmt.Sprintf("\n:warning: This could not be posted in the deploys channel (%v).", err)
		m.Blocks = nil
		_ = replyDetached(ctx, rw, m)
		return fmt.Errorf("announce forced unlock of %s: %w", env, err)
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf(":unlock: %s is unlocked; the forced unlock is announced in <#%s>.", env, b.channels.Deploys)))
}

// handleLocks lists every held lock.
func (b *Bot) handleLocks(ctx context.Context, _ Request, _ Command, rw Responder) error {
	now := b.now()
	locks, err := b.locks.List(ctx, now)
	if err != nil {
		return failReply(ctx, rw, "list the locks", "Check the bot's database and try again.", err)
	}
	return rw.Reply(ctx, RenderLocks(locks, now))
}

// RenderLocks renders the held locks, one line each with holder, reason,
// since when and, for an operation's lock, when its lease ends.
func RenderLocks(locks []ops.Lock, now time.Time) Message {
	if len(locks) == 0 {
		return Textf(":unlock: No environment is locked.")
	}
	lines := make([]string, len(locks))
	for i, l := range locks {
		lines[i] = ":lock: " + lockSummary(l, now)
	}
	title := fmt.Sprintf("%d environment(s) locked", len(locks))
	blocks := []Block{Header{Text: title}}
	for _, chunk := range pack(lines, 2500) {
		blocks = append(blocks, Section{Text: chunk})
	}
	return Message{Text: title + "\n" + strings.Join(lines, "\n"), Blocks: blocks}
}

// RenderForcedUnlock renders the announcement of a forced unlock: whose
// lock it was, who forced it and when, and for an operation's lease what
// happens to the operation.
func RenderForcedUnlock(l ops.Lock, by string, at time.Time) Message {
	text := fmt.Sprintf(":warning: *%s was force-unlocked* by %s at %s.\n", l.Env, mention(by), fmtUTC(at))
	held := fmt.Sprintf("held since %s for “%s”", fmtUTC(l.AcquiredAt), escape(l.Reason))
	if l.Manual {
		text += fmt.Sprintf("%s: your manual lock (%s) was released; deploys may run again.", mention(l.Holder), held)
	} else {
		text += fmt.Sprintf("%s: the lease of your operation `%s` (%s) was released. That operation stops before its next step, "+
			"and its recovery will run to reconcile %s with what is live; check its thread before deploying.", mention(l.Holder), l.Owner, held, l.Env)
	}
	return Message{Text: text, Blocks: []Block{Section{Text: text}}}
}

// lockSummary describes a held lock in one line: who holds it, for what,
// since when, and the lease end of an operation's lock.
func lockSummary(l ops.Lock, now time.Time) string {
	since := fmt.Sprintf("since %s (%s ago)", fmtUTC(l.AcquiredAt), fmtSpan(now.Sub(l.AcquiredAt)))
	if l.Manual {
		return fmt.Sprintf("*%s* is locked by %s %s: “%s”.", l.Env, mention(l.Holder), since, escape(l.Reason))
	}
	return fmt.Sprintf("*%s* is held by operation `%s` for %s %s: “%s”; lease until %s.",
		l.Env, l.Owner, mention(l.Holder), since, escape(l.Reason), fmtUTC(l.ExpiresAt))
}

// mention renders a chat user ID as a mention; a terminal actor ("cli:…")
// is shown as is.
func mention(id string) string {
	switch {
	case id == "":
		return "someone unknown"
	case strings.Contains(id, ":"):
		return id
	}
	return "<@" + id + ">"
}

// failReply tells the requester that what they asked could not be done,
// with the error and what to do next, and returns the error wrapped for the
// log.
func failReply(ctx context.Context, rw Responder, what, next string, err error) error {
	_ = replyDetached(ctx, rw, Textf(fmt.Sprintf(":x: Could not %s: %v. %s", what, err, next)))
	return fmt.Errorf("%s: %w", what, err)
}

// replyDetached replies even when ctx has run out, as it may have during a
// long call: the requester must still hear how it ended.
func replyDetached(ctx context.Context, rw Responder, m Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return rw.Reply(ctx, m)
}
