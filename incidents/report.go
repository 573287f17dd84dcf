package incidents

import (
	"cmp"
	"fmt"
	"strings"
)

// placeholderActions are the postmortem's open questions when no action
// items are given.
var placeholderActions = []string{
	"Identify the root cause",
	"List action items to prevent recurrence",
	"Update runbooks if needed",
}

// Report is the incident report as markdown: a summary (title, severity,
// environment, declared and resolved times, duration, commander), the
// impact from the latest update that stated one, the timeline in UTC and
// the action items, or a placeholder list for the postmortem.
func Report(inc Incident, actionItems []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n## Summary\n\n", inc.ID, inc.Title)
	fmt.Fprintf(&b, "- **Severity:** %s\n", sevLabel(inc.Sev))
	fmt.Fprintf(&b, "- **Environment:** %s\n", inc.Env)
	fmt.Fprintf(&b, "- **Status:** %s\n", statusLabel(inc.Status))
	fmt.Fprintf(&b, "- **Commander:** %s\n", cmp.Or(inc.Commander, "_none_"))
	fmt.Fprintf(&b, "- **Declared:** %s\n", stamp(inc.DeclaredAt))
	if inc.ResolvedAt.IsZero() {
		b.WriteString("- **Resolved:** not yet\n")
	} else {
		fmt.Fprintf(&b, "- **Resolved:** %s\n", stamp(inc.ResolvedAt))
		fmt.Fprintf(&b, "- **Duration:** %s\n", fmtDuration(inc.ResolvedAt.Sub(inc.DeclaredAt)))
	}
	if inc.Escalated {
		b.WriteString("- **Escalated:** yes\n")
	}

	fmt.Fprintf(&b, "\n## Impact\n\n%s\n\n## Timeline (UTC)\n\n", cmp.Or(impact(inc.Timeline), "_Not recorded._"))
	for _, e := range inc.Timeline {
		fmt.Fprintf(&b, "- %s %s\n", e.At.UTC().Format("2006-01-02 15:04"), entryLine(e, strings.ReplaceAll(e.Text, "\n", "; ")))
	}
	if len(inc.Timeline) == 0 {
		b.WriteString("_No entries._\n")
	}

	b.WriteString("\n## Action items\n\n")
	items := actionItems
	if len(items) == 0 {
		b.WriteString("_To be completed in the postmortem:_\n\n")
		items = placeholderActions
	}
	for _, it := range items {
		fmt.Fprintf(&b, "- [ ] %s\n", it)
	}
	return b.String()
}

// impact is the impact line of the latest update entry that has one.
func impact(timeline []Entry) string {
	for i := len(timeline) - 1; i >= 0; i-- {
		if timeline[i].Kind != KindUpdate {
			continue
		}
		for line := range strings.Lines(timeline[i].Text) {
			if s, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), impactLabel); ok {
				return s
			}
		}
	}
	return ""
}
