package bot_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestHistory(t *testing.T) {
	at := func(min int) time.Time { return admNow.Add(time.Duration(min) * time.Minute) }
	f := newAdmin(t)
	f.ops.list = []ops.Operation{
		{ID: "dep_3", Kind: ops.KindDeploy, Env: "staging", Requester: "UALICE", Version: "v1.3.0", State: ops.StepSwitched, CreatedAt: at(-5), UpdatedAt: at(-3)},
		{ID: "rbk_2", Kind: ops.KindRollback, Env: "staging", Requester: "cli:bob", ToSlot: ops.Blue, State: ops.StepDone, CreatedAt: at(-60), UpdatedAt: at(-60).Add(12 * time.Second)},
		{ID: "dep_2", Kind: ops.KindDeploy, Env: "staging", Requester: "UBOB", Version: "v1.2.9", State: ops.StepFailed, CreatedAt: at(-120), UpdatedAt: at(-120).Add(4*time.Minute + 7*time.Second)},
		{ID: "dep_1", Kind: ops.KindDeploy, Env: "staging", Requester: "UBOB", Version: "v1.2.8", State: ops.StepNeedsAttention, CreatedAt: at(-3000), UpdatedAt: at(-3000).Add(2*time.Hour + 5*time.Minute)},
	}
	r, err := f.run(t, "UBOB", "history staging")
	if err != nil {
		t.Fatal(err)
	}
	if f.ops.gotEnv != "staging" || f.ops.gotLimit != 10 {
		t.Errorf("History(%q, %d), want staging, 10", f.ops.gotEnv, f.ops.gotLimit)
	}
	got := strings.Split(r.last(t), "\n")
	want := []string{
		"*Last 4 operation(s) on staging*",
		":hourglass_flowing_sand: 2026-11-27 09:55 UTC · deploy `v1.3.0` · *switched* · 2m00s · <@UALICE>",
		":white_check_mark: 2026-11-27 09:00 UTC · rollback to blue · *done* · 12s · cli:bob",
		":x: 2026-11-27 08:00 UTC · deploy `v1.2.9` · *failed* · 4m07s · <@UBOB>",
		":rotating_light: 2026-11-25 08:00 UTC · deploy `v1.2.8` · *needs_attention* · 2h05m · <@UBOB>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHistoryEmptyAndFailing(t *testing.T) {
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "history production")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.last(t); got != "No operation has run on production yet." {
		t.Errorf("empty history: %q", got)
	}
	f.ops.err = errors.New("connection refused")
	r, err = f.run(t, "UBOB", "history production")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %v, want the journal's", err)
	}
	wantAll(t, "reply", r.last(t), "Could not read the history of production: connection refused", "togather-chatops history production")
}
