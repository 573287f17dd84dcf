package ops_test

import (
	"testing"
	"time"
	_ "time/tzdata" // America/Toronto on hosts without zoneinfo

	"github.com/togather-foundation/togather-chatops/ops"
)

func toronto(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Toronto")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// wall is a wall-clock time in loc, "2006-01-02 15:04".
func wall(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	ts, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestWindowOpen(t *testing.T) {
	loc := toronto(t)
	def := ops.Window{Location: loc}
	withHoliday := ops.Window{Location: loc, Holidays: []time.Time{
		time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC), // a date: its UTC midnight is Dec 23 in Toronto
		time.Date(2026, 6, 23, 0, 0, 0, 0, loc),
	}}
	freeze := func(from, to string) ops.Window {
		return ops.Window{Location: loc, Freezes: []ops.Freeze{{From: wall(t, loc, from), To: wall(t, loc, to), Reason: "holiday freeze"}}}
	}
	tests := []struct {
		name     string
		w        ops.Window
		now      string
		wantOpen bool
		want     string
	}{
		{"inside", def, "2026-06-16 11:00", true, "inside the deploy window (Tue–Thu 10:00–14:00 America/Toronto)"},
		{"at the start", def, "2026-06-16 10:00", true, "inside the deploy window (Tue–Thu 10:00–14:00 America/Toronto)"},
		{"before the start", def, "2026-06-16 09:59", false, "outside 10:00–14:00 America/Toronto; the window opens next on Tue 2026-06-16 10:00 EDT"},
		{"at the end", def, "2026-06-18 14:00", false, "outside 10:00–14:00 America/Toronto; the window opens next on Tue 2026-06-23 10:00 EDT"},
		{"Friday afternoon", def, "2026-06-19 13:00", false, "Friday afternoon; the window opens next on Tue 2026-06-23 10:00 EDT"},
		{"Friday morning", def, "2026-06-19 09:00", false, "Friday is not a deploy day (Tue–Thu); the window opens next on Tue 2026-06-23 10:00 EDT"},
		{"Monday", def, "2026-06-22 11:00", false, "Monday is not a deploy day (Tue–Thu); the window opens next on Tue 2026-06-23 10:00 EDT"},
		{"weekend", def, "2026-06-20 11:00", false, "weekend; the window opens next on Tue 2026-06-23 10:00 EDT"},
		{"holiday by its date", withHoliday, "2026-12-24 11:00", false, "holiday 2026-12-24; the window opens next on Tue 2026-12-29 10:00 EST"},
		{"the day before a UTC-midnight holiday", withHoliday, "2026-12-23 11:00", true, "inside the deploy window (Tue–Thu 10:00–14:00 America/Toronto)"},
		{"next opening skips a holiday", withHoliday, "2026-06-19 13:00", false, "Friday afternoon; the window opens next on Wed 2026-06-24 10:00 EDT"},
		{"freeze ending inside a window", freeze("2026-12-18 17:00", "2027-01-05 12:00"), "2026-12-22 11:00", false,
			"freeze: holiday freeze until Tue 2027-01-05 12:00 EST; the window opens next on Tue 2027-01-05 12:00 EST"},
		{"freeze ending after the day's window", freeze("2026-12-18 17:00", "2027-01-05 15:00"), "2026-12-22 11:00", false,
			"freeze: holiday freeze until Tue 2027-01-05 15:00 EST; the window opens next on Wed 2027-01-06 10:00 EST"},
		{"freeze ended", freeze("2026-12-18 17:00", "2027-01-05 12:00"), "2027-01-05 12:00", true, "inside the deploy window (Tue–Thu 10:00–14:00 America/Toronto)"},
		{"freeze without reason", ops.Window{Location: loc, Freezes: []ops.Freeze{{From: wall(t, loc, "2026-06-16 00:00"), To: wall(t, loc, "2026-06-17 00:00")}}},
			"2026-06-16 11:00", false, "freeze until Wed 2026-06-17 00:00 EDT; the window opens next on Wed 2026-06-17 10:00 EDT"},
		{"never opens", freeze("2026-01-01 00:00", "2030-01-01 00:00"), "2026-06-16 11:00", false,
			"freeze: holiday freeze until Tue 2030-01-01 00:00 EST; no deploy window in the next 400 days"},
		{"custom days and hours in UTC", ops.Window{Days: []time.Weekday{time.Friday, time.Monday, time.Wednesday}, Start: 9 * time.Hour, End: 17*time.Hour + 30*time.Minute},
			"2026-06-16 11:00", false, "Tuesday is not a deploy day (Mon, Wed, Fri); the window opens next on Wed 2026-06-17 09:00 UTC"},
		{"weekend as a deploy day", ops.Window{Days: []time.Weekday{time.Saturday}, Location: loc}, "2026-06-20 11:00", true,
			"inside the deploy window (Sat 10:00–14:00 America/Toronto)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.w.Location
			if l == nil {
				l = time.UTC
			}
			open, why := tt.w.Open(wall(t, l, tt.now))
			if open != tt.wantOpen || why != tt.want {
				t.Errorf("Open(%s) = %v, %q\n                       want %v, %q", tt.now, open, why, tt.wantOpen, tt.want)
			}
		})
	}
}

// The default window on the first Tuesday after the end of daylight saving
// time (Sunday 2026-11-01) is 10:00–14:00 EST, 15:00–19:00 UTC; the week
// before it was 14:00–18:00 UTC. Adding 24-hour days to a time would be
// off by an hour.
func TestDefaultWindowAcrossDSTChange(t *testing.T) {
	w := ops.Window{Location: toronto(t)}
	utc := func(s string) time.Time {
		ts, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	for _, tt := range []struct {
		utc  string
		open bool
	}{
		{"2026-10-27 13:59", false}, {"2026-10-27 14:00", true}, {"2026-10-27 17:59", true}, {"2026-10-27 18:00", false},
		{"2026-11-03 14:00", false}, {"2026-11-03 14:59", false}, {"2026-11-03 15:00", true}, {"2026-11-03 18:59", true}, {"2026-11-03 19:00", false},
	} {
		if open, why := w.Open(utc(tt.utc)); open != tt.open {
			t.Errorf("Open(%s UTC) = %v (%s), want %v", tt.utc, open, why, tt.open)
		}
	}
	_, why := w.Open(utc("2026-10-30 17:00")) // Friday 13:00 EDT
	if want := "Friday afternoon; the window opens next on Tue 2026-11-03 10:00 EST"; why != want {
		t.Errorf("reason on the Friday before = %q, want %q", why, want)
	}
}
