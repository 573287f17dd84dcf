package schedule

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// Job is one scheduled job.
type Job struct {
	// Name identifies the job's runs in the Claimer; keep it stable, e.g.
	// "snapshot-prune".
	Name string
	// Spec is a standard 5-field cron spec ("0 3 * * *") or a descriptor
	// such as "@daily", as cron.ParseStandard reads them, in the
	// scheduler's location unless it starts with CRON_TZ=<zone>; "@every"
	// is not accepted.
	Spec string
	// Run does the work of the run due at due. ctx ends when the
	// scheduler stops.
	Run func(ctx context.Context, due time.Time) error
}

// Claimer records job runs so each scheduled time runs once across replicas
// and restarts.
type Claimer interface {
	// ClaimRun claims the run of job due at due: true for exactly one
	// caller, once. An implementation may also refuse (false) a due time
	// not after the last one claimed for job, as the PostgreSQL store does.
	ClaimRun(ctx context.Context, job string, due time.Time) (bool, error)
	// LastRun is the due time of the job's last claimed run (ok false if
	// never).
	LastRun(ctx context.Context, job string) (due time.Time, ok bool, err error)
}

const (
	// maxWait bounds a wait for the next due time, so a wall clock that
	// jumps (NTP, a suspended host, a test's clock) is noticed soon.
	maxWait = time.Second
	// retryWait is the pause after a Claimer error before trying again.
	retryWait = 30 * time.Second
)

// lookback lists how far back prev searches for the last due time, widening
// until it finds one (a spec fires at least once in five years, or never).
var lookback = []time.Duration{
	2 * time.Minute,
	2 * time.Hour,
	25 * time.Hour,
	32 * 24 * time.Hour,
	367 * 24 * time.Hour,
	5 * 366 * 24 * time.Hour,
}

// Scheduler runs Jobs in one location's wall-clock time. Create it with New.
type Scheduler struct {
	loc     *time.Location
	claimer Claimer
	log     zerolog.Logger
	now     func() time.Time
	jobs    []*job

	maxWait, retryWait time.Duration // tests shorten them

	mu      sync.Mutex
	checked map[string]time.Time // job → the latest now at which nothing was due
}

// job is a Job with its parsed schedule.
type job struct {
	Job
	sched *cron.SpecSchedule
	loc   *time.Location // where the spec's wall-clock times are read
}

// New returns a Scheduler of jobs whose specs are read in loc, claiming runs
// through c and reading the time from now (time.Now when nil). It checks
// every job: a bad or never-firing spec, a missing name or Run, or a name
// used twice is an error naming the job.
func New(loc *time.Location, c Claimer, log zerolog.Logger, now func() time.Time, jobs ...Job) (*Scheduler, error) {
	if loc == nil {
		return nil, errors.New("new scheduler: nil location")
	}
	if c == nil {
		return nil, errors.New("new scheduler: nil claimer")
	}
	if now == nil {
		now = time.Now
	}
	s := &Scheduler{
		loc:       loc,
		claimer:   c,
		log:       log,
		now:       now,
		maxWait:   maxWait,
		retryWait: retryWait,
		checked:   make(map[string]time.Time),
	}
	seen := make(map[string]bool)
	for _, j := range jobs {
		if j.Name == "" {
			return nil, fmt.Errorf("new scheduler: job with spec %q has no name", j.Spec)
		}
		if seen[j.Name] {
			return nil, fmt.Errorf("new scheduler: job %s listed twice", j.Name)
		}
		seen[j.Name] = true
		if j.Run == nil {
			return nil, fmt.Errorf("new scheduler: job %s has no Run func", j.Name)
		}
		parsed, err := cron.ParseStandard(j.Spec)
		if err != nil {
			return nil, fmt.Errorf("new scheduler: job %s: bad spec %q: %w", j.Name, j.Spec, err)
		}
		sched, ok := parsed.(*cron.SpecSchedule)
		if !ok {
			return nil, fmt.Errorf("new scheduler: job %s: spec %q is not a cron schedule (@every is not supported)", j.Name, j.Spec)
		}
		jl := loc
		if sched.Location != time.Local { // a CRON_TZ= or TZ= prefix
			jl = sched.Location
		}
		jb := &job{Job: j, sched: sched, loc: jl}
		if jb.next(now()).IsZero() {
			return nil, fmt.Errorf("new scheduler: job %s: spec %q never fires", j.Name, j.Spec)
		}
		s.jobs = append(s.jobs, jb)
	}
	return s, nil
}

// Run runs the jobs until ctx ends, then waits for runs in progress (their
// ctx has ended too) and returns.
//
// On start, a job whose last due time at or before now was never claimed,
// because no replica was up then, runs once to catch up: only that most
// recent missed run, never a backlog. A job never run before is not caught
// up: Run records its last due time as a baseline, without running it, and
// its first run is its next due time. After that each job runs at each due
// time, claimed first through the Claimer so it runs once however many
// replicas or restarts. A job runs one run at a time: due times passed
// while a run was in progress make one run right after it, for the latest.
// A job's error or panic is logged with its name and stops nothing.
//
// Due times are those of robfig/cron in the job's location, so a time
// skipped by a daylight-saving change (02:30 on the spring-forward day in
// Europe/Berlin) does not run that day, except that a wall-clock time that
// occurs twice (fall-back) runs once, unless the job runs every hour.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
	<-ctx.Done() // without jobs
}

