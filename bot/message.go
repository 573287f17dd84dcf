package bot

import "strings"

// Message is a chat-agnostic message: a plain-text fallback plus blocks. The
// Slack adapter renders it to Block Kit within Slack's limits; the terminal
// prints PlainText.
type Message struct {
	Text      string  // fallback and notification text
	Blocks    []Block // optional rich layout
	InChannel bool    // a reply visible to the whole channel, not only the requester
}

// Block is one element of a message layout.
type Block interface{ block() }

// Header is a large title line.
type Header struct{ Text string }

// Section is a paragraph of lightly formatted text (*bold*, _italic_,
// `code`), with optional two-column fields.
type Section struct {
	Text   string
	Fields []string
}

// Context is a line of small print.
type Context struct{ Text string }

// Preformatted is monospaced text shown as is.
type Preformatted struct{ Text string }

// Divider is a horizontal rule.
type Divider struct{}

// Actions is a row of buttons.
type Actions struct {
	ID      string
	Buttons []Button
}

// ButtonStyle colours a button.
type ButtonStyle string

// Button styles.
const (
	Default ButtonStyle = ""
	Primary ButtonStyle = "primary"
	Danger  ButtonStyle = "danger"
)

// Button is a clickable action. Value carries the id of what it acts on.
type Button struct {
	ActionID string
	Label    string
	Value    string
	Style    ButtonStyle
}

func (Header) block()       {}
func (Section) block()      {}
func (Context) block()      {}
func (Preformatted) block() {}
func (Divider) block()      {}
func (Actions) block()      {}

// PlainText renders the message as readable plain text, for the terminal and
// for notification fallbacks.
func (m Message) PlainText() string {
	if len(m.Blocks) == 0 {
		return unescapeMrkdwn.Replace(m.Text)
	}
	var b strings.Builder
	for _, blk := range m.Blocks {
		switch v := blk.(type) {
		case Header:
			b.WriteString(v.Text + "\n")
		case Section:
			if v.Text != "" {
				b.WriteString(unescapeMrkdwn.Replace(v.Text) + "\n")
			}
			for _, f := range v.Fields {
				b.WriteString("  " + unescapeMrkdwn.Replace(f) + "\n")
			}
		case Context:
			b.WriteString("  " + unescapeMrkdwn.Replace(v.Text) + "\n")
		case Preformatted:
			b.WriteString(v.Text + "\n")
		case Divider:
			b.WriteString("----\n")
		case Actions:
			for i, btn := range v.Buttons {
				if i > 0 {
					b.WriteString(" ")
				}
				b.WriteString("[" + btn.Label + "]")
			}
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Textf is a message holding just text.
func Textf(text string) Message { return Message{Text: text} }

// mrkdwnEscaper escapes the three characters Slack's mrkdwn gives meaning
// to, so that text from people and other systems (reasons, titles,
// descriptions, alert summaries) shows as written: "<!channel>" in a
// reason is text, not a ping of everyone.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes user text safe to insert into mrkdwn.
func escape(s string) string { return mrkdwnEscaper.Replace(s) }

// unescapeMrkdwn undoes escape, for plain-text output.
var unescapeMrkdwn = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
