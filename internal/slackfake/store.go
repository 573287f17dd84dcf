package slackfake

import (
	"encoding/json"
	"strings"
	"time"
)

// All functions in this file expect f.mu to be held.

// addMessage stamps and stores a new message and publishes it.
func (f *Fake) addMessage(m *Message, kind EventKind) {
	m.TS, m.At = f.nextTS(), time.Now()
	f.msgs = append(f.msgs, m)
	f.publish(Event{Kind: kind, Message: m.clone()})
}

// findMessage returns the message (channel, ephemeral or response) with ts.
func (f *Fake) findMessage(channel, ts string) *Message {
	for _, m := range f.msgs {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (f *Fake) applyEdit(m *Message, via, text string, blocks json.RawMessage) {
	m.Text, m.Blocks = text, blocks
	m.Edits = append(m.Edits, Edit{Via: via, Text: text, Blocks: blocks, At: time.Now()})
	f.publish(Event{Kind: EventEdit, Message: m.clone()})
}

func (f *Fake) deleteMessage(m *Message) {
	m.Deleted = true
	f.publish(Event{Kind: EventDelete, Message: m.clone()})
}

// thread returns the parent with ts followed by its visible replies, or nil.
func (f *Fake) thread(channel, ts string) []*Message {
	parent := f.findMessage(channel, ts)
	if parent == nil || parent.Ephemeral || parent.Deleted {
		return nil
	}
	out := []*Message{parent}
	for _, m := range f.msgs {
		if m.Channel == channel && m.ThreadTS == ts && m.TS != ts && !m.Ephemeral && !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// wire is the message object as Slack returns it; the bot is its author.
func (m *Message) wire() map[string]any {
	w := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "team": TeamID, "user": BotUserID, "bot_id": BotID}
	if m.ThreadTS != "" {
		w["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		w["blocks"] = m.Blocks
	}
	return w
}

// channelKnown reports whether the bot may post to id: a seeded channel, a
// user (a DM), or anything when no channels were seeded.
func (f *Fake) channelKnown(id string) bool {
	if id == "" {
		return false
	}
	if len(f.cfg.channels) == 0 {
		return true
	}
	_, isChannel := f.cfg.channels[id]
	_, isUser := f.cfg.users[id]
	return isChannel || isUser
}

// userKnown reports whether id is a seeded user; with no users seeded every
// non-empty ID is accepted.
func (f *Fake) userKnown(id string) bool {
	if id == "" {
		return false
	}
	_, ok := f.cfg.users[id]
	return ok || len(f.cfg.users) == 0
}

// channel returns the seeded channel or one named after its ID.
func (f *Fake) channel(id string) Channel {
	if ch, ok := f.cfg.channels[id]; ok {
		return ch
	}
	return Channel{ID: id, Name: strings.ToLower(id)}
}

// userName returns the seeded user's name or one derived from the ID.
func (f *Fake) userName(id string) string {
	if u, ok := f.cfg.users[id]; ok && u.Name != "" {
		return u.Name
	}
	return strings.ToLower(id)
}

// publish hands an event to every subscriber without blocking.
func (f *Fake) publish(ev Event) {
	ev.At = time.Now()
	for s := range f.subs {
		s.push(ev)
	}
}