// Next lists each job's next due time after now, by job name, in the
// scheduler's location.
func (s *Scheduler) Next() map[string]time.Time {
	now := s.now()
	next := make(map[string]time.Time, len(s.jobs))
	for _, j := range s.jobs {
		next[j.Name] = j.next(now).In(s.loc)
	}
	return next
}

// loop runs j's due times until ctx ends.
func (s *Scheduler) loop(ctx context.Context, j *job) {
	log := s.log.With().Str("job", j.Name).Logger()
	cursor, ok := s.start(ctx, j, log)
	for ok {
		now := s.now()
		next := j.next(cursor)
		if !next.IsZero() && !next.After(now) {
			due := j.prev(now) // the latest due time; never a backlog
			if due.Before(next) {
				due = next
			}
			won, err := s.claimer.ClaimRun(ctx, j.Name, due)
			if err != nil {
				log.Error().Err(err).Time("due", due).Msg("scheduled job: claim failed; retrying")
				ok = s.sleep(ctx, s.retryWait)
				continue
			}
			if won {
				s.run(ctx, j, due, log)
			} else {
				log.Debug().Time("due", due).Msg("scheduled job: run claimed elsewhere")
			}
			cursor = due
			continue
		}
		s.mu.Lock()
		s.checked[j.Name] = now
		s.mu.Unlock()
		wait := s.maxWait
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		ok = s.sleep(ctx, wait)
	}
}

// start settles j on start: it records the baseline of a job never run, or
// catches up the last missed run, and returns the due time after which the
// loop looks for runs, or false when ctx ended first.
func (s *Scheduler) start(ctx context.Context, j *job, log zerolog.Logger) (time.Time, bool) {
	for {
		cursor, err := s.startOnce(ctx, j, log)
		if err == nil {
			return cursor, true
		}
		log.Error().Err(err).Msg("scheduled job: start failed; retrying")
		if !s.sleep(ctx, s.retryWait) {
			return time.Time{}, false
		}
	}
}

// startOnce is one attempt of start.
func (s *Scheduler) startOnce(ctx context.Context, j *job, log zerolog.Logger) (time.Time, error) {
	last, ran, err := s.claimer.LastRun(ctx, j.Name)
	if err != nil {
		return time.Time{}, err
	}
	now := s.now()
	prev := j.prev(now)
	switch {
	case prev.IsZero(): // no due time in five years: nothing to catch up
		if ran && last.After(now) {
			return last, nil
		}
		return now, nil
	case !ran:
		// The claim records the baseline; losing it to another replica
		// starting at the same time is as good.
		if _, err := s.claimer.ClaimRun(ctx, j.Name, prev); err != nil {
			return time.Time{}, err
		}
		log.Info().Time("baseline", prev).Time("next", j.next(now)).Msg("scheduled job: first start, not catching up")
		return prev, nil
	case last.Before(prev):
		won, err := s.claimer.ClaimRun(ctx, j.Name, prev)
		if err != nil {
			return time.Time{}, err
		}
		if won {
			log.Info().Time("last", last).Time("due", prev).Msg("scheduled job: catching up the missed run")
			s.run(ctx, j, prev, log)
		}
		return prev, nil
	default: // up to date; last may be later than prev by another replica's clock
		return last, nil
	}
}

// run runs j for due, logging its outcome; a panic is recovered and logged.
func (s *Scheduler) run(ctx context.Context, j *job, due time.Time, log zerolog.Logger) {
	log = log.With().Time("due", due.In(j.loc)).Logger()
	started := time.Now()
	defer func() {
		if r := recover(); r != nil {
			log.Error().Interface("panic", r).Str("stack", string(debug.Stack())).Msg("scheduled job panicked")
		}
	}()
	log.Info().Msg("scheduled job started")
	if err := j.Run(ctx, due.In(j.loc)); err != nil {
		log.Error().Err(err).Dur("took", time.Since(started)).Msg("scheduled job failed")
		return
	}
	log.Info().Dur("took", time.Since(started)).Msg("scheduled job done")
}

// sleep waits d or until ctx ends, reporting false if ctx ended.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// next is j's first due time after t, or zero if none in five years. It
// skips the second occurrence of a wall-clock time repeated by a
// daylight-saving fall-back, unless j runs every hour.
func (j *job) next(t time.Time) time.Time {
	for {
		t = j.sched.Next(t.In(j.loc))
		if t.IsZero() || !j.repeated(t) {
			return t
		}
	}
}

// prev is j's last due time at or before t, or zero if none in five years.
func (j *job) prev(t time.Time) time.Time {
	for _, back := range lookback {
		var last time.Time
		for d := j.next(t.Add(-back)); !d.IsZero() && !d.After(t); d = j.next(d) {
			last = d
		}
		if !last.IsZero() {
			return last
		}
	}
	return time.Time{}
}

// everyHour has the bit of each hour of the day set.
const everyHour = 1<<24 - 1

// repeated reports whether t is the second occurrence of its wall-clock time
// in j's location (after a fall-back) and j does not run every hour, so
// that the first occurrence was due already.
func (j *job) repeated(t time.Time) bool {
	if j.sched.Hour&everyHour == everyHour {
		return false
	}
	t = t.In(j.loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, off := t.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	back := time.Duration(before-off) * time.Second // how far the clock was set back
	return back > 0 && t.Sub(start) < back
}
