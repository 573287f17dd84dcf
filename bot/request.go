package bot

import (
	"context"
	"time"
)

// Request is one thing a person asked of the bot, normalised from whatever
// chat (or terminal) it came through.
type Request struct {
	ID      string // delivery id (Slack envelope id); the dedupe key
	User    string // chat user ID
	Channel string // where it was asked
	Text    string // command text without the slash command itself
	// TriggerID lets a command open a form, for a few seconds.
	TriggerID string
	Action    *Action
	At        time.Time
}

// Action is a button press, or the submission of a form (a modal): then
// ActionID is the form's id, Value what it was opened for, and Inputs the
// answers by input id.
type Action struct {
	ActionID  string
	Value     string
	MessageTS string // the message that carried the button
	ThreadTS  string
	TriggerID string // lets the handler open a form, for a few seconds
	Inputs    map[string]string
}

// Form is a small modal asking for text answers.
type Form struct {
	ID     string // comes back as Action.ActionID on submission
	Value  string // comes back as Action.Value
	Title  string // at most 24 characters
	Submit string
	Inputs []FormInput
}

// FormInput is one text field of a form.
type FormInput struct {
	ID        string
	Label     string
	Multiline bool
	Optional  bool
}

// FormOpener opens a form for the user who pressed a button.
type FormOpener interface {
	OpenForm(ctx context.Context, triggerID string, f Form) error
}

// Responder answers the person who made a request.
type Responder interface {
	// Reply sends m to the requester: only to them unless m.InChannel.
	Reply(ctx context.Context, m Message) error
}

// ResponderFunc adapts a function to Responder.
type ResponderFunc func(ctx context.Context, m Message) error

// Reply calls f.
func (f ResponderFunc) Reply(ctx context.Context, m Message) error { return f(ctx, m) }
