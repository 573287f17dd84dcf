package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// progressEvery is Slack's pace for one channel: about a message a second.
const progressEvery = time.Second

// progress keeps one progress message per operation in its thread and
// edits it as journal entries arrive, at most once a second; entries that
// arrive in between are coalesced, never dropped.
type progress struct {
	mu  sync.Mutex
	ops map[string]*opProgress
}

type opProgress struct {
	op        ops.Operation // latest state
	ts        string        // the progress message in the thread
	last      time.Time     // last post or edit
	scheduled bool
}

// Progress is told of every journal entry (the operations' Notify hook).
// Operations started from chat get their progress in their thread, and
// their request message edited to the outcome when they end — also when a
// restarted bot recovers them.
func (b *Bot) Progress(op ops.Operation, e ops.JournalEntry) {
	if e.Phase == ops.PhaseEnd && op.State.Terminal() && e.Step == op.State {
		go b.operationOnTimeline(op)
	}
	if op.Chat[chatChannel] == "" || op.Chat[chatTS] == "" || e.Phase == ops.PhaseBegin || b.poster == nil {
		return
	}
	b.progress.mu.Lock()
	defer b.progress.mu.Unlock()
	if b.progress.ops == nil {
		b.progress.ops = map[string]*opProgress{}
	}
	p, ok := b.progress.ops[op.ID]
	if !ok {
		p = &opProgress{}
		b.progress.ops[op.ID] = p
	}
	p.op = op
	if p.scheduled {
		return
	}
	p.scheduled = true
	wait := progressEvery - time.Since(p.last)
	time.AfterFunc(max(wait, 0), func() { b.flushProgress(op.ID) })
}

// flushProgress posts or edits the progress message with the latest state.
func (b *Bot) flushProgress(id string) {
	b.progress.mu.Lock()
	p := b.progress.ops[id]
	op, ts := p.op, p.ts
	b.progress.mu.Unlock()
	defer func() {
		// Entries that came in while this flush ran get the next one.
		b.progress.mu.Lock()
		defer b.progress.mu.Unlock()
		p.last, p.scheduled = time.Now(), false
		if len(p.op.Journal) != len(op.Journal) {
			p.scheduled = true
			time.AfterFunc(progressEvery, func() { b.flushProgress(id) })
		} else if op.State.Terminal() {
			delete(b.progress.ops, id)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := renderProgress(op)
	channel := op.Chat[chatChannel]
	if ts == "" {
		newTS, err := b.poster.Post(ctx, channel, op.Chat[chatTS], m)
		if err != nil {
			b.log.Warn().Err(err).Str("op", id).Msg("posting progress failed")
			return
		}
		b.progress.mu.Lock()
		p.ts = newTS
		b.progress.mu.Unlock()
	} else if err := b.poster.Update(ctx, channel, ts, m); err != nil {
		b.log.Warn().Err(err).Str("op", id).Msg("editing progress failed")
	}
	if op.State.Terminal() {
		b.finishMessage(ctx, op)
	}
}

// renderProgress lists an operation's finished steps with their details.
func renderProgress(op ops.Operation) Message {
	var b strings.Builder
	for _, e := range op.Journal {
		if e.Phase == ops.PhaseBegin {
			continue
		}
		icon := map[ops.Phase]string{ops.PhaseEnd: "✓", ops.PhaseFail: "✗", ops.PhaseNote: "·"}[e.Phase]
		fmt.Fprintf(&b, "%s %s %-11s %s\n", e.At.UTC().Format("15:04:05"), icon, e.Step, e.Detail)
	}
	head := fmt.Sprintf("%s — %s", title(op), op.State)
	return Message{Text: head, Blocks: []Block{Section{Text: "*" + head + "*"}, Preformatted{Text: strings.TrimRight(b.String(), "\n")}}}
}
