package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// historyLimit is how many operations history shows.
const historyLimit = 10

// historyIcon marks an operation's state; an unfinished one gets an
// hourglass.
var historyIcon = map[ops.Step]string{
	ops.StepDone:           ":white_check_mark:",
	ops.StepFailed:         ":x:",
	ops.StepRolledBack:     ":leftwards_arrow_with_hook:",
	ops.StepNeedsAttention: ":rotating_light:",
}

// handleHistory lists the environment's latest operations.
func (b *Bot) handleHistory(ctx context.Context, _ Request, cmd Command, rw Responder) error {
	list, err := b.ops.History(ctx, cmd.Env, historyLimit)
	if err != nil {
		return failReply(ctx, rw, "read the history of "+cmd.Env,
			"Check the bot's database; `togather-chatops history "+cmd.Env+"` reads the same journal from the terminal.", err)
	}
	return rw.Reply(ctx, RenderHistory(cmd.Env, list))
}

// RenderHistory renders operations, newest first, one line each: state
// icon, when it was requested, what it did, its result and duration, and
// who asked.
func RenderHistory(env string, list []ops.Operation) Message {
	if len(list) == 0 {
		return Textf(fmt.Sprintf("No operation has run on %s yet.", env))
	}
	lines := make([]string, len(list))
	for i, op := range list {
		icon := historyIcon[op.State]
		if icon == "" {
			icon = ":hourglass_flowing_sand:"
		}
		what := string(op.Kind)
		switch {
		case op.Version != "":
			what += " `" + op.Version + "`"
		case op.Kind == ops.KindRollback && op.ToSlot != "":
			what += " to " + string(op.ToSlot)
		case op.Snapshot != "":
			what += " `" + op.Snapshot + "`"
		}
		lines[i] = fmt.Sprintf("%s %s · %s · *%s* · %s · %s", icon, fmtUTC(op.CreatedAt), what, op.State,
			fmtSpan(op.UpdatedAt.Sub(op.CreatedAt)), mention(op.Requester))
	}
	title := fmt.Sprintf("Last %d operation(s) on %s", len(list), env)
	return Message{Text: title + "\n" + strings.Join(lines, "\n"), Blocks: []Block{Section{Text: "*" + title + "*\n" + strings.Join(lines, "\n")}}}
}

// fmtUTC is a compact UTC time: 2026-11-27 10:04 UTC.
func fmtUTC(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// fmtSpan is a compact duration: 12s, 4m07s, 2h05m, 3d4h. A negative span
// (clock skew) shows as 0s.
func fmtSpan(d time.Duration) string {
	s := int64(max(d, 0).Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
