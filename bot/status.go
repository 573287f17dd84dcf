package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/togather-foundation/togather-chatops/ops"
)

func (b *Bot) handleStatus(ctx context.Context, _ Request, cmd Command, rw Responder) error {
	st, err := b.status.Status(ctx, cmd.Env)
	if err != nil {
		msg := fmt.Sprintf(":x: Could not read the status of %s: %v", cmd.Env, err)
		if errors.Is(err, ops.ErrUnknownEnvironment) {
			msg = fmt.Sprintf(":x: %s is not an environment this bot manages.", cmd.Env)
		}
		_ = rw.Reply(ctx, Textf(msg))
		return fmt.Errorf("status %s: %w", cmd.Env, err)
	}
	m := RenderStatus(st)
	m.InChannel = false
	if w, in := b.inMaintenance(ctx, cmd.Env); in {
		text := fmt.Sprintf(":construction: Maintenance %s in progress until %s: %s. Alerts are muted.",
			w.Name(), w.End.In(b.maintRules.Location).Format("15:04 MST"), escape(w.Description))
		if w.Mode == ops.Mode503 {
			text += " The site shows the maintenance page."
		}
		m.Text += "\n" + text
		m.Blocks = append(m.Blocks, Section{Text: text})
	}
	return rw.Reply(ctx, m)
}

var healthIcon = map[ops.HealthStatus]string{
	ops.Healthy:      ":large_green_circle:",
	ops.Degraded:     ":large_yellow_circle:",
	ops.Unhealthy:    ":red_circle:",
	ops.ShuttingDown: ":double_vertical_bar:",
	ops.Unreachable:  ":black_circle:",
	ops.Invalid:      ":grey_question:",
}

// RenderStatus renders an environment's status: the live slot, each slot's
// container and health with failing checks, and any drift with what to do.
func RenderStatus(st ops.EnvStatus) Message {
	live := string(st.Live)
	if live == "" {
		live = "unknown"
	}
	title := fmt.Sprintf("%s · live slot: %s", st.Env, live)
	blocks := []Block{Header{Text: title}}
	summary := []string{title}
	for _, ss := range st.Slots {
		text := renderSlot(ss)
		blocks = append(blocks, Section{Text: text})
		summary = append(summary, text)
	}
	if len(st.Drift) > 0 {
		text := ":warning: *Needs attention*\n• " + strings.Join(st.Drift, "\n• ") +
			"\nNothing was changed. Check the proxy and the containers on the host before deploying or rolling back."
		blocks = append(blocks, Section{Text: text})
		summary = append(summary, text)
	}
	return Message{Text: strings.Join(summary, "\n"), Blocks: blocks}
}

func renderSlot(ss ops.SlotStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", ss.Slot)
	if ss.Live {
		b.WriteString(" (live)")
	}
	fmt.Fprintf(&b, " · `%s`", ss.Spec.Container)
	switch {
	case ss.ContainerErr != "":
		fmt.Fprintf(&b, " · container state unknown: %s", ss.ContainerErr)
	case !ss.Container.Exists:
		b.WriteString(" · no container")
	default:
		fmt.Fprintf(&b, " · %s · image `%s`", ss.Container.State, ss.Container.Image)
		if ss.Container.RestartCount > 0 {
			fmt.Fprintf(&b, " · %d restarts", ss.Container.RestartCount)
		}
	}
	h := ss.Health
	fmt.Fprintf(&b, "\n%s health: *%s*", healthIcon[h.Status], h.Status)
	if h.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", h.HTTPStatus)
	}
	if h.Version != "" {
		fmt.Fprintf(&b, " · version `%s`", h.Version)
	}
	if h.Problem != "" {
		fmt.Fprintf(&b, "\n    %s", h.Problem)
	}
	for _, c := range h.Failing() {
		fmt.Fprintf(&b, "\n    • %s: %s", c.Name, c.Status)
		if c.Message != "" {
			fmt.Fprintf(&b, " — %s", c.Message)
		}
	}
	return b.String()
}
