package slackfake

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Render returns a readable plain-text rendering of a message and its
// blocks, for the console: a header line, the text, then each block
// (headers underlined, section text and fields, context in parentheses,
// buttons as [Label](action_id)).
func Render(m Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%s %s", m.Channel, m.TS)
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		fmt.Fprintf(&b, " (in thread %s)", m.ThreadTS)
	}
	if m.Ephemeral {
		fmt.Fprintf(&b, " (only visible to %s)", m.User)
	}
	if len(m.Edits) > 0 {
		b.WriteString(" (edited)")
	}
	if m.Deleted {
		b.WriteString(" (deleted)")
	}
	b.WriteString("\n")
	var blocks []map[string]any
	_ = json.Unmarshal(m.Blocks, &blocks) // invalid blocks were rejected on post
	if m.Text != "" && len(blocks) == 0 {
		writeIndented(&b, m.Text)
	}
	for _, blk := range blocks {
		renderBlock(&b, blk)
	}
	return strings.TrimRight(b.String(), "\n")
}

func renderBlock(b *strings.Builder, blk map[string]any) {
	switch blk["type"] {
	case "header":
		t := textOf(blk["text"])
		writeIndented(b, t+"\n"+strings.Repeat("=", len([]rune(t))))
	case "section":
		if t := textOf(blk["text"]); t != "" {
			writeIndented(b, t)
		}
		fields, _ := blk["fields"].([]any)
		for _, fl := range fields {
			writeIndented(b, "• "+textOf(fl))
		}
		if acc, ok := blk["accessory"].(map[string]any); ok {
			if el := elementLabel(acc); el != "" {
				writeIndented(b, el)
			}
		}
	case "context":
		elems, _ := blk["elements"].([]any)
		var parts []string
		for _, e := range elems {
			if t := textOf(e); t != "" {
				parts = append(parts, t)
			}
		}
		writeIndented(b, "("+strings.Join(parts, " · ")+")")
	case "actions":
		elems, _ := blk["elements"].([]any)
		var parts []string
		for _, e := range elems {
			if em, ok := e.(map[string]any); ok {
				parts = append(parts, elementLabel(em))
			}
		}
		writeIndented(b, strings.Join(parts, " "))
	case "divider":
		writeIndented(b, "----")
	case "input":
		el, _ := blk["element"].(map[string]any)
		writeIndented(b, textOf(blk["label"])+": "+elementLabel(el))
	case "markdown":
		s, _ := blk["text"].(string)
		writeIndented(b, s)
	default:
		if texts := blockTexts(mustJSON(blk)); len(texts) > 0 {
			writeIndented(b, strings.Join(texts, " "))
		}
	}
}

// elementLabel renders an interactive element, e.g. [Approve](approve).
func elementLabel(el map[string]any) string {
	id, _ := el["action_id"].(string)
	switch el["type"] {
	case "button":
		return fmt.Sprintf("[%s](%s)", textOf(el["text"]), id)
	case "static_select", "overflow":
		opts, _ := el["options"].([]any)
		var names []string
		for _, o := range opts {
			if om, ok := o.(map[string]any); ok {
				names = append(names, textOf(om["text"]))
			}
		}
		return fmt.Sprintf("<%s: %s>(%s)", el["type"], strings.Join(names, "|"), id)
	case nil:
		return ""
	default:
		return fmt.Sprintf("<%s>(%s)", el["type"], id)
	}
}

// textOf returns the text of a text object.
func textOf(v any) string {
	if t, ok := v.(map[string]any); ok {
		s, _ := t["text"].(string)
		return s
	}
	return ""
}

func writeIndented(b *strings.Builder, s string) {
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString("  ")
		b.WriteString(line)
		b.WriteString("\n")
	}
}

func mustJSON(v any) json.RawMessage {
	raw, _ := json.Marshal(v)
	return raw
}
