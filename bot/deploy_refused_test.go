package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

// refusingEnvs answers every pre-flight with a report whose window check
// fails.
type refusingEnvs struct{ bot.Environments }

func (refusingEnvs) Policy(string) (ops.Policy, bool) { return ops.Policy{}, true }

func (refusingEnvs) Preflight(_ context.Context, req ops.PreflightRequest) (ops.Report, error) {
	return ops.Report{Env: req.Env, Version: req.Version, Image: "togather-server:" + req.Version, Checks: []ops.Check{
		{Name: "image", Status: ops.CheckPass, Message: "present"},
		{Name: "window", Status: ops.CheckFail, Message: "Saturday is outside the deploy window"},
	}}, nil
}

// createdOps records the operations created.
type createdOps struct {
	bot.Operations
	created []ops.Operation
}

func (c *createdOps) Create(_ context.Context, op ops.Operation) error {
	c.created = append(c.created, op)
	return nil
}

func TestDeployRefusedByPreflightIsInHistoryAndAudit(t *testing.T) {
	audit, journal, poster := &auditLog{}, &createdOps{}, &admPoster{}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	b := bot.New(bot.Options{
		Environments: []string{"staging"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      audit,
		Ops:          journal,
		Envs:         refusingEnvs{},
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Logger:       zerolog.Nop(),
		Now:          func() time.Time { return now },
	})
	b.SetPoster(poster)
	var r replies
	if err := b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "deploy staging v1.2.3 --reason hotfix"}, &r); err != nil {
		t.Fatal(err)
	}
	wantAll(t, "reply", r[len(r)-1].Text, "pre-flight checks of `v1.2.3` on staging failed")

	if len(journal.created) != 1 {
		t.Fatalf("%d operations recorded, want the refused deploy", len(journal.created))
	}
	op := journal.created[0]
	if op.Kind != ops.KindDeploy || op.State != ops.StepFailed || op.Version != "v1.2.3" || op.Requester != "UALICE" || op.Reason != "hotfix" ||
		op.Error != "refused by pre-flight: window: Saturday is outside the deploy window" || op.Chat["channel"] != "CDEPLOYS" || op.Chat["ts"] != "ts-1" {
		t.Errorf("recorded operation = %+v", op)
	}
	var refusal *bot.AuditEntry
	for i, e := range audit.entries {
		if e.Action == "deploy" && e.Decision == bot.Denied {
			refusal = &audit.entries[i]
		}
	}
	if refusal == nil {
		t.Fatalf("no denied deploy in the audit log: %+v", audit.entries)
	}
	if refusal.Actor != "UALICE" || refusal.Environment != "staging" ||
		!strings.Contains(refusal.Detail, "v1.2.3 refused by pre-flight: window: Saturday is outside the deploy window") || !strings.Contains(refusal.Detail, op.ID) {
		t.Errorf("audit entry = %+v", *refusal)
	}
}
