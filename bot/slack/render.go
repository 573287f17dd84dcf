package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/togather-foundation/togather-chatops/bot"
)

// Slack's limits on a message (https://docs.slack.dev/reference/block-kit).
const (
	maxBlocks      = 50
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
	maxHeaderText  = 150
	maxButtons     = 25
	maxButtonText  = 75
	maxButtonValue = 2000
	maxText        = 4000 // Slack truncates at 40 000; 4 000 is its advice
	maxContextText = 3000
)

// Render turns a chat-agnostic message into Block Kit blocks and a fallback
// text that Slack accepts: anything over a limit is cut with a visible note,
// never rejected.
func Render(m bot.Message) (text string, blocks []slack.Block) {
	text = cut(m.Text, maxText)
	if text == "" {
		text = cut(m.PlainText(), maxText)
	}
	for i, b := range m.Blocks {
		if p, ok := b.(bot.Preformatted); ok {
			blocks = append(blocks, codeBlocks(p.Text)...)
		} else {
			blocks = append(blocks, renderBlock(b, i))
		}
	}
	if len(blocks) > maxBlocks {
		note := fmt.Sprintf("… %d more blocks not shown (Slack allows %d).", len(blocks)-(maxBlocks-1), maxBlocks)
		blocks = append(blocks[:maxBlocks-1], slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, note, false, false)))
	}
	return text, blocks
}

// escapeCode is what codeBlocks replaces in preformatted text.
var escapeCode = strings.NewReplacer("```", "'''", "&", "&amp;", "<", "&lt;", ">", "&gt;")

// codeBlocks shows preformatted text as code blocks, as many as it takes
// at a section's length each, split between lines: a journal or a log is
// shown whole, not cut at its end, where what failed is. A ``` in the text
// would end the block, so it is shown as three single quotes; &, < and >
// are escaped, so text in a journal or a log (a reason, a command's
// output) cannot mention anyone.
func codeBlocks(text string) []slack.Block {
	const room = maxSectionText - 6 // the fences
	var blocks []slack.Block
	var chunk []string
	size := 0
	flush := func() {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("```"+strings.Join(chunk, "\n")+"```"), nil, nil))
		chunk, size = nil, 0
	}
	for _, line := range strings.Split(escapeCode.Replace(text), "\n") {
		line = cut(line, room)
		n := utf8.RuneCountInString(line)
		if len(chunk) > 0 && size+n > room {
			flush()
		}
		chunk = append(chunk, line)
		size += n + 1
	}
	flush()
	return blocks
}

func renderBlock(b bot.Block, i int) slack.Block {
	switch v := b.(type) {
	case bot.Header:
		return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, cut(v.Text, maxHeaderText), true, false))
	case bot.Section:
		var text *slack.TextBlockObject
		if v.Text != "" {
			text = mrkdwn(cut(v.Text, maxSectionText))
		}
		var fields []*slack.TextBlockObject
		for j, f := range v.Fields {
			if j == maxFields {
				break
			}
			fields = append(fields, mrkdwn(cut(f, maxFieldText)))
		}
		if text == nil && len(fields) == 0 {
			text = mrkdwn(" ")
		}
		return slack.NewSectionBlock(text, fields, nil)
	case bot.Context:
		return slack.NewContextBlock("", mrkdwn(cut(v.Text, maxContextText)))
	case bot.Divider:
		return slack.NewDividerBlock()
	case bot.Actions:
		var els []slack.BlockElement
		for j, btn := range v.Buttons {
			if j == maxButtons {
				break
			}
			e := slack.NewButtonBlockElement(btn.ActionID, cut(btn.Value, maxButtonValue),
				slack.NewTextBlockObject(slack.PlainTextType, cut(btn.Label, maxButtonText), true, false))
			e.Style = slack.Style(btn.Style)
			els = append(els, e)
		}
		id := v.ID
		if id == "" {
			id = fmt.Sprintf("actions-%d", i)
		}
		return slack.NewActionBlock(id, els...)
	}
	return slack.NewSectionBlock(mrkdwn(" "), nil, nil)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// cut shortens s to at most limit characters, ending with a note saying how
// much was left out.
func cut(s string, limit int) string {
	n := utf8.RuneCountInString(s)
	if n <= limit {
		return s
	}
	note := fmt.Sprintf("\n… (cut: %d more characters)", n)
	keep := limit - utf8.RuneCountInString(note)
	if keep < 0 {
		keep = 0
	}
	r := []rune(s)
	note = fmt.Sprintf("\n… (cut: %d more characters)", n-keep)
	return string(r[:keep]) + note
}
