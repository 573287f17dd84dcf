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
	Action  *Action
	At      time.Time
}

// Action is a button press.
type Action struct {
	ActionID  string
	Value     string
	MessageTS string // the message that carried the button
	ThreadTS  string
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
