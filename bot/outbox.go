package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// MessageRole tells an operation's messages apart.
type MessageRole string

// The messages of an operation run from chat.
const (
	RoleRequest  MessageRole = "request"  // the request message, edited to the outcome
	RoleProgress MessageRole = "progress" // the progress message in its thread
)

// OpMessage is one chat message of an operation and how much of its
// journal it shows.
type OpMessage struct {
	Op      string
	Role    MessageRole
	Channel string
	Thread  string // the thread it is in; "" for a top-level message
	TS      string // "" until it is posted
	Shown   int    // journal entries it showed at its last edit
}

// MessageOutbox remembers the messages of operations run from chat, so that
// a finished operation's messages reach its final state even when the
// replica that ran it crashed or its edits were lost: the leader settles
// them (SettleMessages). Under a leader term its writes are fenced.
type MessageOutbox interface {
	// TrackMessages records msgs, keeping those already recorded, and
	// returns every message recorded for their operation.
	TrackMessages(ctx context.Context, msgs []OpMessage) ([]OpMessage, error)
	// SetMessageShown records m's timestamp (if it had none) and that it
	// shows at least m.Shown journal entries.
	SetMessageShown(ctx context.Context, m OpMessage) error
	// UnsettledMessages returns the messages of finished operations whose
	// last journal entry was written in [from, to) that show less than
	// the whole journal.
	UnsettledMessages(ctx context.Context, from, to time.Time) ([]OpMessage, error)
}

const (
	// settleAfter leaves the replica that runs an operation time to edit
	// its messages itself before the leader settles them.
	settleAfter = 10 * time.Second
	// settleFor is how long the leader keeps trying to settle the messages
	// of a finished operation (a deleted message cannot be edited).
	settleFor = 24 * time.Hour
)

// SettleMessages edits the messages of finished operations that do not show
// their whole journal — their replica crashed or an edit was lost — to the
// operation's final state. The leader calls it periodically.
func (b *Bot) SettleMessages(ctx context.Context) error {
	if b.outbox == nil || b.poster == nil {
		return nil
	}
	now := b.now()
	list, err := b.outbox.UnsettledMessages(ctx, now.Add(-settleFor), now.Add(-settleAfter))
	if err != nil {
		return fmt.Errorf("settle operation messages: %w", err)
	}
	byOp := map[string][]OpMessage{}
	var order []string
	for _, m := range list {
		if byOp[m.Op] == nil {
			order = append(order, m.Op)
		}
		byOp[m.Op] = append(byOp[m.Op], m)
	}
	var errs []error
	for _, id := range order {
		op, err := b.ops.Get(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("settle the messages of %s: %w", id, err))
			continue
		}
		if _, err := b.showOperation(ctx, op, byOp[id]); err != nil {
			errs = append(errs, fmt.Errorf("settle the messages of %s: %w", id, err))
			continue
		}
		b.log.Info().Str("op", id).Str("state", string(op.State)).Msg("settled the messages of a finished operation")
	}
	return errors.Join(errs...)
}

// showOperation brings msgs, messages of op, to op's journal: the progress
// message is posted or edited, the request message edited to the outcome
// once op has ended. What each shows is recorded when that matters to
// SettleMessages: a new progress message, or a finished operation. It
// returns msgs as they are now.
func (b *Bot) showOperation(ctx context.Context, op ops.Operation, msgs []OpMessage) ([]OpMessage, error) {
	var errs []error
	for i, m := range msgs {
		posted := false
		switch m.Role {
		case RoleProgress:
			content := renderProgress(op)
			if m.TS == "" {
				ts, err := b.poster.Post(ctx, m.Channel, m.Thread, content)
				if err != nil {
					errs = append(errs, fmt.Errorf("post the progress of %s: %w", op.ID, err))
					continue
				}
				m.TS, posted = ts, true
			} else if err := b.poster.Update(ctx, m.Channel, m.TS, content); err != nil {
				errs = append(errs, fmt.Errorf("edit the progress of %s: %w", op.ID, err))
				continue
			}
		case RoleRequest:
			if !op.State.Terminal() {
				continue
			}
			if err := b.poster.Update(ctx, m.Channel, m.TS, outcomeMessage(op)); err != nil {
				errs = append(errs, fmt.Errorf("edit the request message of %s: %w", op.ID, err))
				continue
			}
		}
		m.Shown = len(op.Journal)
		msgs[i] = m
		if b.outbox != nil && (posted || op.State.Terminal()) {
			if err := b.outbox.SetMessageShown(ctx, m); err != nil {
				errs = append(errs, fmt.Errorf("record what the %s message of %s shows: %w", m.Role, op.ID, err))
			}
		}
	}
	return msgs, errors.Join(errs...)
}

// opMessages are the messages of an operation run from chat: its request
// message and the progress message in its thread.
func opMessages(op ops.Operation) []OpMessage {
	channel, ts := op.Chat[chatChannel], op.Chat[chatTS]
	return []OpMessage{
		{Op: op.ID, Role: RoleProgress, Channel: channel, Thread: ts},
		{Op: op.ID, Role: RoleRequest, Channel: channel, TS: ts},
	}
}
