package incidents

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is where an incident stands, as in the update template.
type Status string

// Incident statuses, in their usual order.
const (
	Investigating Status = "investigating"
	Identified    Status = "identified"
	Monitoring    Status = "monitoring"
	Resolved      Status = "resolved"
)

// Timeline entry kinds.
const (
	KindDeclared  = "declared"
	KindUpdate    = "update"
	KindSeverity  = "severity"
	KindAlert     = "alert"
	KindDeploy    = "deploy"
	KindRollback  = "rollback"
	KindNote      = "note"
	KindResolved  = "resolved"
	KindEscalated = "escalated"
	KindReminder  = "reminder"
)

// Incident is a declared SEV1–SEV3 incident with its chat thread and
// timeline.
type Incident struct {
	ID           string // "INC-42"
	Title        string
	Sev          Sev
	Env          string
	Status       Status
	Commander    string
	DeclaredAt   time.Time
	ResolvedAt   time.Time // zero while open
	LastUpdateAt time.Time // zero until the first update
	Escalated    bool
	SnoozedUntil time.Time // no reminder before this
	Channel      string
	ThreadTS     string
	Timeline     []Entry
}

// Entry is one line of an incident's timeline. By is whatever identifies
// the actor to readers (a name or a chat mention); it is shown as is.
type Entry struct {
	At   time.Time
	Kind string // one of the Kind constants
	By   string
	Text string
}

// Update is one incident update in the template's terms. Empty Status or
// Severity leave the incident's unchanged.
type Update struct {
	Status         Status
	Severity       Sev
	Impact         string
	WhatHappened   string
	WhatWeAreDoing string
	NextUpdate     string
	By             string
	At             time.Time
}

// Cadence is how often an open incident needs a stakeholder update per
// severity (0: no reminders) and when an unresolved SEV2 escalates (0:
// never).
type Cadence struct {
	SEV1, SEV2, SEV3  time.Duration
	EscalateSEV2After time.Duration
}

// DefaultCadence is the best-practices cadence: SEV1 every 30 min, SEV2
// hourly, SEV3 with the next status update (no reminder); SEV2 escalates
// after 30 min.
func DefaultCadence() Cadence {
	return Cadence{SEV1: 30 * time.Minute, SEV2: time.Hour, EscalateSEV2After: 30 * time.Minute}
}

func (c Cadence) every(s Sev) time.Duration {
	switch s {
	case SEV1:
		return c.SEV1
	case SEV2:
		return c.SEV2
	case SEV3:
		return c.SEV3
	}
	return 0
}

func (s Sev) valid() bool { return s == SEV1 || s == SEV2 || s == SEV3 }
func (s Status) valid() bool {
	return s == Investigating || s == Identified || s == Monitoring || s == Resolved
}

// ParseSev reads a severity such as "sev1", "SEV2" or "3".
func ParseSev(s string) (Sev, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(v, "sev") {
		v = "sev" + v
	}
	if sev := Sev(v); sev.valid() {
		return sev, nil
	}
	return "", fmt.Errorf("severity %q: want sev1, sev2 or sev3", s)
}

// ParseStatus reads a status name in any case.
func ParseStatus(s string) (Status, error) {
	if st := Status(strings.ToLower(strings.TrimSpace(s))); st.valid() {
		return st, nil
	}
	return "", fmt.Errorf("status %q: want investigating, identified, monitoring or resolved", s)
}

// NextReminder is when the incident next needs an update: the cadence of
// its severity after the last update (or the declaration), or the end of
// a snooze if that is later. It is false for a resolved incident and a
// severity without a cadence (SEV3 by default).
func (inc Incident) NextReminder(c Cadence) (time.Time, bool) {
	every := c.every(inc.Sev)
	if inc.Status == Resolved || every <= 0 {
		return time.Time{}, false
	}
	next := cmp.Or(inc.LastUpdateAt, inc.DeclaredAt).Add(every)
	if inc.SnoozedUntil.After(next) {
		next = inc.SnoozedUntil
	}
	return next, true
}

// ShouldEscalate reports whether an open SEV2, not yet escalated, has been
// open since its declaration for at least c.EscalateSEV2After.
func (inc Incident) ShouldEscalate(c Cadence, now time.Time) bool {
	return inc.Sev == SEV2 && !inc.Escalated && inc.Status != Resolved &&
		c.EscalateSEV2After > 0 && now.Sub(inc.DeclaredAt) >= c.EscalateSEV2After
}

