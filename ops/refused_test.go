package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestRefusedDeploy(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r := ops.Report{Env: "staging", Version: "v2", Image: "togather-server:v2", Checks: []ops.Check{
		{Name: "image", Status: ops.CheckPass, Message: "present"},
		{Name: "window", Status: ops.CheckFail, Message: "outside the deploy window"},
		{Name: "migrations.lint", Status: ops.CheckFail, Message: "DROP TABLE legacy"},
		{Name: "env_file.mode", Status: ops.CheckWarn, Message: "mode 0644"},
	}}
	op := ops.RefusedDeploy(r, "U1", "hotfix", map[string]string{"channel": "C1"}, at)
	if op.Kind != ops.KindDeploy || op.Env != "staging" || op.Version != "v2" || op.Requester != "U1" || op.Reason != "hotfix" ||
		op.State != ops.StepFailed || !op.CreatedAt.Equal(at) || !strings.HasPrefix(op.ID, "dep_") || op.Chat["channel"] != "C1" {
		t.Errorf("operation = %+v", op)
	}
	want := "refused by pre-flight: window: outside the deploy window; migrations.lint: DROP TABLE legacy"
	if op.Error != want {
		t.Errorf("error = %q, want %q", op.Error, want)
	}
	if n := len(op.Journal); n != 2 || op.Journal[0].Detail != "deploy of v2 to staging requested by U1" ||
		op.Journal[1].Step != ops.StepFailed || op.Journal[1].Phase != ops.PhaseEnd || !strings.HasPrefix(op.Journal[1].Detail, want) {
		t.Errorf("journal = %+v", op.Journal)
	}
}
