package incidents_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
)

func mins(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func declared(sev incidents.Sev) incidents.Incident {
	return incidents.Incident{
		ID: "INC-42", Title: "Events API returns 500", Sev: sev, Env: "production",
		Status: incidents.Investigating, Commander: "alice", DeclaredAt: t0,
		Timeline: []incidents.Entry{{At: t0, Kind: incidents.KindDeclared, By: "alice", Text: "declared SEV2"}},
	}
}

func TestDefaultCadence(t *testing.T) {
	want := incidents.Cadence{SEV1: 30 * time.Minute, SEV2: time.Hour, SEV3: 0, EscalateSEV2After: 30 * time.Minute}
	if got := incidents.DefaultCadence(); got != want {
		t.Fatalf("DefaultCadence() = %+v, want %+v", got, want)
	}
}

func TestParseSev(t *testing.T) {
	for _, c := range []struct {
		in   string
		want incidents.Sev
		err  bool
	}{
		{"sev1", incidents.SEV1, false},
		{"SEV2", incidents.SEV2, false},
		{" 3 ", incidents.SEV3, false},
		{"sev4", "", true},
		{"", "", true},
		{"severe", "", true},
	} {
		got, err := incidents.ParseSev(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseSev(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, c := range []struct {
		in   string
		want incidents.Status
		err  bool
	}{
		{"investigating", incidents.Investigating, false},
		{"Identified", incidents.Identified, false},
		{" MONITORING", incidents.Monitoring, false},
		{"resolved", incidents.Resolved, false},
		{"fixed", "", true},
		{"", "", true},
	} {
		got, err := incidents.ParseStatus(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestNextReminder(t *testing.T) {
	def := incidents.DefaultCadence()
	with := func(sev incidents.Sev, edit func(*incidents.Incident)) incidents.Incident {
		inc := declared(sev)
		edit(&inc)
		return inc
	}
	none := func(*incidents.Incident) {}
	for _, c := range []struct {
		name   string
		inc    incidents.Incident
		c      incidents.Cadence
		want   time.Time
		wantOK bool
	}{
		{"SEV1 from the declaration", with(incidents.SEV1, none), def, mins(30), true},
		{"SEV1 from the last update", with(incidents.SEV1, func(i *incidents.Incident) { i.LastUpdateAt = mins(20) }), def, mins(50), true},
		{"SEV2 hourly", with(incidents.SEV2, func(i *incidents.Incident) { i.LastUpdateAt = mins(20) }), def, mins(80), true},
		{"SEV3 has none", with(incidents.SEV3, none), def, time.Time{}, false},
		{"SEV3 with a configured cadence", with(incidents.SEV3, none), incidents.Cadence{SEV3: 2 * time.Hour}, mins(120), true},
		{"resolved has none", with(incidents.SEV1, func(i *incidents.Incident) { i.Status = incidents.Resolved }), def, time.Time{}, false},
		{"snoozed past the cadence", with(incidents.SEV1, func(i *incidents.Incident) { i.SnoozedUntil = mins(45) }), def, mins(45), true},
		{"snooze ended before the cadence", with(incidents.SEV1, func(i *incidents.Incident) { i.SnoozedUntil = mins(10) }), def, mins(30), true},
	} {
		got, ok := c.inc.NextReminder(c.c)
		if !got.Equal(c.want) || ok != c.wantOK {
			t.Errorf("%s: NextReminder = %s, %v; want %s, %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
}

func TestShouldEscalate(t *testing.T) {
	def := incidents.DefaultCadence()
	escalated := declared(incidents.SEV2)
	escalated.Escalated = true
	resolved := declared(incidents.SEV2)
	resolved.Status = incidents.Resolved
	for _, c := range []struct {
		name string
		inc  incidents.Incident
		c    incidents.Cadence
		now  time.Time
		want bool
	}{
		{"SEV2 at 29 min", declared(incidents.SEV2), def, mins(29), false},
		{"SEV2 at 30 min", declared(incidents.SEV2), def, mins(30), true},
		{"SEV2 at 31 min", declared(incidents.SEV2), def, mins(31), true},
		{"SEV1", declared(incidents.SEV1), def, mins(31), false},
		{"SEV3", declared(incidents.SEV3), def, mins(31), false},
		{"already escalated", escalated, def, mins(31), false},
		{"resolved", resolved, def, mins(31), false},
		{"escalation off", declared(incidents.SEV2), incidents.Cadence{SEV2: time.Hour}, mins(90), false},
	} {
		if got := c.inc.ShouldEscalate(c.c, c.now); got != c.want {
			t.Errorf("%s: ShouldEscalate = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	ok := incidents.Update{Status: incidents.Identified, Impact: "all users", By: "bob", At: mins(10)}
	resolved := declared(incidents.SEV2)
	resolved.Status = incidents.Resolved
	updated := declared(incidents.SEV2)
	updated.LastUpdateAt = mins(20)
	for _, c := range []struct {
		name string
		inc  incidents.Incident
		edit func(*incidents.Update)
		want string
	}{
		{"resolved incident", resolved, func(*incidents.Update) {}, "update INC-42: already resolved"},
		{"no time", declared(incidents.SEV2), func(u *incidents.Update) { u.At = time.Time{} }, "update INC-42: no time"},
		{"no author", declared(incidents.SEV2), func(u *incidents.Update) { u.By = "" }, "update INC-42: no author"},
		{"unknown status", declared(incidents.SEV2), func(u *incidents.Update) { u.Status = "fixed" }, `update INC-42: unknown status "fixed"`},
		{"unknown severity", declared(incidents.SEV2), func(u *incidents.Update) { u.Severity = "sev0" }, `update INC-42: unknown severity "sev0"`},
		{"before the declaration", declared(incidents.SEV2), func(u *incidents.Update) { u.At = mins(-1) },
			"update INC-42: at 2026-06-16 13:59 UTC, before the incident's last change at 2026-06-16 14:00 UTC"},
		{"before the last update", updated, func(*incidents.Update) {},
			"update INC-42: at 2026-06-16 14:10 UTC, before the incident's last change at 2026-06-16 14:20 UTC"},
		{"empty", declared(incidents.SEV2), func(u *incidents.Update) { *u = incidents.Update{By: "bob", At: mins(10)} }, "update INC-42: nothing to update"},
	} {
		u := ok
		c.edit(&u)
		inc := c.inc
		inc.Timeline = slices.Clone(c.inc.Timeline)
		err := inc.Apply(u)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: Apply = %v, want %q", c.name, err, c.want)
		}
		if !reflect.DeepEqual(inc, c.inc) {
			t.Errorf("%s: incident changed on error: %+v", c.name, inc)
		}
	}
}

func TestApply(t *testing.T) {
	inc := declared(incidents.SEV2)
	steps := []incidents.Update{
		{Status: incidents.Identified, Impact: "Event  creation\nfails for all users", WhatHappened: "Bad migration", By: "bob", At: mins(10)},
		{Severity: incidents.SEV1, WhatWeAreDoing: "Rolling back", NextUpdate: "14:45", By: "alice", At: mins(15)},
		{Severity: incidents.SEV1, Status: incidents.Resolved, WhatWeAreDoing: "Watching", By: "alice", At: mins(68)},
	}
	for _, u := range steps {
		if err := inc.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	if inc.Status != incidents.Resolved || inc.Sev != incidents.SEV1 || !inc.LastUpdateAt.Equal(mins(68)) || !inc.ResolvedAt.Equal(mins(68)) {
		t.Errorf("incident = %+v", inc)
	}
	want := []incidents.Entry{
		{At: t0, Kind: "declared", By: "alice", Text: "declared SEV2"},
		{At: mins(10), Kind: "update", By: "bob", Text: "Status: Identified\nImpact: Event creation fails for all users\nWhat happened: Bad migration"},
		{At: mins(15), Kind: "severity", By: "alice", Text: "SEV2 → SEV1"},
		{At: mins(15), Kind: "update", By: "alice", Text: "Status: Identified\nWhat we're doing: Rolling back\nNext update: 14:45"},
		{At: mins(68), Kind: "update", By: "alice", Text: "Status: Resolved\nWhat we're doing: Watching"},
		{At: mins(68), Kind: "resolved", By: "alice", Text: "resolved after 1h 8m"},
	}
	if !reflect.DeepEqual(inc.Timeline, want) {
		t.Errorf("timeline:\n got %+v\nwant %+v", inc.Timeline, want)
	}
}

func TestTemplateText(t *testing.T) {
	inc := declared(incidents.SEV2)
	inc.Title = "Events API <500>"
	inc.Timeline = append(inc.Timeline,
		incidents.Entry{At: mins(5), Kind: incidents.KindReminder, Text: "update due"},
		incidents.Entry{At: mins(10), Kind: incidents.KindUpdate, By: "<@U1>", Text: "Status: Identified\nImpact: all"},
		incidents.Entry{At: mins(12), Kind: incidents.KindRollback, By: "<@U2>", Text: "production to blue"},
		incidents.Entry{At: mins(24 * 60), Kind: incidents.KindNote, Text: "a & b"},
	)
	u := incidents.Update{Status: incidents.Monitoring, Severity: incidents.SEV1, Impact: "Event creation fails for <50% of users",
		WhatHappened: "A bad migration.\nLocked the events table.", WhatWeAreDoing: "Rolled back"}
	want := "*Incident update: INC-42 Events API &lt;500&gt;*\n" +
		"*Status:* Monitoring\n" +
		"*Severity:* SEV1\n" +
		"*Impact:* Event creation fails for &lt;50% of users\n" +
		"\n*What happened:*\nA bad migration.\nLocked the events table.\n" +
		"\n*What we're doing:*\nRolled back\n" +
		"\n*Next update:*\n—\n" +
		"\n*Timeline (UTC):*\n" +
		"• `14:00` declared by alice: declared SEV2\n" +
		"• `14:10` update by <@U1>: Status: Identified\n" +
		"• `14:12` rollback by <@U2>: production to blue\n" +
		"• `Jun 17 14:00` note: a &amp; b"
	if got := incidents.TemplateText(inc, u); got != want {
		t.Errorf("TemplateText:\n%s\nwant:\n%s", got, want)
	}

	// Empty status and severity come from the incident.
	got := incidents.TemplateText(declared(incidents.SEV1), incidents.Update{})
	for _, line := range []string{"*Status:* Investigating\n", "*Severity:* SEV1\n", "*Impact:* —\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("TemplateText without fields lacks %q:\n%s", line, got)
		}
	}
}