// Apply records an update: it changes the status and severity, appends a
// severity entry when the severity changes, an update entry holding the
// template fields, and a resolved entry (with ResolvedAt set) when the
// status becomes resolved. On error the incident is unchanged.
func (inc *Incident) Apply(u Update) error {
	if err := inc.check(u); err != nil {
		return fmt.Errorf("update %s: %w", inc.ID, err)
	}
	if u.Severity != "" && u.Severity != inc.Sev {
		inc.Timeline = append(inc.Timeline, Entry{At: u.At, Kind: KindSeverity, By: u.By,
			Text: sevLabel(inc.Sev) + " → " + sevLabel(u.Severity)})
		inc.Sev = u.Severity
	}
	inc.Status = cmp.Or(u.Status, inc.Status, Investigating)
	inc.LastUpdateAt = u.At
	inc.Timeline = append(inc.Timeline, Entry{At: u.At, Kind: KindUpdate, By: u.By, Text: updateText(inc.Status, u)})
	if inc.Status == Resolved {
		inc.ResolvedAt = u.At
		inc.Timeline = append(inc.Timeline, Entry{At: u.At, Kind: KindResolved, By: u.By,
			Text: "resolved after " + fmtDuration(u.At.Sub(inc.DeclaredAt))})
	}
	return nil
}

func (inc *Incident) check(u Update) error {
	last := inc.DeclaredAt
	if inc.LastUpdateAt.After(last) {
		last = inc.LastUpdateAt
	}
	switch {
	case inc.Status == Resolved:
		return errors.New("already resolved")
	case u.At.IsZero():
		return errors.New("no time")
	case u.By == "":
		return errors.New("no author")
	case u.Status != "" && !u.Status.valid():
		return fmt.Errorf("unknown status %q", u.Status)
	case u.Severity != "" && !u.Severity.valid():
		return fmt.Errorf("unknown severity %q", u.Severity)
	case u.At.Before(last):
		return fmt.Errorf("at %s, before the incident's last change at %s", stamp(u.At), stamp(last))
	case u.Status == "" && u.Severity == "" && u.Impact == "" && u.WhatHappened == "" &&
		u.WhatWeAreDoing == "" && u.NextUpdate == "":
		return errors.New("nothing to update")
	}
	return nil
}

// impactLabel starts the impact line of an update entry; Report finds the
// latest impact by it.
const impactLabel = "Impact: "

// updateText is an update entry's text: the status, then one line per
// template field given, each on a single line.
func updateText(s Status, u Update) string {
	lines := []string{"Status: " + statusLabel(s)}
	for _, f := range []struct{ label, text string }{
		{impactLabel, u.Impact},
		{"What happened: ", u.WhatHappened},
		{"What we're doing: ", u.WhatWeAreDoing},
		{"Next update: ", u.NextUpdate},
	} {
		if t := strings.Join(strings.Fields(f.text), " "); t != "" {
			lines = append(lines, f.label+t)
		}
	}
	return strings.Join(lines, "\n")
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// TemplateText is the incident-update template as Slack mrkdwn: Status,
// Severity and Impact, What happened, What we're doing, Next update, and
// the timeline (UTC, without reminders; update entries by their status
// line). Fields of u left empty fall back to the incident's status and
// severity, or show "—". Free text is escaped; entry authors are not, so
// they may be mentions.
func TemplateText(inc Incident, u Update) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Incident update: %s %s*\n", inc.ID, mrkdwnEscaper.Replace(inc.Title))
	fmt.Fprintf(&b, "*Status:* %s\n", statusLabel(cmp.Or(u.Status, inc.Status, Investigating)))
	fmt.Fprintf(&b, "*Severity:* %s\n", sevLabel(cmp.Or(u.Severity, inc.Sev)))
	fmt.Fprintf(&b, "*Impact:* %s\n", mrkdwnField(u.Impact))
	fmt.Fprintf(&b, "\n*What happened:*\n%s\n", mrkdwnField(u.WhatHappened))
	fmt.Fprintf(&b, "\n*What we're doing:*\n%s\n", mrkdwnField(u.WhatWeAreDoing))
	fmt.Fprintf(&b, "\n*Next update:*\n%s\n", mrkdwnField(u.NextUpdate))
	b.WriteString("\n*Timeline (UTC):*\n")
	day := inc.DeclaredAt.UTC().Format(time.DateOnly)
	for _, e := range inc.Timeline {
		if e.Kind == KindReminder {
			continue
		}
		layout := "15:04"
		if e.At.UTC().Format(time.DateOnly) != day {
			layout = "Jan 2 15:04"
		}
		text := e.Text
		if e.Kind == KindUpdate {
			text, _, _ = strings.Cut(text, "\n")
		}
		fmt.Fprintf(&b, "• `%s` %s\n", e.At.UTC().Format(layout), entryLine(e, mrkdwnEscaper.Replace(text)))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// entryLine is "<kind> by <who>: <text>", the parts present.
func entryLine(e Entry, text string) string {
	s := e.Kind
	if e.By != "" {
		s += " by " + e.By
	}
	if text != "" {
		s += ": " + text
	}
	return s
}

// mrkdwnField is free text escaped for mrkdwn, or "—" when empty.
func mrkdwnField(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return mrkdwnEscaper.Replace(s)
}

// sevLabel is "SEV1" for SEV1.
func sevLabel(s Sev) string { return strings.ToUpper(string(s)) }

// statusLabel is "Investigating" for Investigating.
func statusLabel(s Status) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

// stamp is a time in UTC to the minute.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// fmtDuration is a duration to the minute: "45m", "1h 8m".
func fmtDuration(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh %dm", m/60, m%60)
}
