package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestBindingDrift(t *testing.T) {
	approved := ops.Report{Env: "production", Version: "v2", ImageID: "sha256:aaaa", OverrideWindow: "hotfix",
		Checks: []ops.Check{
			{Name: "disk.free", Status: ops.CheckPass, Message: "12.1 GiB free"},
			{Name: "window", Status: ops.CheckWarn, Message: "outside the window; override: \"hotfix\""},
			{Name: "snapshots.fresh", Status: ops.CheckPass, Message: "the latest snapshot, a.sql.gz, was taken 3m ago"},
		},
		Pending:  []ops.Migration{{Version: 3, Name: "drop_legacy"}, {Version: 2, Name: "add_index"}},
		Findings: []ops.Finding{{Migration: "000003_drop_legacy", Rule: ops.RuleDropColumn, Message: "drops column legacy"}},
	}
	b := approved.Binding()
	if got := b.Request("production", "v2", time.Time{}); got.OverrideWindow != "hotfix" || got.AllowDestructive != "" {
		t.Errorf("the re-check does not repeat the options: %+v", got)
	}
	if strings.Join(b.Migrations, ",") != "2_add_index,3_drop_legacy" {
		t.Errorf("migrations %v, want them in version order", b.Migrations)
	}

	same := func(edit func(r *ops.Report)) ops.Report {
		r := approved
		r.Checks = append([]ops.Check(nil), approved.Checks...)
		r.Pending = append([]ops.Migration(nil), approved.Pending...)
		r.Findings = append([]ops.Finding(nil), approved.Findings...)
		edit(&r)
		return r
	}
	for name, tc := range map[string]struct {
		edit func(r *ops.Report)
		want string // a substring of the drift; empty: no drift
	}{
		"reworded":              {func(r *ops.Report) { r.Checks[0].Message = "11.9 GiB free"; r.Checks[2].Message = "b.sql.gz, 1m ago" }, ""},
		"better":                {func(r *ops.Report) { r.Checks[1].Status = ops.CheckPass }, ""},
		"reordered":             {func(r *ops.Report) { r.Checks[0], r.Checks[2] = r.Checks[2], r.Checks[0] }, ""},
		"a check worse":         {func(r *ops.Report) { r.Checks[0].Status = ops.CheckWarn }, "disk.free is now warn, approved as pass: 12.1 GiB free"},
		"a warning now failing": {func(r *ops.Report) { r.Checks[1].Status = ops.CheckFail }, "window is now fail, approved as warn"},
		"a new check failing": {func(r *ops.Report) {
			r.Checks = append(r.Checks, ops.Check{Name: "lock.free", Status: ops.CheckFail, Message: "held"})
		}, "lock.free is now fail, approved as pass"},
		"another image":          {func(r *ops.Report) { r.ImageID = "sha256:bbbb" }, "the image changed: it is now"},
		"another migration":      {func(r *ops.Report) { r.Pending = append(r.Pending, ops.Migration{Version: 4, Name: "more"}) }, "the pending migrations are now [2_add_index, 3_drop_legacy, 4_more]"},
		"another lint finding":   {func(r *ops.Report) { r.Findings[0].Rule = ops.RuleDropTable }, "lint findings"},
		"a new check that warns": {func(r *ops.Report) { r.Checks = append(r.Checks, ops.Check{Name: "proxy.mode", Status: ops.CheckWarn}) }, "proxy.mode is now warn"},
	} {
		drift := strings.Join(b.Drift(same(tc.edit)), "; ")
		switch {
		case tc.want == "" && drift != "":
			t.Errorf("%s: drift %q, want none", name, drift)
		case tc.want != "" && !strings.Contains(drift, tc.want):
			t.Errorf("%s: drift %q, want it to say %q", name, drift, tc.want)
		}
	}
}

func TestApprovalExpired(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	a := ops.Approval{Needed: 1, Expires: at}
	if a.Expired(at.Add(-time.Second)) || !a.Expired(at) || !a.Expired(at.Add(time.Minute)) {
		t.Error("an approval is valid strictly before its deadline")
	}
}
