package ops

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is when deploys may run without an override: some weekdays
// between two wall-clock times in the team's time zone, except on holidays
// and during freezes. Zero fields take the defaults of the best-practices
// guide: Tuesday to Thursday, 10:00–14:00, UTC.
type Window struct {
	Days       []time.Weekday // empty: Tuesday, Wednesday, Thursday
	Start, End time.Duration  // wall-clock offsets from midnight, Start < End; both zero: 10:00 and 14:00
	Location   *time.Location // nil: UTC
	// Holidays are calendar dates: only their year, month and day count,
	// compared with the date in Location.
	Holidays []time.Time
	Freezes  []Freeze
}

// Freeze is a period without deploys, such as the end-of-year freeze.
type Freeze struct {
	From, To time.Time // From inclusive, To exclusive
	Reason   string
}

const (
	defaultWindowStart = 10 * time.Hour
	defaultWindowEnd   = 14 * time.Hour
	// noon splits Friday morning from Friday afternoon.
	noon = 12 * time.Hour
	// windowHorizon is how many days ahead the next opening is looked for.
	windowHorizon = 400
)

var defaultWindowDays = []time.Weekday{time.Tuesday, time.Wednesday, time.Thursday}

// Open reports whether now is inside the window. The reason says where now
// is: inside the window, or why it is closed ("Friday afternoon", "weekend",
// "holiday 2026-12-25", "freeze: … until …", "outside 10:00–14:00 …") and
// when the window opens next. Times are computed on the wall clock of
// Location, so daylight-saving changes move nothing.
func (w Window) Open(now time.Time) (bool, string) {
	w = w.withDefaults()
	now = now.In(w.Location)
	why := w.closedBecause(now)
	if why == "" {
		return true, "inside the deploy window (" + w.String() + ")"
	}
	next, ok := w.nextOpening(now)
	if !ok {
		return false, fmt.Sprintf("%s; no deploy window in the next %d days", why, windowHorizon)
	}
	return false, fmt.Sprintf("%s; the window opens next on %s", why, next.Format("Mon 2006-01-02 15:04 MST"))
}

// String describes the window, e.g. "Tue–Thu 10:00–14:00 America/Toronto".
func (w Window) String() string {
	w = w.withDefaults()
	return fmt.Sprintf("%s %s %s", describeDays(w.Days), w.hours(), w.Location)
}

func (w Window) withDefaults() Window {
	if len(w.Days) == 0 {
		w.Days = defaultWindowDays
	}
	if w.Start == 0 && w.End == 0 {
		w.Start, w.End = defaultWindowStart, defaultWindowEnd
	}
	if w.Location == nil {
		w.Location = time.UTC
	}
	return w
}

// closedBecause says why the window is closed at now (in Location), or ""
// when it is open.
func (w Window) closedBecause(now time.Time) string {
	if f, ok := w.freezeAt(now); ok {
		until := f.To.In(w.Location).Format("Mon 2006-01-02 15:04 MST")
		if f.Reason == "" {
			return "freeze until " + until
		}
		return fmt.Sprintf("freeze: %s until %s", f.Reason, until)
	}
	if w.holiday(now) {
		return "holiday " + now.Format(time.DateOnly)
	}
	day := now.Weekday()
	if !slices.Contains(w.Days, day) {
		switch {
		case day == time.Saturday || day == time.Sunday:
			return "weekend"
		case day == time.Friday && clock(now) >= noon:
			return "Friday afternoon"
		}
		return fmt.Sprintf("%s is not a deploy day (%s)", day, describeDays(w.Days))
	}
	if c := clock(now); c < w.Start || c >= w.End {
		return fmt.Sprintf("outside %s %s", w.hours(), w.Location)
	}
	return ""
}

// nextOpening is the first instant after now at which the window is open.
func (w Window) nextOpening(now time.Time) (time.Time, bool) {
	y, m, d := now.Date()
	for i := range windowHorizon {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, w.Location)
		if !slices.Contains(w.Days, day.Weekday()) || w.holiday(day) {
			continue
		}
		t := w.at(day, w.Start)
		if t.Before(now) {
			t = now
		}
		for f, frozen := w.freezeAt(t); frozen; f, frozen = w.freezeAt(t) {
			t = f.To
		}
		if t.Before(w.at(day, w.End)) {
			return t, true
		}
	}
	return time.Time{}, false
}

func (w Window) freezeAt(t time.Time) (Freeze, bool) {
	for _, f := range w.Freezes {
		if !t.Before(f.From) && t.Before(f.To) {
			return f, true
		}
	}
	return Freeze{}, false
}

func (w Window) holiday(t time.Time) bool {
	y, m, d := t.In(w.Location).Date()
	for _, h := range w.Holidays {
		if hy, hm, hd := h.Date(); hy == y && hm == m && hd == d {
			return true
		}
	}
	return false
}

// at is the instant at wall-clock offset off on day's date in Location:
// built from hours and minutes, not added as elapsed time, so a
// daylight-saving change earlier that day does not shift it.
func (w Window) at(day time.Time, off time.Duration) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, int(off/time.Hour), int(off%time.Hour/time.Minute), int(off%time.Minute/time.Second), 0, w.Location)
}

// clock is t's wall-clock offset from midnight.
func clock(t time.Time) time.Duration {
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
}

func (w Window) hours() string {
	return formatClock(w.Start) + "–" + formatClock(w.End)
}

func formatClock(off time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(off/time.Hour), int(off%time.Hour/time.Minute))
}

// describeDays writes consecutive days as a range ("Tue–Thu") and others
// as a list ("Mon, Wed, Fri").
func describeDays(days []time.Weekday) string {
	sorted := slices.Clone(days)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	abbr := func(d time.Weekday) string { return d.String()[:3] }
	if len(sorted) > 2 && int(sorted[len(sorted)-1]-sorted[0]) == len(sorted)-1 {
		return abbr(sorted[0]) + "–" + abbr(sorted[len(sorted)-1])
	}
	names := make([]string, len(sorted))
	for i, d := range sorted {
		names[i] = abbr(d)
	}
	return strings.Join(names, ", ")
}
