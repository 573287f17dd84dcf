package bot

import (
	"context"

	"github.com/togather-foundation/togather-chatops/incidents"
)

// PageAction is what a page tells the paging service about an alert group.
type PageAction string

// The page actions: a group started firing, was acknowledged in chat, or
// resolved.
const (
	PageTrigger     PageAction = "trigger"
	PageAcknowledge PageAction = "acknowledge"
	PageResolve     PageAction = "resolve"
)

// Pager pages the on-call person beyond a chat mention (PagerDuty). It
// queues the page durably and returns; it decides which alerts page whom.
type Pager interface {
	PageAlert(ctx context.Context, action PageAction, a incidents.Alert, channel, ts string) error
}

// page tells the pager, if any, about an alert group's change; a failure
// is logged: the chat message still goes out.
func (b *Bot) page(ctx context.Context, action PageAction, rec AlertRecord) {
	if b.pager == nil {
		return
	}
	if err := b.pager.PageAlert(ctx, action, rec.Alert, rec.Channel, rec.TS); err != nil {
		b.log.Error().Err(err).Str("alert", rec.Alert.Key).Str("action", string(action)).Msg("queueing a page failed: only the chat message pages")
	}
}
