package incidents_test

import (
	"testing"

	"github.com/togather-foundation/togather-chatops/incidents"
)

func TestReport(t *testing.T) {
	inc := declared(incidents.SEV2)
	inc.Escalated = true
	for _, u := range []incidents.Update{
		{Status: incidents.Identified, Impact: "Event creation fails for all users", By: "bob", At: mins(10)},
		{Severity: incidents.SEV1, Impact: "All writes fail", By: "alice", At: mins(20)},
		{Status: incidents.Resolved, WhatHappened: "Bad migration rolled back", By: "alice", At: mins(68)},
	} {
		if err := inc.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	want := `# INC-42: Events API returns 500

## Summary

- **Severity:** SEV1
- **Environment:** production
- **Status:** Resolved
- **Commander:** alice
- **Declared:** 2026-06-16 14:00 UTC
- **Resolved:** 2026-06-16 15:08 UTC
- **Duration:** 1h 8m
- **Escalated:** yes

## Impact

All writes fail

## Timeline (UTC)

- 2026-06-16 14:00 declared by alice: declared SEV2
- 2026-06-16 14:10 update by bob: Status: Identified; Impact: Event creation fails for all users
- 2026-06-16 14:20 severity by alice: SEV2 → SEV1
- 2026-06-16 14:20 update by alice: Status: Identified; Impact: All writes fail
- 2026-06-16 15:08 update by alice: Status: Resolved; What happened: Bad migration rolled back
- 2026-06-16 15:08 resolved by alice: resolved after 1h 8m

## Action items

- [ ] Add a migration lock timeout
- [ ] Alert on write errors
`
	if got := incidents.Report(inc, []string{"Add a migration lock timeout", "Alert on write errors"}); got != want {
		t.Errorf("Report:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportOpenWithoutDetails(t *testing.T) {
	inc := incidents.Incident{ID: "INC-7", Title: "Slow search", Sev: incidents.SEV3, Env: "staging",
		Status: incidents.Investigating, DeclaredAt: t0}
	want := `# INC-7: Slow search

## Summary

- **Severity:** SEV3
- **Environment:** staging
- **Status:** Investigating
- **Commander:** _none_
- **Declared:** 2026-06-16 14:00 UTC
- **Resolved:** not yet

## Impact

_Not recorded._

## Timeline (UTC)

_No entries._

## Action items

_To be completed in the postmortem:_

- [ ] Identify the root cause
- [ ] List action items to prevent recurrence
- [ ] Update runbooks if needed
`
	if got := incidents.Report(inc, nil); got != want {
		t.Errorf("Report:\n%s\nwant:\n%s", got, want)
	}
}
