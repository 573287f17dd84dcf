package slackfake_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// clickApprove posts an approval message, clicks Approve and returns the
// message ts and the callback the bot received.
func clickApprove(ctx context.Context, t *testing.T, f *slackfake.Fake, b *bot) (string, slack.InteractionCallback) {
	t.Helper()
	ts := mustPost(ctx, t, b.api, "C1", slack.MsgOptionText("approve?", false), approvalBlocks())
	if _, err := f.ClickButton(ctx, slackfake.Click{User: "U2", Channel: "C1", MessageTS: ts, ActionID: "approve"}); err != nil {
		t.Fatal(err)
	}
	evt := b.nextOf(ctx, t, socketmode.EventTypeInteractive)
	ic, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("data = %T", evt.Data)
	}
	return ts, ic
}

func TestClickButton(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	b := startBot(t, f, botConfig{})
	ts, ic := clickApprove(ctx, t, f, b)
	if ic.Type != slack.InteractionTypeBlockActions || len(ic.ActionCallback.BlockActions) != 1 {
		t.Fatalf("callback = %+v", ic)
	}
	act := ic.ActionCallback.BlockActions[0]
	if act.ActionID != "approve" || act.BlockID == "" || act.Value != "dep-42" || act.Text.Text != "Approve" || act.ActionTs == "" {
		t.Errorf("action = %+v", act)
	}
	if ic.User.ID != "U2" || ic.Channel.ID != "C1" || ic.Container.MessageTs != ts || ic.Message.Timestamp != ts ||
		len(ic.Message.Blocks.BlockSet) != 2 || ic.ResponseURL == "" || ic.TriggerID == "" {
		t.Errorf("callback = %+v", ic)
	}

	if _, err := f.ClickButton(ctx, slackfake.Click{User: "U2", Channel: "C1", MessageTS: ts, ActionID: "missing"}); err == nil {
		t.Error("click on a missing button succeeded")
	}
	stale := slackfake.Click{User: "U2", Channel: "C1", MessageTS: ts, ActionID: "gone", BlockID: "old", Value: "dep-41"}
	if _, err := f.ClickButton(ctx, stale); err != nil {
		t.Errorf("stale click with explicit ids: %v", err)
	}
	act = b.nextOf(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback).ActionCallback.BlockActions[0]
	if act.ActionID != "gone" || act.BlockID != "old" || act.Value != "dep-41" {
		t.Errorf("stale action = %+v", act)
	}
}

func TestResponseURL(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(url string) []slack.MsgOption
		check func(t *testing.T, f *slackfake.Fake, ts string)
	}{
		{
			name: "replace_original",
			opts: func(url string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionReplaceOriginal(url), slack.MsgOptionText("Approved by U2", false)}
			},
			check: func(t *testing.T, f *slackfake.Fake, ts string) {
				m, _ := f.Message("C1", ts)
				if m.Text != "Approved by U2" || slackfake.HasButton("approve")(m) || len(m.Edits) != 1 || m.Edits[0].Via != "response_url" {
					t.Errorf("message = %+v", m)
				}
			},
		},
		{
			name: "delete_original",
			opts: func(url string) []slack.MsgOption { return []slack.MsgOption{slack.MsgOptionDeleteOriginal(url)} },
			check: func(t *testing.T, f *slackfake.Fake, ts string) {
				if m, _ := f.Message("C1", ts); !m.Deleted {
					t.Errorf("message = %+v, want deleted", m)
				}
			},
		},
		{
			name: "in_channel",
			opts: func(url string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionResponseURL(url, slack.ResponseTypeInChannel), slack.MsgOptionText("for everyone", false)}
			},
			check: func(t *testing.T, f *slackfake.Fake, ts string) {
				msgs := f.Messages("C1")
				if last := msgs[len(msgs)-1]; last.Kind != slackfake.Response || last.Text != "for everyone" || last.Ephemeral {
					t.Errorf("last message = %+v", last)
				}
			},
		},
		{
			name: "ephemeral",
			opts: func(url string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionResponseURL(url, slack.ResponseTypeEphemeral), slack.MsgOptionText("just you", false)}
			},
			check: func(t *testing.T, f *slackfake.Fake, ts string) {
				if eph := f.Ephemerals("C1", "U2"); len(eph) != 1 || eph[0].Text != "just you" || eph[0].Kind != slackfake.Response {
					t.Errorf("ephemerals = %+v", eph)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFake(t)
			b := startBot(t, f, botConfig{})
			ts, ic := clickApprove(ctx, t, f, b)
			if _, _, err := b.api.PostMessageContext(ctx, "", tt.opts(ic.ResponseURL)...); err != nil {
				t.Fatalf("response_url post: %v", err)
			}
			tt.check(t, f, ts)
			if rs := f.Responses(); len(rs) != 1 || rs[0].URL != ic.ResponseURL || rs[0].User != "U2" {
				t.Errorf("responses = %+v", rs)
			}
		})
	}
}

