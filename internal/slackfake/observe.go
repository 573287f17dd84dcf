package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Messages returns the channel's messages visible to everyone, thread
// replies included and deleted ones marked, oldest first.
func (f *Fake) Messages(channel string) []Message {
	return f.messages(func(m *Message) bool { return m.Channel == channel && !m.Ephemeral })
}

// Message returns the message (of any kind) with ts in channel.
func (f *Fake) Message(channel, ts string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.findMessage(channel, ts); m != nil {
		return m.clone(), true
	}
	return Message{}, false
}

// Thread returns the parent message with ts followed by its replies, as
// conversations.replies does; nil if there is no such message.
func (f *Fake) Thread(channel, ts string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Message
	for _, m := range f.thread(channel, ts) {
		out = append(out, m.clone())
	}
	return out
}

// Ephemerals returns the messages only user saw in channel: chat.postEphemeral
// and ephemeral response_url replies.
func (f *Fake) Ephemerals(channel, user string) []Message {
	return f.messages(func(m *Message) bool { return m.Channel == channel && m.Ephemeral && m.User == user })
}

func (f *Fake) messages(keep func(*Message) bool) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Message
	for _, m := range f.msgs {
		if keep(m) {
			out = append(out, m.clone())
		}
	}
	return out
}

// Responses returns the accepted posts the bot made to response_urls.
func (f *Fake) Responses() []ResponsePost { return snapshot(f, &f.responses, nil) }

// Calls returns the calls of a Web API method, oldest first.
func (f *Fake) Calls(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c.clone())
		}
	}
	return out
}

// UnknownCalls returns the calls of methods the fake does not implement.
func (f *Fake) UnknownCalls() []Call { return snapshot(f, &f.unknown, Call.clone) }

// Rejections returns the requests the fake refused as real Slack would.
func (f *Fake) Rejections() []Rejection { return snapshot(f, &f.rejections, nil) }

// Acks returns every ack received, oldest first.
func (f *Fake) Acks() []Ack { return snapshot(f, &f.acks, nil) }

// Views returns every view opened, in its current state.
func (f *Fake) Views() []View { return snapshotPtrs(f, &f.views, View.clone) }

// Uploads returns every file upload started, in its current state.
func (f *Fake) Uploads() []Upload { return snapshotPtrs(f, &f.uploads, Upload.clone) }

// snapshot copies a slice of f's state under the lock.
func snapshot[T any](f *Fake, s *[]T, clone func(T) T) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(*s)
	if clone != nil {
		for i := range out {
			out[i] = clone(out[i])
		}
	}
	return out
}

func snapshotPtrs[T any](f *Fake, s *[]*T, clone func(T) T) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]T, len(*s))
	for i, p := range *s {
		out[i] = clone(*p)
	}
	return out
}

// WaitAck waits for the ack of an envelope.
func (f *Fake) WaitAck(ctx context.Context, envID string) (Ack, error) {
	var ack Ack
	err := f.await(ctx, "ack of "+envID, func() bool {
		for _, a := range f.acks {
			if a.EnvelopeID == envID {
				ack = a
				return true
			}
		}
		return false
	})
	return ack, err
}

// Pred selects messages. Preds run with the fake locked: they must not call it.
type Pred func(Message) bool

// InChannel selects messages in channel.
func InChannel(channel string) Pred { return func(m Message) bool { return m.Channel == channel } }

// InThread selects replies in the thread of ts.
func InThread(ts string) Pred { return func(m Message) bool { return m.ThreadTS == ts && m.TS != ts } }

// TextContains selects messages whose text or any block text contains s.
func TextContains(s string) Pred {
	return func(m Message) bool {
		return strings.Contains(m.Text, s) || slices.ContainsFunc(blockTexts(m.Blocks), func(t string) bool {
			return strings.Contains(t, s)
		})
	}
}

// ForUser selects messages whose User (author or ephemeral recipient) is user.
func ForUser(user string) Pred { return func(m Message) bool { return m.User == user } }

// Kind selects messages of kind k.
func Kind(k MessageKind) Pred { return func(m Message) bool { return m.Kind == k } }

// HasButton selects messages with a button whose action_id is actionID.
func HasButton(actionID string) Pred {
	return func(m Message) bool {
		found := false
		walkJSON(m.Blocks, func(obj map[string]any) {
			if obj["type"] == "button" && obj["action_id"] == actionID {
				found = true
			}
		})
		return found
	}
}

func matches(m Message, preds []Pred) bool {
	for _, p := range preds {
		if !p(m) {
			return false
		}
	}
	return true
}

// WaitMessage waits for a message matching every pred: a channel message or
// thread reply, an ephemeral or a response_url reply, in its current state.
// The oldest match is returned.
func (f *Fake) WaitMessage(ctx context.Context, preds ...Pred) (Message, error) {
	var found Message
	err := f.await(ctx, "message", func() bool {
		for _, m := range f.msgs {
			if c := m.clone(); matches(c, preds) {
				found = c
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitEdit waits until the message with ts has been edited (chat.update or
// replace_original) and, in its current state, matches every pred.
func (f *Fake) WaitEdit(ctx context.Context, channel, ts string, preds ...Pred) (Message, error) {
	var found Message
	err := f.await(ctx, fmt.Sprintf("edit of %s/%s", channel, ts), func() bool {
		m := f.findMessage(channel, ts)
		if m == nil || len(m.Edits) == 0 {
			return false
		}
		found = m.clone()
		return matches(found, preds)
	})
	return found, err
}

// WaitView waits for an open view with callbackID.
func (f *Fake) WaitView(ctx context.Context, callbackID string) (View, error) {
	var found View
	err := f.await(ctx, "view "+callbackID, func() bool {
		for _, v := range f.views {
			if v.CallbackID == callbackID && !v.Closed {
				found = v.clone()
				return true
			}
		}
		return false
	})
	return found, err
}

// blockTexts returns every "text" string in a blocks array.
func blockTexts(blocks json.RawMessage) []string {
	var out []string
	walkJSON(blocks, func(obj map[string]any) {
		if s, ok := obj["text"].(string); ok {
			out = append(out, s)
		}
	})
	return out
}

// walkJSON calls visit for every object in raw, depth first.
func walkJSON(raw json.RawMessage, visit func(map[string]any)) {
	if len(raw) == 0 {
		return
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			visit(t)
			for _, child := range t {
				walk(child)
			}
		case []any:
			for _, child := range t {
				walk(child)
			}
		}
	}
	walk(v)
}

// Subscribe streams everything the bot does from now on. The channel is
// never dropped from or blocked on by the fake; it closes after cancel or
// Close.
func (f *Fake) Subscribe() (<-chan Event, func()) {
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{})}
	out := make(chan Event)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(out)
		return out, func() {}
	}
	f.subs[s] = struct{}{}
	f.wg.Go(func() { s.pump(out) })
	return out, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
		s.cancel()
	}
}

// subscriber queues events without bound and pumps them to its channel.
type subscriber struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (s *subscriber) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) cancel() { s.once.Do(func() { close(s.done) }) }

func (s *subscriber) pump(out chan<- Event) {
	defer close(out)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, ev := range batch {
			select {
			case out <- ev:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}
