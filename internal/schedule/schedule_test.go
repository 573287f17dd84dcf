package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/internal/testclock"
)

// claimer is an in-memory Claimer with the PostgreSQL store's semantics:
// a claim wins only for a due time after the last claimed one. failLast and
// failClaim make the next calls fail.
type claimer struct {
	mu                  sync.Mutex
	last                map[string]time.Time
	failLast, failClaim int
}

func newClaimer() *claimer { return &claimer{last: make(map[string]time.Time)} }

func (c *claimer) ClaimRun(_ context.Context, job string, due time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failClaim > 0 {
		c.failClaim--
		return false, errors.New("claimer down")
	}
	if last, ok := c.last[job]; ok && !last.Before(due) {
		return false, nil
	}
	c.last[job] = due
	return true, nil
}

func (c *claimer) LastRun(_ context.Context, job string) (time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failLast > 0 {
		c.failLast--
		return time.Time{}, false, errors.New("claimer down")
	}
	last, ok := c.last[job]
	return last, ok, nil
}

// runs records the due times each job ran for.
type runs struct {
	mu   sync.Mutex
	dues map[string][]time.Time
}

func newRuns() *runs { return &runs{dues: make(map[string][]time.Time)} }

// job returns a job that records its runs in r, then returns run's result
// (nil when run is nil).
func (r *runs) job(name, spec string, run func() error) Job {
	return Job{Name: name, Spec: spec, Run: func(_ context.Context, due time.Time) error {
		r.mu.Lock()
		r.dues[name] = append(r.dues[name], due)
		r.mu.Unlock()
		if run != nil {
			return run()
		}
		return nil
	}}
}

func (r *runs) get(name string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.dues[name])
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the logged JSON lines.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// newScheduler returns a Scheduler on clk with short waits, logging to logs
// (when not nil).
func newScheduler(t *testing.T, loc *time.Location, c Claimer, clk *testclock.Clock, logs *logBuffer, jobs ...Job) *Scheduler {
	t.Helper()
	log := zerolog.Nop()
	if logs != nil {
		log = zerolog.New(logs)
	}
	s, err := New(loc, c, log, clk.Now, jobs...)
	if err != nil {
		t.Fatal(err)
	}
	s.maxWait, s.retryWait = time.Millisecond, time.Millisecond
	return s
}

