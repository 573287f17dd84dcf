package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseMaintenanceStart(t *testing.T) {
	loc := berlin(t)
	cases := []struct {
		in, wantUTC, note, err string
	}{
		{in: "2026-12-08T02:00", wantUTC: "2026-12-08T01:00:00Z"},
		{in: "2027-07-01T02:00", wantUTC: "2027-07-01T00:00:00Z"},
		// Clocks go forward at 02:00 on 2027-03-28: 02:30 does not exist.
		{in: "2027-03-28T02:30", err: "does not exist in Europe/Berlin"},
		// Clocks go back at 03:00 on 2027-10-31: 02:30 happens twice.
		{in: "2027-10-31T02:30", wantUTC: "2027-10-31T00:30:00Z", note: "happens twice"},
		{in: "2027-10-31", err: "use YYYY-MM-DDTHH:MM"},
	}
	for _, c := range cases {
		got, note, err := ops.ParseMaintenanceStart(c.in, loc)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.UTC().Format(time.RFC3339) != c.wantUTC {
			t.Errorf("%s = %s, want %s", c.in, got.UTC().Format(time.RFC3339), c.wantUTC)
		}
		if (c.note == "") != (note == "") || !strings.Contains(note, c.note) {
			t.Errorf("%s: note %q, want one containing %q", c.in, note, c.note)
		}
	}
}

func TestMaintenanceWarnings(t *testing.T) {
	loc := berlin(t)
	r := ops.MaintenanceRules{Location: loc}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation(ops.MaintenanceStartLayout, s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		start string
		d     time.Duration
		want  []string
	}{
		{"2026-12-08T02:00", 2 * time.Hour, nil},                                  // Tuesday night
		{"2026-12-08T10:00", 2 * time.Hour, []string{"business hours"}},           // Tuesday morning
		{"2026-12-12T10:00", 2 * time.Hour, nil},                                  // Saturday
		{"2026-12-08T17:00", 2 * time.Hour, nil},                                  // the end of the business day
		{"2026-12-08T02:00", 5 * time.Hour, []string{"lasts 5h0m0s"}},             // too long
		{"2026-12-09T16:59", 6 * time.Hour, []string{"business hours", "longer"}}, // both
	}
	for _, c := range cases {
		got := r.Warnings(at(c.start), c.d)
		if len(got) != len(c.want) {
			t.Errorf("%s %s: warnings %q, want %d", c.start, c.d, got, len(c.want))
			continue
		}
		joined := strings.Join(got, " | ")
		for _, w := range c.want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s %s: warnings %q lack %q", c.start, c.d, got, w)
			}
		}
	}
}

// TestAnnouncementsAcrossDST: the announcements keep the start's wall-clock
// time in the team's zone, so across the spring change the 7-day one is
// 7 days less an hour before the start.
func TestAnnouncementsAcrossDST(t *testing.T) {
	loc := berlin(t)
	start, _, err := ops.ParseMaintenanceStart("2027-03-29T03:00", loc) // CEST, the day after the change
	if err != nil {
		t.Fatal(err)
	}
	r := ops.MaintenanceRules{Location: loc}
	w := ops.MaintenanceWindow{Start: start, End: start.Add(time.Hour), CreatedAt: start.AddDate(0, 0, -10)}
	got := r.Announcements(w)
	want := []struct {
		event string
		local string
	}{
		{"announce-7d", "2027-03-22T03:00 CET"},
		{"announce-3d", "2027-03-26T03:00 CET"},
		{"announce-1d", "2027-03-28T03:00 CEST"},
	}
	if len(got) != len(want) {
		t.Fatalf("announcements = %+v", got)
	}
	for i, a := range got {
		if a.Event != want[i].event || a.At.In(loc).Format("2006-01-02T15:04 MST") != want[i].local {
			t.Errorf("announcement %d = %s at %s, want %s at %s", i, a.Event, a.At.In(loc).Format("2006-01-02T15:04 MST"), want[i].event, want[i].local)
		}
	}
	if d := start.Sub(got[0].At); d != 7*24*time.Hour-time.Hour {
		t.Errorf("the 7-day announcement is %s before the start, want 7 days less the hour clocks skip", d)
	}

	// Scheduled 2 days ahead: only the 1-day announcement is still to come.
	w.CreatedAt = start.AddDate(0, 0, -2)
	if got := r.Announcements(w); len(got) != 1 || got[0].Event != "announce-1d" {
		t.Errorf("scheduled 2 days ahead: announcements = %+v, want only announce-1d", got)
	}
	// Scheduled an hour ahead: none.
	w.CreatedAt = start.Add(-time.Hour)
	if got := r.Announcements(w); len(got) != 0 {
		t.Errorf("scheduled an hour ahead: announcements = %+v, want none", got)
	}
}

func TestParseMaintenanceID(t *testing.T) {
	for in, want := range map[string]int64{"MW-7": 7, "mw-12": 12, "3": 3} {
		if got, err := ops.ParseMaintenanceID(in); err != nil || got != want {
			t.Errorf("ParseMaintenanceID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MW-", "MW-0", "INC-3", "-4"} {
		if _, err := ops.ParseMaintenanceID(in); err == nil {
			t.Errorf("ParseMaintenanceID(%q) succeeded", in)
		}
	}
}

// FuzzParseMaintenanceStart: any text is either refused or read as a time
// that shows the same wall clock in the zone, and its announcements come
// before it, earliest first.
func FuzzParseMaintenanceStart(f *testing.F) {
	for _, s := range []string{"2026-12-08T02:00", "2027-03-28T02:30", "2027-10-31T02:30", "2027-03-28T03:00", "9999-12-31T23:59", "0000-01-01T00:00", "2026-02-29T10:00", ""} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	r := ops.MaintenanceRules{Location: loc}
	f.Fuzz(func(t *testing.T, s string) {
		start, _, err := ops.ParseMaintenanceStart(s, loc)
		if err != nil {
			return
		}
		if got := start.In(loc).Format(ops.MaintenanceStartLayout); got != s {
			t.Fatalf("%q read as %s, which shows %q", s, start, got)
		}
		list := r.Announcements(ops.MaintenanceWindow{Start: start, End: start.Add(time.Hour), CreatedAt: start.AddDate(0, 0, -30)})
		for i, a := range list {
			if !a.At.Before(start) || (i > 0 && a.At.Before(list[i-1].At)) {
				t.Fatalf("announcements of %q out of order or not before it: %+v", s, list)
			}
		}
	})
}
