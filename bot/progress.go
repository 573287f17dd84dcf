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
// arrive in between are coalesced, never dropped. It owns the goroutines
// of its flushes and of the timeline posts, which FlushProgress waits for.
type progress struct {
	mu       sync.Mutex
	ops      map[string]*opProgress
	wg       sync.WaitGroup // scheduled and running flushes, timeline posts
	draining bool           // FlushProgress runs: flush at once
}

type opProgress struct {
	op       ops.Operation // latest state
	msgs     []OpMessage   // its messages; nil until the first flush
	last     time.Time     // last post or edit
	timer    *time.Timer   // the scheduled flush, nil when none
	flushing bool
}

// Progress is told of every journal entry (the operations' Notify hook).
// Operations started from chat get their progress in their thread, and
// their request message edited to the outcome when they end — also when a
// restarted bot recovers them. What the messages show is recorded in the
// outbox, so that the leader repairs them if this replica cannot.
func (b *Bot) Progress(op ops.Operation, e ops.JournalEntry) {
	b.progress.mu.Lock()
	defer b.progress.mu.Unlock()
	if e.Phase == ops.PhaseEnd && op.State.Terminal() && e.Step == op.State {
		b.progress.wg.Add(1)
		go func() {
			defer b.progress.wg.Done()
			b.operationOnTimeline(op)
		}()
	}
	if op.Chat[chatChannel] == "" || op.Chat[chatTS] == "" || e.Phase == ops.PhaseBegin || b.poster == nil {
		return
	}
	if b.progress.ops == nil {
		b.progress.ops = map[string]*opProgress{}
	}
	p, ok := b.progress.ops[op.ID]
	if !ok {
		p = &opProgress{}
		b.progress.ops[op.ID] = p
	}
	p.op = op
	if p.timer == nil && !p.flushing {
		b.scheduleFlush(op.ID, p, progressEvery-b.now().Sub(p.last))
	}
}

// scheduleFlush flushes p after wait, at once while draining. Call with
// b.progress.mu held.
func (b *Bot) scheduleFlush(id string, p *opProgress, wait time.Duration) {
	if b.progress.draining {
		wait = 0
	}
	b.progress.wg.Add(1)
	p.timer = time.AfterFunc(max(wait, 0), func() { b.flushProgress(id, p) })
}

// FlushProgress sends the pending progress and outcome edits now, rather
// than at their throttled time, and waits for every flush and timeline post
// until ctx ends: a replica that shuts down calls it once its operations
// have finished, so their last messages are not lost with the process.
func (b *Bot) FlushProgress(ctx context.Context) error {
	b.progress.mu.Lock()
	b.progress.draining = true
	for id, p := range b.progress.ops {
		// A timer stopped before it fired leaves its flush, already
		// counted in the wait group, to run now.
		if p.timer != nil && p.timer.Stop() {
			go b.flushProgress(id, p)
		}
	}
	b.progress.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.progress.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush progress messages: %w", context.Cause(ctx))
	}
}

// flushProgress posts or edits the progress message with the latest state,
// and the request message once the operation has ended.
func (b *Bot) flushProgress(id string, p *opProgress) {
	defer b.progress.wg.Done()
	b.progress.mu.Lock()
	p.timer, p.flushing = nil, true
	op, msgs := p.op, p.msgs
	b.progress.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if msgs == nil {
		msgs = b.trackMessages(ctx, op)
	}
	msgs, err := b.showOperation(ctx, op, msgs)
	if err != nil {
		b.log.Warn().Err(err).Str("op", id).Msg("progress messages not up to date; the leader settles them once the operation ends")
	}

	b.progress.mu.Lock()
	defer b.progress.mu.Unlock()
	p.msgs, p.last, p.flushing = msgs, b.now(), false
	switch {
	case len(p.op.Journal) != len(op.Journal):
		// Entries that came in while this flush ran get the next one.
		b.scheduleFlush(id, p, progressEvery)
	case op.State.Terminal():
		delete(b.progress.ops, id)
	}
}

// trackMessages records op's messages in the outbox and returns them with
// what was recorded before (a progress message posted by another replica,
// say); without an outbox, or when it fails, they are op's messages as new.
func (b *Bot) trackMessages(ctx context.Context, op ops.Operation) []OpMessage {
	msgs := opMessages(op)
	if b.outbox == nil {
		return msgs
	}
	tracked, err := b.outbox.TrackMessages(ctx, msgs)
	if err != nil {
		b.log.Warn().Err(err).Str("op", op.ID).Msg("recording the operation's messages failed; a crash now leaves them unrepaired")
		return msgs
	}
	return tracked
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