// start runs s until the returned stop is called (or the test ends); stop
// waits for Run to return.
func start(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// settle waits until every job of every scheduler has seen clk's time with
// nothing left due: all runs due by then are done.
func settle(t *testing.T, clk *testclock.Clock, scheds ...*Scheduler) {
	t.Helper()
	now := clk.Now()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range scheds {
		for _, j := range s.jobs {
			for {
				s.mu.Lock()
				seen := s.checked[j.Name]
				s.mu.Unlock()
				if !seen.Before(now) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job %s did not settle at %v (last saw %v)", j.Name, now, seen)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// advance sets clk to each time from from to to by step, settling scheds
// at each.
func advance(t *testing.T, clk *testclock.Clock, from, to time.Time, step time.Duration, scheds ...*Scheduler) {
	t.Helper()
	for now := from; !now.After(to); now = now.Add(step) {
		clk.Set(now)
		settle(t, clk, scheds...)
	}
}

func day(d, h, m int) time.Time { return time.Date(2025, 3, d, h, m, 0, 0, time.UTC) }

func equalTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, time.Time.Equal)
}

func TestDailyJobRunsOncePerDay(t *testing.T) {
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	s := newScheduler(t, time.UTC, newClaimer(), clk, nil, r.job("daily", "0 3 * * *", nil))
	start(t, s)
	settle(t, clk, s)

	steps := []struct {
		at   time.Time
		want []time.Time
	}{
		{day(10, 10, 0), nil},
		{day(11, 2, 59), nil},
		{day(11, 3, 0), []time.Time{day(11, 3, 0)}},
		{day(11, 23, 59), []time.Time{day(11, 3, 0)}},
		{day(12, 3, 1), []time.Time{day(11, 3, 0), day(12, 3, 0)}},
	}
	for _, st := range steps {
		clk.Set(st.at)
		settle(t, clk, s)
		if got := r.get("daily"); !equalTimes(got, st.want) {
			t.Fatalf("at %v: runs = %v, want %v", st.at, got, st.want)
		}
	}
	if next := s.Next()["daily"]; !next.Equal(day(13, 3, 0)) {
		t.Errorf("Next = %v, want %v", next, day(13, 3, 0))
	}

	advance(t, clk, day(12, 4, 0), day(16, 4, 0), time.Hour, s)
	want := []time.Time{day(11, 3, 0), day(12, 3, 0), day(13, 3, 0), day(14, 3, 0), day(15, 3, 0), day(16, 3, 0)}
	if got := r.get("daily"); !equalTimes(got, want) {
		t.Errorf("after five days: runs = %v, want %v", got, want)
	}
}

func TestFirstStartDoesNotCatchUp(t *testing.T) {
	c := newClaimer()
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	j := r.job("daily", "0 3 * * *", nil)

	s := newScheduler(t, time.UTC, c, clk, nil, j)
	stop := start(t, s)
	settle(t, clk, s)
	stop()
	if got := r.get("daily"); len(got) != 0 {
		t.Fatalf("first start: runs = %v, want none", got)
	}
	if last, ok, _ := c.LastRun(t.Context(), "daily"); !ok || !last.Equal(day(10, 3, 0)) {
		t.Fatalf("baseline = %v, %v; want %v", last, ok, day(10, 3, 0))
	}

	// A restart before the next due time runs nothing.
	clk.Set(day(10, 12, 0))
	s = newScheduler(t, time.UTC, c, clk, nil, j)
	stop = start(t, s)
	settle(t, clk, s)
	stop()
	if got := r.get("daily"); len(got) != 0 {
		t.Fatalf("restart before the next due time: runs = %v, want none", got)
	}

	// Down over the next due time: the baseline makes the restart catch up.
	clk.Set(day(11, 10, 0))
	s = newScheduler(t, time.UTC, c, clk, nil, j)
	start(t, s)
	settle(t, clk, s)
	if got, want := r.get("daily"), []time.Time{day(11, 3, 0)}; !equalTimes(got, want) {
		t.Fatalf("restart after a missed due time: runs = %v, want %v", got, want)
	}
}

func TestRestartCatchesUpOnce(t *testing.T) {
	c := newClaimer()
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	jobs := []Job{r.job("daily", "0 3 * * *", nil), r.job("weekly", "0 4 * * 1", nil)} // 2025-03-10 is a Monday

	s := newScheduler(t, time.UTC, c, clk, nil, jobs...)
	stop := start(t, s)
	advance(t, clk, day(10, 10, 0), day(11, 10, 0), time.Hour, s)
	stop()
	if got, want := r.get("daily"), []time.Time{day(11, 3, 0)}; !equalTimes(got, want) {
		t.Fatalf("before the restart: runs = %v, want %v", got, want)
	}

	// Down over three daily and two weekly due times.
	clk.Set(day(24, 12, 0))
	s = newScheduler(t, time.UTC, c, clk, nil, jobs...)
	stop = start(t, s)
	settle(t, clk, s)
	if got, want := r.get("daily"), []time.Time{day(11, 3, 0), day(24, 3, 0)}; !equalTimes(got, want) {
		t.Fatalf("after the restart: daily runs = %v, want %v (one catch-up, the latest)", got, want)
	}
	if got, want := r.get("weekly"), []time.Time{day(24, 4, 0)}; !equalTimes(got, want) {
		t.Fatalf("after the restart: weekly runs = %v, want %v (one catch-up, the latest)", got, want)
	}

	advance(t, clk, day(24, 13, 0), day(25, 13, 0), time.Hour, s)
	stop()
	if got, want := r.get("daily"), []time.Time{day(11, 3, 0), day(24, 3, 0), day(25, 3, 0)}; !equalTimes(got, want) {
		t.Fatalf("after the catch-up: runs = %v, want %v", got, want)
	}

	// An up-to-date restart runs nothing.
	clk.Set(day(25, 14, 0))
	s = newScheduler(t, time.UTC, c, clk, nil, jobs...)
	start(t, s)
	settle(t, clk, s)
	if got := r.get("daily"); len(got) != 3 {
		t.Errorf("up-to-date restart: runs = %v, want the same 3", got)
	}
}

func TestReplicasRunEachDueOnce(t *testing.T) {
	c := newClaimer()
	clk := testclock.New(day(10, 0, 30))
	r := newRuns()
	jobs := []Job{r.job("hourly", "0 * * * *", nil), r.job("daily", "0 3 * * *", nil)}
	a := newScheduler(t, time.UTC, c, clk, nil, jobs...)
	b := newScheduler(t, time.UTC, c, clk, nil, jobs...)
	start(t, a)
	start(t, b)
	settle(t, clk, a, b)

	advance(t, clk, day(10, 0, 50), day(12, 0, 30), 20*time.Minute, a, b)
	var wantHourly, wantDaily []time.Time
	for h := 1; h <= 48; h++ {
		wantHourly = append(wantHourly, day(10, h, 0))
	}
	wantDaily = []time.Time{day(10, 3, 0), day(11, 3, 0)}
	if got := r.get("hourly"); !equalTimes(got, wantHourly) {
		t.Errorf("hourly runs = %v, want %v", got, wantHourly)
	}
	if got := r.get("daily"); !equalTimes(got, wantDaily) {
		t.Errorf("daily runs = %v, want %v", got, wantDaily)
	}
}

func TestFailingJobsDoNotStopOthers(t *testing.T) {
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	logs := &logBuffer{}
	s := newScheduler(t, time.UTC, newClaimer(), clk, logs,
		r.job("fails", "0 3 * * *", func() error { return errors.New("disk full") }),
		r.job("panics", "0 3 * * *", func() error { panic("boom") }),
		r.job("works", "0 3 * * *", nil),
	)
	start(t, s)
	advance(t, clk, day(10, 10, 0), day(13, 10, 0), time.Hour, s)

	want := []time.Time{day(11, 3, 0), day(12, 3, 0), day(13, 3, 0)}
	for _, name := range []string{"fails", "panics", "works"} {
		if got := r.get(name); !equalTimes(got, want) {
			t.Errorf("%s runs = %v, want %v", name, got, want)
		}
	}

	count := map[string]int{}
	for _, l := range logs.lines(t) {
		switch {
		case l["job"] == "fails" && l["message"] == "scheduled job failed" && l["error"] == "disk full":
			count["fails"]++
		case l["job"] == "panics" && l["message"] == "scheduled job panicked" && l["panic"] == "boom":
			count["panics"]++
		}
	}
	if count["fails"] != 3 || count["panics"] != 3 {
		t.Errorf("logged %d failures of job fails and %d panics of job panics, want 3 each", count["fails"], count["panics"])
	}
}

func TestSlowRunDoesNotOverlap(t *testing.T) {
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	started := make(chan struct{})
	release := make(chan struct{})
	var (
		mu               sync.Mutex
		running, maxRuns int
	)
	first := true
	s := newScheduler(t, time.UTC, newClaimer(), clk, nil, r.job("slow", "0 3 * * *", func() error {
		mu.Lock()
		running++
		maxRuns = max(maxRuns, running)
		wait := first
		first = false
		mu.Unlock()
		if wait {
			close(started)
			<-release
		}
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}))
	start(t, s)
	settle(t, clk, s)

	clk.Set(day(11, 3, 0))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run did not start")
	}
	// Two more due times pass while the first run is still going.
	clk.Set(day(13, 12, 0))
	close(release)
	settle(t, clk, s)

	if got, want := r.get("slow"), []time.Time{day(11, 3, 0), day(13, 3, 0)}; !equalTimes(got, want) {
		t.Errorf("runs = %v, want %v (the slow one, then only the latest missed)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxRuns != 1 {
		t.Errorf("%d runs of the job overlapped, want 1 at a time", maxRuns)
	}
}

func TestClaimerErrorsAreRetried(t *testing.T) {
	c := newClaimer()
	c.failLast = 2
	clk := testclock.New(day(10, 10, 0))
	r := newRuns()
	logs := &logBuffer{}
	s := newScheduler(t, time.UTC, c, clk, logs, r.job("daily", "0 3 * * *", nil))
	start(t, s)
	settle(t, clk, s)

	c.mu.Lock()
	c.failClaim = 2
	c.mu.Unlock()
	clk.Set(day(11, 3, 0))
	settle(t, clk, s)
	if got, want := r.get("daily"), []time.Time{day(11, 3, 0)}; !equalTimes(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
	failures := 0
	for _, l := range logs.lines(t) {
		if l["job"] == "daily" && l["level"] == "error" {
			failures++
		}
	}
	if failures != 4 {
		t.Errorf("logged %d claimer errors, want 4", failures)
	}
}

func TestDaylightSaving(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(month time.Month, d, h, m int) time.Time { return time.Date(2025, month, d, h, m, 0, 0, berlin) }
	spec := "30 2 * * *"
	robfig, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		from, to time.Time
		change   time.Time // the day of the change
	}{
		{"spring forward", at(time.March, 28, 12, 0), at(time.April, 1, 12, 0), at(time.March, 30, 0, 0)},
		{"fall back", at(time.October, 24, 12, 0), at(time.October, 28, 12, 0), at(time.October, 26, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(tc.from)
			r := newRuns()
			s := newScheduler(t, berlin, newClaimer(), clk, nil, r.job("nightly", spec, nil), r.job("hourly", "0 * * * *", nil))
			start(t, s)
			advance(t, clk, tc.from, tc.to, 10*time.Minute, s)

			// robfig/cron's due times, minus a wall-clock time repeated by the
			// fall-back.
			var want []time.Time
			for d := robfig.Next(tc.from); !d.After(tc.to); d = robfig.Next(d) {
				if n := len(want); n > 0 && d.Format(time.DateTime) == want[n-1].Format(time.DateTime) {
					continue
				}
				want = append(want, d)
			}
			got := r.get("nightly")
			if !equalTimes(got, want) {
				t.Errorf("nightly runs = %v, want %v", got, want)
			}
			perDay := map[string]int{}
			for _, d := range got {
				perDay[d.In(berlin).Format(time.DateOnly)]++
			}
			for date, n := range perDay {
				if n > 1 {
					t.Errorf("nightly ran %d times on %s", n, date)
				}
			}

			// The hourly job follows real hours: 23 on spring-forward day, 25
			// on fall-back day.
			hours := int(tc.change.AddDate(0, 0, 1).Sub(tc.change) / time.Hour)
			n := 0
			for _, d := range r.get("hourly") {
				if d.In(berlin).Format(time.DateOnly) == tc.change.Format(time.DateOnly) {
					n++
				}
			}
			if n != hours {
				t.Errorf("hourly ran %d times on the day of the change, want %d", n, hours)
			}
		})
	}

	// A restart in the repeated hour does not catch up the run of the first
	// 02:30, but does catch up a missed one.
	first := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC).In(berlin) // 02:30 CEST
	restart := first.Add(75 * time.Minute)                             // 02:45 CET
	for _, tc := range []struct {
		name string
		last time.Time
		want []time.Time
	}{
		{"after the run", first, nil},
		{"after a missed run", first.AddDate(0, 0, -1), []time.Time{first}},
	} {
		t.Run("restart "+tc.name, func(t *testing.T) {
			c := newClaimer()
			c.last["nightly"] = tc.last
			clk := testclock.New(restart)
			r := newRuns()
			s := newScheduler(t, berlin, c, clk, nil, r.job("nightly", spec, nil))
			start(t, s)
			settle(t, clk, s)
			if got := r.get("nightly"); !equalTimes(got, tc.want) {
				t.Errorf("runs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)) // 13:00 in Berlin
	nop := func(context.Context, time.Time) error { return nil }
	s, err := New(berlin, newClaimer(), zerolog.Nop(), clk.Now,
		Job{Name: "nightly", Spec: "30 2 * * *", Run: nop},
		Job{Name: "weekly", Spec: "@weekly", Run: nop},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"nightly": time.Date(2025, 3, 11, 2, 30, 0, 0, berlin),
		"weekly":  time.Date(2025, 3, 16, 0, 0, 0, 0, berlin),
	}
	got := s.Next()
	if len(got) != len(want) {
		t.Fatalf("Next = %v, want %v", got, want)
	}
	for name, w := range want {
		if !got[name].Equal(w) || got[name].Location() != berlin {
			t.Errorf("Next[%s] = %v, want %v", name, got[name], w)
		}
	}
}

func TestNewErrors(t *testing.T) {
	nop := func(context.Context, time.Time) error { return nil }
	ok := Job{Name: "ok", Spec: "0 3 * * *", Run: nop}
	tests := []struct {
		name    string
		loc     *time.Location
		claimer Claimer
		jobs    []Job
		want    []string // in the error
	}{
		{"bad spec", time.UTC, newClaimer(), []Job{ok, {Name: "prune", Spec: "61 * * * *", Run: nop}}, []string{"prune", "61 * * * *"}},
		{"six fields", time.UTC, newClaimer(), []Job{{Name: "prune", Spec: "0 0 3 * * *", Run: nop}}, []string{"prune", "0 0 3 * * *"}},
		{"@every", time.UTC, newClaimer(), []Job{{Name: "poll", Spec: "@every 1h", Run: nop}}, []string{"poll", "@every 1h"}},
		{"never fires", time.UTC, newClaimer(), []Job{{Name: "feb30", Spec: "0 0 30 2 *", Run: nop}}, []string{"feb30", "never fires"}},
		{"no name", time.UTC, newClaimer(), []Job{{Spec: "0 3 * * *", Run: nop}}, []string{"no name"}},
		{"no run", time.UTC, newClaimer(), []Job{{Name: "idle", Spec: "0 3 * * *"}}, []string{"idle"}},
		{"twice", time.UTC, newClaimer(), []Job{ok, ok}, []string{"ok", "twice"}},
		{"no location", nil, newClaimer(), []Job{ok}, []string{"location"}},
		{"no claimer", time.UTC, nil, []Job{ok}, []string{"claimer"}},
	}
	for _, tt := range tests {
		_, err := New(tt.loc, tt.claimer, zerolog.Nop(), nil, tt.jobs...)
		if err == nil {
			t.Errorf("%s: got nil error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, w)
			}
		}
	}
}
