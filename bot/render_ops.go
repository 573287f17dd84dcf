package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

var verdictIcon = map[ops.CheckStatus]string{ops.CheckPass: ":white_check_mark:", ops.CheckWarn: ":warning:", ops.CheckFail: ":x:"}

// RenderPreflight renders a pre-flight report: one summary line, what serves
// now (or that it is a first deploy), the failed and warned checks with
// their remediation, the pending migrations with their lint findings, the
// image digest and the window.
func RenderPreflight(r ops.Report) Message {
	v := r.Verdict()
	summary := fmt.Sprintf("%s Pre-flight of %s on %s: %s — %d checks, %d failed, %d warned",
		verdictIcon[v], r.Version, r.Env, strings.ToUpper(string(v)), len(r.Checks), len(r.Blocking()), len(r.Warnings()))
	blocks := []Block{Section{Text: "*" + summary + "*"}}
	lines := []string{summary}
	// What the deploy starts from is news even when it passed: a first
	// deploy has nothing to roll back to.
	if live, ok := r.Live(); ok && live.Status == ops.CheckPass {
		text := "Live: " + live.Message
		blocks = append(blocks, Section{Text: text})
		lines = append(lines, text)
	}
	for _, group := range []struct {
		title  string
		checks []ops.Check
	}{{"Blocking", r.Blocking()}, {"Warnings", r.Warnings()}} {
		if len(group.checks) == 0 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "*%s*", group.title)
		for _, c := range group.checks {
			fmt.Fprintf(&b, "\n%s `%s` %s", verdictIcon[c.Status], c.Name, c.Message)
			if c.Remediation != "" {
				fmt.Fprintf(&b, "\n      → %s", c.Remediation)
			}
		}
		blocks = append(blocks, Section{Text: b.String()})
		lines = append(lines, b.String())
	}
	if len(r.Pending) > 0 {
		text := pendingList(r, maxPendingShown)
		blocks = append(blocks, Section{Text: text})
		lines = append(lines, text)
	}
	foot := fmt.Sprintf("image `%s` %s · window: %s · report %s · %s", r.Image, shortID(r.ImageID), r.Window, shortID(r.Hash), r.GeneratedAt.UTC().Format(time.RFC3339))
	blocks = append(blocks, Context{Text: foot})
	lines = append(lines, foot)
	return Message{Text: strings.Join(lines, "\n"), Blocks: blocks}
}

// maxPendingShown bounds the pending migrations listed in a report: a first
// install has dozens. RenderPendingMigrations lists them all.
const maxPendingShown = 10

// renderPendingMigrations lists every pending migration of a report with
// its lint findings, for the thread of a report that shows only the first.
func renderPendingMigrations(r ops.Report) Message {
	text := pendingList(r, len(r.Pending))
	return Message{Text: text, Blocks: []Block{Section{Text: text}}}
}

// truncated reports whether RenderPreflight leaves pending migrations out.
func truncated(r ops.Report) bool { return len(r.Pending) > maxPendingShown }

// pendingList lists the first limit pending migrations with their findings.
func pendingList(r ops.Report, limit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Pending migrations (%d)*", len(r.Pending))
	for i, m := range r.Pending {
		if i == limit {
			fmt.Fprintf(&b, "\n… and %d more: the full list follows", len(r.Pending)-limit)
			break
		}
		name := fmt.Sprintf("%06d_%s", m.Version, m.Name)
		fmt.Fprintf(&b, "\n• %s", name)
		for _, f := range r.Findings {
			if f.Migration == name || strings.HasSuffix(f.Migration, m.Name) {
				fmt.Fprintf(&b, "\n      %s %s", verdictIcon[f.Severity], f.Message)
			}
		}
	}
	return b.String()
}

// RenderOperation renders an operation's outcome and journal.
func RenderOperation(op ops.Operation) Message {
	title, foot := operationEnds(op)
	var b strings.Builder
	for _, e := range op.Journal {
		if e.Phase == ops.PhaseBegin {
			continue
		}
		fmt.Fprintf(&b, "%s %-15s %-5s %s\n", e.At.UTC().Format("15:04:05"), e.Step, e.Phase, e.Detail)
	}
	return Message{
		Text:   title + "\n" + b.String() + foot,
		Blocks: []Block{Section{Text: "*" + title + "*"}, Preformatted{Text: strings.TrimRight(b.String(), "\n")}, Context{Text: foot}},
	}
}

// RenderOperationEnd renders an operation's outcome without its journal,
// for a terminal that printed each entry as it was written.
func RenderOperationEnd(op ops.Operation) Message {
	title, foot := operationEnds(op)
	return Message{Text: title + "\n" + foot, Blocks: []Block{Section{Text: "*" + title + "*"}, Context{Text: foot}}}
}

// operationEnds are the title (kind, version, environment and state) and
// the footer (id and requester) of a rendered operation.
func operationEnds(op ops.Operation) (title, foot string) {
	icon := map[ops.Step]string{ops.StepDone: ":white_check_mark:", ops.StepFailed: ":x:", ops.StepRolledBack: ":leftwards_arrow_with_hook:", ops.StepNeedsAttention: ":rotating_light:"}[op.State]
	if icon == "" {
		icon = ":hourglass_flowing_sand:"
	}
	title = fmt.Sprintf("%s %s %s on %s: %s", icon, op.Kind, op.Version, op.Env, op.State)
	if op.Kind == ops.KindRollback {
		title = fmt.Sprintf("%s rollback on %s: %s", icon, op.Env, op.State)
	}
	return title, fmt.Sprintf("operation %s · requested by %s", op.ID, op.Requester)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
