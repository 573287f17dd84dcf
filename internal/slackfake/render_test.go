package slackfake_test

import (
	"testing"

	"github.com/slack-go/slack"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

func TestRender(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	api := newAPI(f)
	ts := mustPost(ctx, t, api, "C1", slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(
		slack.NewHeaderBlock(plain("Deploy v1.2.3")),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Target: *production*", false, false),
			[]*slack.TextBlockObject{plain("Requested by alice"), plain("Commit abc123")}, nil),
		slack.NewContextBlock("", plain("needs 1 approval"), plain("expires in 1h")),
		slack.NewDividerBlock(),
		slack.NewActionBlock("approval",
			slack.NewButtonBlockElement("approve", "dep-42", plain("Approve")),
			slack.NewButtonBlockElement("reject", "dep-42", plain("Reject"))),
	))
	m, _ := f.Message("C1", ts)
	want := "#C1 " + ts + "\n" +
		"  Deploy v1.2.3\n" +
		"  =============\n" +
		"  Target: *production*\n" +
		"  • Requested by alice\n" +
		"  • Commit abc123\n" +
		"  (needs 1 approval · expires in 1h)\n" +
		"  ----\n" +
		"  [Approve](approve) [Reject](reject)"
	if got := slackfake.Render(m); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}

	eph := slackfake.Message{Channel: "C1", TS: "1.000002", ThreadTS: "1.000001", User: "U1", Ephemeral: true, Text: "only you\nsee this",
		Edits: []slackfake.Edit{{Via: "chat.update"}}}
	wantEph := "#C1 1.000002 (in thread 1.000001) (only visible to U1) (edited)\n  only you\n  see this"
	if got := slackfake.Render(eph); got != wantEph {
		t.Errorf("Render =\n%s\nwant\n%s", got, wantEph)
	}
}
