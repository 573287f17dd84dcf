package slackfake_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

func TestChatRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)

	ts := mustPost(ctx, t, api, "C1", slack.MsgOptionText("deploying", false), approvalBlocks())
	reply := mustPost(ctx, t, api, "C1", slack.MsgOptionText("step 1 done", false), slack.MsgOptionTS(ts))
	if !(ts < reply) {
		t.Errorf("timestamps not increasing: %q then %q", ts, reply)
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("deployed", false)); err != nil {
		t.Fatalf("update: %v", err)
	}
	m, err := f.WaitEdit(ctx, "C1", ts, slackfake.TextContains("deployed"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Edits) != 1 || m.Edits[0].Via != "chat.update" {
		t.Errorf("edits = %+v, want one chat.update", m.Edits)
	}
	if !slackfake.HasButton("approve")(m) {
		t.Error("update with text only dropped the blocks")
	}

	ephTS, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false))
	if err != nil {
		t.Fatalf("ephemeral: %v", err)
	}
	eph := f.Ephemerals("C1", "U1")
	if len(eph) != 1 || eph[0].TS != ephTS || eph[0].Kind != slackfake.Ephemeral || eph[0].Text != "only you" {
		t.Errorf("ephemerals = %+v", eph)
	}

	msgs, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: ts})
	if err != nil {
		t.Fatalf("replies: %v", err)
	}
	if len(msgs) != 2 || msgs[0].Timestamp != ts || msgs[1].Text != "step 1 done" {
		t.Errorf("conversations.replies = %+v", msgs)
	}
	if th := f.Thread("C1", ts); len(th) != 2 || th[1].TS != reply {
		t.Errorf("Thread = %+v", th)
	}

	if _, _, err := api.DeleteMessageContext(ctx, "C1", reply); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got, _ := f.Message("C1", reply); !got.Deleted {
		t.Error("deleted message not marked deleted")
	}
	if n := len(f.Messages("C1")); n != 2 {
		t.Errorf("Messages(C1) has %d messages, want 2 (ephemerals excluded)", n)
	}
	if rj := f.Rejections(); len(rj) != 0 {
		t.Errorf("unexpected rejections: %+v", rj)
	}
}

func TestMessageErrors(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t, slackfake.WithChannels(slackfake.Channel{ID: "C1", Name: "ops"}))
	api := newAPI(f)
	if _, _, err := api.PostMessageContext(ctx, "C404", slack.MsgOptionText("x", false)); slackErr(err) != "channel_not_found" {
		t.Errorf("post to unknown channel: err = %v, want channel_not_found", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.000001", slack.MsgOptionText("x", false)); slackErr(err) != "message_not_found" {
		t.Errorf("update of unknown message: err = %v, want message_not_found", err)
	}
	if n := len(f.Rejections()); n != 2 {
		t.Errorf("%d rejections recorded, want 2", n)
	}
}

