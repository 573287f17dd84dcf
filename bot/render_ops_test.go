package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/ops"
)

// firstInstallEnvs answers every pre-flight with a refused report of a
// first install: 25 pending migrations, one with a finding.
type firstInstallEnvs struct{ refusingEnvs }

func (e firstInstallEnvs) Preflight(ctx context.Context, req ops.PreflightRequest) (ops.Report, error) {
	rep, err := e.refusingEnvs.Preflight(ctx, req)
	for v := 1; v <= 25; v++ {
		rep.Pending = append(rep.Pending, ops.Migration{Version: uint(v), Name: fmt.Sprintf("step_%d", v)})
	}
	rep.Findings = []ops.Finding{{Migration: "000024_step_24", Severity: ops.CheckWarn, Message: "CREATE INDEX without CONCURRENTLY"}}
	return rep, err
}

// TestReportListsFirstPendingMigrationsAndTheThreadAll keeps the report of
// a first install short — 10 of 25 migrations — and posts all of them,
// with their findings, in its thread.
func TestReportListsFirstPendingMigrationsAndTheThreadAll(t *testing.T) {
	poster := &admPoster{}
	b := bot.New(bot.Options{
		Environments: []string{"staging"},
		Authorizer:   bot.NewAuthorizer(adminRoles, nil, time.Minute, nil),
		Auditor:      &auditLog{},
		Ops:          &createdOps{},
		Envs:         firstInstallEnvs{},
		Channels:     bot.Channels{Deploys: "CDEPLOYS"},
		Logger:       zerolog.Nop(),
	})
	b.SetPoster(poster)
	var r replies
	if err := b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "deploy staging v1.2.3"}, &r); err != nil {
		t.Fatal(err)
	}
	if len(poster.posts) != 2 {
		t.Fatalf("%d posts, want the report and its thread: %+v", len(poster.posts), poster.posts)
	}
	report, thread := poster.posts[0], poster.posts[1]
	if n := strings.Count(report.m.Text, "\n• "); n != 10 || !strings.Contains(report.m.Text, "… and 15 more: the full list follows") ||
		strings.Contains(report.m.Text, "step_11") {
		t.Errorf("the report lists %d migrations:\n%s", n, report.m.Text)
	}
	if thread.thread != "ts-1" || strings.Count(thread.m.Text, "\n• ") != 25 ||
		!strings.Contains(thread.m.Text, "000024_step_24\n      :warning: CREATE INDEX without CONCURRENTLY") {
		t.Errorf("the thread (under %q) does not list every migration with its findings:\n%s", thread.thread, thread.m.Text)
	}

	// A pre-flight asked for directly replies with both.
	r = nil
	if err := b.HandleCommand(context.Background(), bot.Request{User: "UALICE", Text: "preflight staging v1.2.3"}, &r); err != nil {
		t.Fatal(err)
	}
	if len(r) != 2 || strings.Count(r[1].Text, "\n• ") != 25 {
		t.Errorf("preflight replies = %+v", r)
	}
}

// TestReportSaysWhatTheDeployStartsFrom: a passing live.health is shown
// too, so the approvers of a first deploy read that nothing serves yet; a
// failing one is shown once, with the blocking checks.
func TestReportSaysWhatTheDeployStartsFrom(t *testing.T) {
	first := ops.Check{Name: "live.health", Status: ops.CheckPass, Message: "first deploy: no container in either slot; the deploy starts blue, the slot the proxy names"}
	text := bot.RenderPreflight(ops.Report{Env: "staging", Version: "v1.0.0", Checks: []ops.Check{first}}).PlainText()
	if !strings.Contains(text, "Live: first deploy: no container in either slot") {
		t.Errorf("the report of a first deploy does not say so:\n%s", text)
	}
	down := ops.Check{Name: "live.health", Status: ops.CheckFail, Message: "the live slot blue is unhealthy"}
	text = bot.RenderPreflight(ops.Report{Env: "staging", Version: "v1.0.0", Checks: []ops.Check{down}}).PlainText()
	if n := strings.Count(text, down.Message); n != 1 || strings.Contains(text, "Live:") {
		t.Errorf("a failing live.health is shown %d times, want once among the blocking checks:\n%s", n, text)
	}
}

// PlainText, for the terminal, shows escaped user text as it was typed;
// preformatted text, never escaped in a Message, stays as it is.
func TestPlainTextUnescapesMrkdwn(t *testing.T) {
	m := bot.Message{Blocks: []bot.Block{bot.Section{Text: "reason: _&lt;!channel&gt; &amp; co_"}, bot.Preformatted{Text: "a &lt; b"}}}
	if got, want := m.PlainText(), "reason: _<!channel> & co_\na &lt; b"; got != want {
		t.Errorf("PlainText = %q, want %q", got, want)
	}
}