func TestResponseURLUseLimit(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	b := startBot(t, f, botConfig{})
	if _, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "status"}); err != nil {
		t.Fatal(err)
	}
	url := b.nextOf(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).ResponseURL
	for i := range 6 {
		_, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(url, slack.ResponseTypeEphemeral), slack.MsgOptionText("update", false))
		if want := i == 5; (slackErr(err) == "used_url") != want {
			t.Fatalf("post %d: err = %v", i+1, err)
		}
	}
}

func deployModal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type: slack.VTModal, Title: plain(title), Submit: plain("Deploy"), Close: plain("Cancel"),
		CallbackID: "deploy_modal", PrivateMetadata: "dep-42",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("reason", plain("Reason"), nil, slack.NewPlainTextInputBlockElement(plain("why?"), "reason_input")),
			slack.NewInputBlock("env", plain("Environment"), nil, slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("pick"), "env_select",
				slack.NewOptionBlockObject("staging", plain("Staging"), nil),
				slack.NewOptionBlockObject("production", plain("Production"), nil))),
		}},
	}
}

func TestViews(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	var submissions atomic.Int32
	b := startBot(t, f, botConfig{ack: func(req socketmode.Request) any {
		if strings.Contains(string(req.Payload), `"view_submission"`) && submissions.Add(1) == 1 {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{"reason": "too short"})
		}
		return nil
	}})
	if _, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "deploy"}); err != nil {
		t.Fatal(err)
	}
	trigger := b.nextOf(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).TriggerID

	if _, err := b.api.OpenViewContext(ctx, trigger, deployModal(strings.Repeat("t", 25))); slackErr(err) != "invalid_arguments" {
		t.Errorf("25-char title: err = %v, want invalid_arguments", err)
	}
	if _, err := b.api.OpenViewContext(ctx, "bogus", deployModal("Deploy")); slackErr(err) != "invalid_trigger_id" {
		t.Errorf("unknown trigger: err = %v, want invalid_trigger_id", err)
	}
	opened, err := b.api.OpenViewContext(ctx, trigger, deployModal("Deploy"))
	if err != nil {
		t.Fatalf("views.open: %v", err)
	}
	v, err := f.WaitView(ctx, "deploy_modal")
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != opened.ID || v.User != "U1" || v.PrivateMetadata != "dep-42" || v.Title != "Deploy" {
		t.Errorf("view = %+v, opened = %+v", v, opened.View)
	}

	if _, err := b.api.UpdateViewContext(ctx, deployModal("Deploy v2"), "", "stale-hash", v.ID); slackErr(err) != "hash_conflict" {
		t.Errorf("stale hash: err = %v, want hash_conflict", err)
	}
	if _, err := b.api.UpdateViewContext(ctx, deployModal("Deploy v2"), "", opened.Hash, v.ID); err != nil {
		t.Fatalf("views.update: %v", err)
	}

	submit := slackfake.ViewSubmit{ViewID: v.ID, Values: map[string]map[string]string{
		"reason": {"reason_input": "hotfix"}, "env": {"env_select": "production"},
	}}
	env, err := f.SubmitView(ctx, submit)
	if err != nil {
		t.Fatal(err)
	}
	ic := b.nextOf(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	vals := ic.View.State.Values
	if ic.Type != slack.InteractionTypeViewSubmission || ic.View.ID != v.ID || ic.View.CallbackID != "deploy_modal" ||
		vals["reason"]["reason_input"].Value != "hotfix" || vals["env"]["env_select"].SelectedOption.Value != "production" {
		t.Errorf("submission = %+v", ic)
	}
	if _, err := f.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	if got := f.Views()[0]; got.Errors["reason"] != "too short" || got.Closed || got.Title != "Deploy v2" || got.Updates != 1 {
		t.Errorf("view after errors = %+v", got)
	}

	pushed, err := b.api.PushViewContext(ctx, ic.TriggerID, deployModal("Confirm"))
	if err != nil {
		t.Fatalf("views.push: %v", err)
	}
	if pushed.PreviousViewID != v.ID || pushed.RootViewID != v.ID {
		t.Errorf("pushed view = %+v", pushed.View)
	}

	if _, err := f.SubmitView(ctx, slackfake.ViewSubmit{ViewID: v.ID, Values: map[string]map[string]string{"env": {"env_select": "moon"}}}); err == nil {
		t.Error("submit with an unknown option succeeded")
	}
	env, err = f.SubmitView(ctx, submit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	if got := f.Views()[0]; !got.Closed {
		t.Errorf("view after a bare ack = %+v, want closed", got)
	}
}