// blocksOf builds n section blocks.
func sections(n int) []slack.Block {
	blocks := make([]slack.Block, n)
	for i := range blocks {
		blocks[i] = slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "x", false, false), nil, nil)
	}
	return blocks
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func TestLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	buttons := func(n int) []slack.BlockElement {
		out := make([]slack.BlockElement, n)
		for i := range out {
			out[i] = slack.NewButtonBlockElement("b"+strings.Repeat("x", i), "v", plain("B"))
		}
		return out
	}
	fields := make([]*slack.TextBlockObject, 11)
	for i := range fields {
		fields[i] = plain("f")
	}
	tests := []struct {
		name    string
		opts    []slack.MsgOption
		wantErr string
	}{
		{"50 blocks", []slack.MsgOption{slack.MsgOptionBlocks(sections(50)...)}, ""},
		{"51 blocks", []slack.MsgOption{slack.MsgOptionBlocks(sections(51)...)}, "invalid_blocks"},
		{"section text 3000", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(plain(long(3000)), nil, nil))}, ""},
		{"section text 3001", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(plain(long(3001)), nil, nil))}, "invalid_blocks"},
		{"11 fields", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(nil, fields, nil))}, "invalid_blocks"},
		{"field 2001", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(nil, []*slack.TextBlockObject{plain(long(2001))}, nil))}, "invalid_blocks"},
		{"header 151", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(plain(long(151))))}, "invalid_blocks"},
		{"25 buttons", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", buttons(25)...))}, ""},
		{"26 buttons", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", buttons(26)...))}, "invalid_blocks"},
		{"button text 76", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement("ok", "v", plain(long(76)))))}, "invalid_blocks"},
		{"button value 2001", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement("ok", long(2001), plain("OK"))))}, "invalid_blocks"},
		{"action_id 256", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement(long(256), "v", plain("OK"))))}, "invalid_blocks"},
		{"block_id 256", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewDividerBlock(), slack.NewActionBlock(long(256), buttons(1)...))}, "invalid_blocks"},
		{"duplicate block_id", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", buttons(1)...), slack.NewActionBlock("a", buttons(1)...))}, "invalid_blocks"},
		{"empty section text", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(plain(""), nil, nil))}, "invalid_blocks"},
		{"text 40000", []slack.MsgOption{slack.MsgOptionText(long(40000), false)}, ""},
		{"text 40001", []slack.MsgOption{slack.MsgOptionText(long(40001), false)}, "msg_too_long"},
		{"no text", nil, "no_text"},
	}
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.Rejections())
			_, _, err := api.PostMessageContext(ctx, "C1", tt.opts...)
			if got := slackErr(err); got != tt.wantErr || (tt.wantErr == "" && err != nil) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			rj := f.Rejections()[before:]
			if tt.wantErr == "" {
				if len(rj) != 0 {
					t.Errorf("rejections: %+v", rj)
				}
				return
			}
			if len(rj) != 1 || rj[0].Error != tt.wantErr || rj[0].Method != "chat.postMessage" {
				t.Fatalf("rejections = %+v, want one %s", rj, tt.wantErr)
			}
			if tt.wantErr == "invalid_blocks" && rj[0].Reason == "" {
				t.Error("invalid_blocks rejection has no reason")
			}
		})
	}
}

func TestRateLimitSurfaced(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	f.RateLimit("chat.postMessage", 1, time.Second)
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	rl, ok := errors.AsType[*slack.RateLimitedError](err)
	if !ok || rl.RetryAfter != time.Second {
		t.Fatalf("err = %v, want RateLimitedError with RetryAfter 1s", err)
	}
	mustPost(ctx, t, api, "C1", slack.MsgOptionText("x", false)) // the fault is spent
	if rj := f.Rejections(); len(rj) != 0 {
		t.Errorf("injected faults recorded as rejections: %+v", rj)
	}
}

func TestRateLimitRetried(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f, slack.OptionRetry(1))
	f.RateLimit("chat.postMessage", 1, time.Second)
	start := time.Now()
	ts := mustPost(ctx, t, api, "C1", slack.MsgOptionText("after retry", false))
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before Retry-After", waited)
	}
	if m, ok := f.Message("C1", ts); !ok || m.Text != "after retry" {
		t.Errorf("message = %+v", m)
	}
	if n := len(f.Calls("chat.postMessage")); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestRealisticRateLimit(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t, slackfake.WithRealisticRateLimit(true))
	api := newAPI(f)
	var limited int
	for range 5 {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("burst", false))
		if _, ok := errors.AsType[*slack.RateLimitedError](err); ok {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited == 0 || limited == 5 {
		t.Errorf("%d of 5 burst posts limited, want some but not all", limited)
	}
	mustPost(ctx, t, api, "C2", slack.MsgOptionText("other channel", false))
}

func TestFaults(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	f.FailNext("chat.postMessage", "internal_error", 2)
	for range 2 {
		if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); slackErr(err) != "internal_error" {
			t.Errorf("err = %v, want internal_error", err)
		}
	}
	mustPost(ctx, t, api, "C1", slack.MsgOptionText("x", false))

	f.HTTPStatus("auth.test", 503, 1)
	_, err := api.AuthTestContext(ctx)
	if sc, ok := errors.AsType[slack.StatusCodeError](err); !ok || sc.Code != 503 {
		t.Errorf("err = %v, want StatusCodeError 503", err)
	}
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Errorf("auth.test after the fault: %v", err)
	}
}

