package ops

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaintenanceState is where a maintenance window is in its life:
// proposed → scheduled → starting → active → ending → ended, with held
// (the start could not complete) and cancelled on the side.
type MaintenanceState string

// Maintenance window states.
const (
	MaintProposed  MaintenanceState = "proposed"  // has warnings and awaits its owner's confirmation
	MaintScheduled MaintenanceState = "scheduled" // announced, waiting for its start
	MaintStarting  MaintenanceState = "starting"  // taking the snapshot and entering maintenance mode
	MaintHeld      MaintenanceState = "held"      // the start could not complete; Held says why
	MaintActive    MaintenanceState = "active"    // in progress: alerts muted, 503 page if asked
	MaintEnding    MaintenanceState = "ending"    // leaving maintenance mode
	MaintEnded     MaintenanceState = "ended"     // over; the post-maintenance watch follows
	MaintCancelled MaintenanceState = "cancelled"
)

// Mode503 is the maintenance mode in which the proxy answers every request
// with a 503 maintenance page.
const Mode503 = "503"

// MaintenanceWindow is a planned period of maintenance of one environment.
type MaintenanceWindow struct {
	ID          int64
	Env         string
	Description string
	Owner       string // who scheduled it
	Mode        string // "" or Mode503
	Start, End  time.Time
	State       MaintenanceState
	CreatedAt   time.Time
	UpdatedAt   time.Time // when its state last moved
	StartedAt   time.Time // zero until it starts
	EndedAt     time.Time // zero until it ends
	Snapshot    string    // the pre-maintenance snapshot, once taken
	Held        string    // why the start is held
	// Channel and TS locate the announcement; its thread carries every
	// later announcement of the window.
	Channel, TS string
}

// Name is the window's id as people type it: MW-7.
func (w MaintenanceWindow) Name() string { return "MW-" + strconv.FormatInt(w.ID, 10) }

// Open reports whether the window has not started, ended or been cancelled.
func (w MaintenanceWindow) Open() bool {
	return w.State == MaintScheduled || w.State == MaintHeld || w.State == MaintProposed
}

// InProgress reports whether the environment is under maintenance: its
// alerts are muted, and VACUUM FULL and REINDEX may run.
func (w MaintenanceWindow) InProgress() bool {
	return w.State == MaintStarting || w.State == MaintActive || w.State == MaintEnding
}

// ParseMaintenanceID reads a window id, "MW-7" or "7".
func ParseMaintenanceID(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(s), "MW-"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid maintenance window id %q: use MW-7 or 7", s)
	}
	return n, nil
}

// MaintenanceStartLayout is how a start is written: a wall-clock time in
// the team's time zone.
const MaintenanceStartLayout = "2006-01-02T15:04"

// ParseMaintenanceStart reads a start written in MaintenanceStartLayout as
// a wall-clock time in loc. A time that does not exist there (skipped when
// clocks go forward) is an error; one that exists twice (when clocks go
// back) is the first of the two, with a note saying so.
func ParseMaintenanceStart(s string, loc *time.Location) (time.Time, string, error) {
	t, err := time.ParseInLocation(MaintenanceStartLayout, s, loc)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("invalid start %q: use YYYY-MM-DDTHH:MM, like 2026-12-08T02:00", s)
	}
	if t.Format(MaintenanceStartLayout) != s {
		return time.Time{}, "", fmt.Errorf("%s does not exist in %s: clocks go forward that night; pick another time", s, loc)
	}
	if earlier := t.Add(-time.Hour); earlier.Format(MaintenanceStartLayout) == s {
		t = earlier
	}
	if later := t.Add(time.Hour); later.Format(MaintenanceStartLayout) == s {
		return t, fmt.Sprintf("%s happens twice in %s (clocks go back that night); the first, %s, is used",
			s, loc, t.Format("15:04 MST")), nil
	}
	return t, "", nil
}

// MaintenanceRules are the team's rules for maintenance windows.
type MaintenanceRules struct {
	// BusinessHours is when a start needs confirmation; zero: Monday to
	// Friday 09:00–17:00 in Location.
	BusinessHours Window
	// MaxDuration is how long a window may last without confirmation;
	// zero: 4 h.
	MaxDuration time.Duration
	// AnnounceDays are how many days before the start it is announced
	// again; nil: 7, 3 and 1.
	AnnounceDays []int
	// Watch is how long the environment is watched after the window ends;
	// zero: 30 min.
	Watch time.Duration
	// Location is the team's time zone; nil: UTC.
	Location *time.Location
}

// WithDefaults fills the zero fields of r with the defaults.
func (r MaintenanceRules) WithDefaults() MaintenanceRules {
	if r.Location == nil {
		r.Location = time.UTC
	}
	if len(r.BusinessHours.Days) == 0 {
		r.BusinessHours = Window{
			Days:  []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
			Start: 9 * time.Hour, End: 17 * time.Hour,
		}
	}
	r.BusinessHours.Location = r.Location
	if r.MaxDuration <= 0 {
		r.MaxDuration = 4 * time.Hour
	}
	if r.AnnounceDays == nil {
		r.AnnounceDays = []int{7, 3, 1}
	}
	if r.Watch <= 0 {
		r.Watch = 30 * time.Minute
	}
	return r
}

// Warnings says why a window from start lasting d needs its owner's
// confirmation: it starts inside business hours, or lasts longer than
// MaxDuration. None means it can be scheduled at once.
func (r MaintenanceRules) Warnings(start time.Time, d time.Duration) []string {
	r = r.WithDefaults()
	var warn []string
	if open, _ := r.BusinessHours.Open(start); open {
		warn = append(warn, fmt.Sprintf("it starts inside business hours (%s), when users are most affected", r.BusinessHours))
	}
	if d > r.MaxDuration {
		warn = append(warn, fmt.Sprintf("it lasts %s, longer than the %s the guide allows", d, r.MaxDuration))
	}
	return warn
}

// Announcement is one announcement of a window before its start.
type Announcement struct {
	Event string    // its key, e.g. "announce-7d": posted once per window
	Days  int       // days before the start
	At    time.Time // when it is due
}

// Announcements lists the announcements before a window's start that were
// still in the future when it was scheduled, earliest first. Each is due at
// the start's wall-clock time that many calendar days earlier in the team's
// time zone, so a daylight-saving change in between moves nothing.
func (r MaintenanceRules) Announcements(w MaintenanceWindow) []Announcement {
	r = r.WithDefaults()
	start := w.Start.In(r.Location)
	var list []Announcement
	for _, d := range r.AnnounceDays {
		at := start.AddDate(0, 0, -d)
		if d > 0 && at.After(w.CreatedAt) {
			list = append(list, Announcement{Event: fmt.Sprintf("announce-%dd", d), Days: d, At: at})
		}
	}
	slices.SortFunc(list, func(a, b Announcement) int { return a.At.Compare(b.At) })
	return list
}
