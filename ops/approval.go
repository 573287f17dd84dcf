package ops

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Approval is what a request needs before it runs: how many distinct people
// other than its requester approve it, until when, and, for a deploy, what
// they approve. It is fixed when the request is made.
type Approval struct {
	Needed  int       `json:"needed"` // 0: a confirmation by anyone allowed is enough
	Expires time.Time `json:"expires"`
	// Binding is the pre-flight outcome the approvers of a deploy saw.
	Binding *Binding `json:"binding,omitempty"`
}

// Expired reports whether the request can no longer be approved at now.
func (a Approval) Expired(now time.Time) bool { return !now.Before(a.Expires) }

// Binding is what the approval of a deploy is bound to: the image's
// content, the pending migrations and their lint findings, each check's
// outcome, and the options the checks ran with, which the re-check at
// approval repeats. The checks' messages are left out: they hold sizes,
// ages and names that change by the minute.
type Binding struct {
	ImageID          string                 `json:"image_id"`
	Migrations       []string               `json:"migrations,omitempty"` // <version>_<name>, in order
	Findings         []string               `json:"findings,omitempty"`   // <migration> <rule>: <message>, sorted
	Outcomes         map[string]CheckStatus `json:"outcomes"`
	AllowDestructive string                 `json:"allow_destructive,omitempty"`
	OverrideWindow   string                 `json:"override_window,omitempty"`
}

// Binding is what approving r approves.
func (r Report) Binding() Binding {
	b := Binding{ImageID: r.ImageID, Outcomes: map[string]CheckStatus{},
		AllowDestructive: r.AllowDestructive, OverrideWindow: r.OverrideWindow}
	pending := slices.SortedFunc(slices.Values(r.Pending), func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for _, m := range pending {
		b.Migrations = append(b.Migrations, fmt.Sprintf("%d_%s", m.Version, m.Name))
	}
	for _, f := range r.Findings {
		b.Findings = append(b.Findings, fmt.Sprintf("%s %s: %s", f.Migration, f.Rule, f.Message))
	}
	slices.Sort(b.Findings)
	for _, c := range r.Checks {
		if was, ok := b.Outcomes[c.Name]; !ok || rank(c.Status) > rank(was) {
			b.Outcomes[c.Name] = c.Status
		}
	}
	return b
}

// Request is the pre-flight request that checks again what b approved.
func (b Binding) Request(env, version string, now time.Time) PreflightRequest {
	return PreflightRequest{Env: env, Version: version, AllowDestructive: b.AllowDestructive, OverrideWindow: b.OverrideWindow, Now: now}
}

// Drift says how fresh, the checks run again, departs from what b
// approved: another image, other pending migrations or findings, or a
// check whose outcome is worse than approved. A check that got better does
// not count. Empty when fresh is what was approved, or better.
func (b Binding) Drift(fresh Report) []string {
	now := fresh.Binding()
	var out []string
	if now.ImageID != b.ImageID {
		out = append(out, fmt.Sprintf("the image changed: it is now %s, not %s as approved", short(now.ImageID), short(b.ImageID)))
	}
	if !slices.Equal(now.Migrations, b.Migrations) {
		out = append(out, fmt.Sprintf("the pending migrations are now [%s], not [%s]", strings.Join(now.Migrations, ", "), strings.Join(b.Migrations, ", ")))
	} else if !slices.Equal(now.Findings, b.Findings) {
		out = append(out, "the lint findings of the pending migrations changed")
	}
	for _, c := range fresh.Checks {
		was, ok := b.Outcomes[c.Name]
		if !ok {
			was = CheckPass // not run then: only a warning or failure now counts
		}
		if rank(c.Status) > rank(was) && now.Outcomes[c.Name] == c.Status {
			out = append(out, fmt.Sprintf("%s is now %s, approved as %s: %s", c.Name, c.Status, was, c.Message))
		}
	}
	return out
}

// rank orders outcomes from best to worst.
func rank(s CheckStatus) int {
	switch s {
	case CheckPass:
		return 0
	case CheckWarn:
		return 1
	}
	return 2
}