func TestTokens(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	tests := []struct {
		name, token, want string
	}{
		{"bot token", f.BotToken(), ""},
		{"wrong bot token", "xoxb-wrong", "invalid_auth"},
		{"app token for a bot method", f.AppToken(), "not_allowed_token_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := slack.New(tt.token, slack.OptionAPIURL(f.APIURL()))
			resp, err := api.AuthTestContext(ctx)
			if got := slackErr(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.want == "" && resp.UserID != slackfake.BotUserID {
				t.Errorf("auth.test user = %q", resp.UserID)
			}
		})
	}
	botAsApp := slack.New(f.BotToken(), slack.OptionAppLevelToken(f.BotToken()), slack.OptionAPIURL(f.APIURL()))
	if _, _, err := botAsApp.StartSocketModeContext(ctx); slackErr(err) != "not_allowed_token_type" {
		t.Errorf("apps.connections.open with a bot token: err = %v", err)
	}
	if n := len(f.Rejections()); n != 3 {
		t.Errorf("%d rejections, want 3", n)
	}
}

func TestDirectory(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t,
		slackfake.WithUsers(slackfake.User{ID: "U1", Name: "alice", RealName: "Alice A", Email: "alice@example.org", TZ: "Europe/Berlin"}),
		slackfake.WithGroups(map[string][]string{"S1": {"U1", "U2"}}),
		slackfake.WithChannels(slackfake.Channel{ID: "C1", Name: "ops"}),
	)
	api := newAPI(f)

	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || !slices.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("group members = %v, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S404"); slackErr(err) != "no_such_subteam" {
		t.Errorf("unknown group: err = %v", err)
	}
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Name != "alice" || u.Profile.Email != "alice@example.org" || u.TZ != "Europe/Berlin" {
		t.Errorf("user = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U404"); slackErr(err) != "user_not_found" {
		t.Errorf("unknown user: err = %v", err)
	}
	ch, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C1"})
	if err != nil || ch.Name != "ops" {
		t.Errorf("channel = %+v, %v", ch, err)
	}
}

func TestUnknownMethod(t *testing.T) {
	ctx := testCtx(t)
	f := slackfake.New()
	defer f.Close()
	api := newAPI(f)
	err := api.AddReactionContext(ctx, "eyes", slack.NewRefToMessage("C1", "1.000001"))
	if slackErr(err) != "unknown_method" {
		t.Errorf("err = %v, want unknown_method", err)
	}
	calls := f.UnknownCalls()
	if len(calls) != 1 || calls[0].Method != "reactions.add" || calls[0].Params.Get("name") != "eyes" {
		t.Errorf("unknown calls = %+v", calls)
	}
}

func TestUploadFile(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	content := "line 1\nline 2\n"
	sum, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "deploy.log", FileSize: len(content), Content: content, Title: "Deploy log",
		Channel: "C1", InitialComment: "logs attached",
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	ups := f.Uploads()
	if len(ups) != 1 {
		t.Fatalf("uploads = %+v", ups)
	}
	u := ups[0]
	if u.FileID != sum.ID || string(u.Content) != content || u.Title != "Deploy log" || u.Channel != "C1" || !u.Completed {
		t.Errorf("upload = %+v, summary = %+v", u, sum)
	}
}

func TestSubscribe(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	events, cancel := f.Subscribe()
	defer cancel()
	ts := mustPost(ctx, t, api, "C1", slack.MsgOptionText("one", false))
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("two", false)); err != nil {
		t.Fatal(err)
	}
	var kinds []slackfake.EventKind
	for len(kinds) < 2 {
		select {
		case ev := <-events:
			kinds = append(kinds, ev.Kind)
		case <-ctx.Done():
			t.Fatalf("events so far: %v", kinds)
		}
	}
	if !slices.Equal(kinds, []slackfake.EventKind{slackfake.EventPost, slackfake.EventEdit}) {
		t.Errorf("events = %v", kinds)
	}
	cancel()
	for range events { // drains until the channel closes
	}
}
