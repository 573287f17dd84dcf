package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// disconnectCloseDelay is how long a link stays open after a disconnect frame.
const disconnectCloseDelay = 100 * time.Millisecond

// frameKind tells the writer what a frame is.
type frameKind int

const (
	frameEnvelope   frameKind = iota // an envelope or raw frame; requeued if undelivered
	frameHello                       // the greeting of one link
	frameDisconnect                  // the last frame of a link
)

type frame struct {
	data []byte
	kind frameKind
}

// link is one Socket Mode WebSocket connection.
type link struct {
	id   int
	ws   *websocket.Conn
	out  chan frame
	done chan struct{}
	once sync.Once
}

// stop closes the TCP connection (no close frame) and ends the goroutines.
func (l *link) stop() {
	l.once.Do(func() {
		close(l.done)
		_ = l.ws.Close()
	})
}

// drain removes the queued envelope frames. Call with f.mu held.
func (l *link) drain() [][]byte {
	var out [][]byte
	for {
		select {
		case fr := <-l.out:
			if fr.kind == frameEnvelope {
				out = append(out, fr.data)
			}
		default:
			return out
		}
	}
}

// envelope is an envelope the fake sent, kept for Redeliver and ack handling.
type envelope struct {
	ID                     string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt,omitempty"`
	RetryReason            string          `json:"retry_reason,omitempty"`

	resp   *responseURL // a slash command's response_url, for an ack payload
	viewID string       // view of a view_submission, for its response_action
}

var upgrader = websocket.Upgrader{
	// slack-go sends Origin: https://api.slack.com; the default check refuses it.
	CheckOrigin:     func(*http.Request) bool { return true },
	WriteBufferSize: 32 << 10,
}

// serveLink accepts a Socket Mode connection.
func (f *Fake) serveLink(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		_ = ws.Close()
		return
	}
	f.lastLink++
	l := &link{id: f.lastLink, ws: ws, out: make(chan frame, 1024+len(f.pending)), done: make(chan struct{})}
	f.links[l.id] = l
	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "num_connections": len(f.links),
		"debug_info":      map[string]any{"host": "slackfake", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": AppID},
	})
	l.out <- frame{data: hello, kind: frameHello}
	for _, p := range f.pending {
		l.out <- frame{data: p}
	}
	f.pending = nil
	f.cur = l
	f.cfg.logf("slackfake: socket %d connected", l.id)
	f.notify()
	f.wg.Go(func() { f.writeLoop(l) })
	f.wg.Go(func() { f.readLoop(l) })
	f.wg.Go(func() { f.pingLoop(l) })
}

func (f *Fake) writeLoop(l *link) {
	for {
		select {
		case <-l.done:
			return
		case fr := <-l.out:
			_ = l.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := l.ws.WriteMessage(websocket.TextMessage, fr.data); err != nil {
				var lost [][]byte
				if fr.kind == frameEnvelope {
					lost = [][]byte{fr.data}
				}
				f.dropLink(l, lost...)
				return
			}
			if fr.kind == frameDisconnect {
				select {
				case <-l.done:
				case <-time.After(disconnectCloseDelay):
					msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "disconnect")
					_ = l.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				}
				f.dropLink(l)
				return
			}
		}
	}
}

func (f *Fake) readLoop(l *link) {
	defer f.dropLink(l)
	l.ws.SetReadLimit(1 << 20)
	for {
		_, data, err := l.ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &ack); err != nil || ack.EnvelopeID == "" {
			f.cfg.logf("slackfake: socket %d: unexpected frame %s", l.id, data)
			continue
		}
		f.mu.Lock()
		f.acks = append(f.acks, Ack{EnvelopeID: ack.EnvelopeID, Payload: ack.Payload, At: time.Now(), ConnID: l.id})
		if env, ok := f.envelopes[ack.EnvelopeID]; ok {
			f.applyAck(env, ack.Payload)
		}
		f.notify()
		f.mu.Unlock()
	}
}

func (f *Fake) pingLoop(l *link) {
	t := time.NewTicker(f.cfg.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			if f.noPing.Load() {
				continue
			}
			if err := l.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
				return
			}
		}
	}
}

// dropLink tears a link down and requeues what it did not deliver.
func (f *Fake) dropLink(l *link, lost ...[]byte) {
	l.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.links[l.id]; ok {
		f.cfg.logf("slackfake: socket %d closed", l.id)
	}
	delete(f.links, l.id)
	if f.cur == l {
		f.cur = nil
	}
	f.requeue(append(lost, l.drain()...))
	f.notify()
}

// requeue hands undelivered frames to the current link, or keeps them for
// the next one. Call with f.mu held.
func (f *Fake) requeue(frames [][]byte) {
	if len(frames) == 0 {
		return
	}
	if f.cur == nil {
		f.pending = append(frames, f.pending...)
		return
	}
	for _, fr := range frames {
		f.deliver(fr)
	}
}

// deliver sends a frame on the current link or queues it until a link
// connects. Call with f.mu held.
func (f *Fake) deliver(data []byte) {
	if f.cur == nil {
		f.pending = append(f.pending, data)
		return
	}
	select {
	case f.cur.out <- frame{data: data}:
	default: // the writer is stuck; keep the frame for the next link
		f.pending = append(f.pending, data)
	}
}

// Disconnect sends a disconnect frame with reason (e.g. "refresh_requested",
// "warning", "link_disabled") on the current socket, delivers nothing more
// on it and closes it shortly after. Envelopes not yet written go to the
// next connection.
func (f *Fake) Disconnect(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.cur
	if l == nil {
		f.cfg.logf("slackfake: Disconnect(%q) with no socket connected", reason)
		return
	}
	f.cur = nil
	f.pending = append(l.drain(), f.pending...)
	data, _ := json.Marshal(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "slackfake"}})
	l.out <- frame{data: data, kind: frameDisconnect}
	f.notify()
}

// DropConnection closes the current socket's TCP connection without a close
// frame, like a network failure.
func (f *Fake) DropConnection() {
	f.mu.Lock()
	l := f.cur
	f.cur = nil
	f.notify()
	f.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// StopPings stops the WebSocket pings on every socket, so the client's ping
// watchdog fires and it reconnects.
func (f *Fake) StopPings() { f.noPing.Store(true) }

// ResumePings undoes StopPings.
func (f *Fake) ResumePings() { f.noPing.Store(false) }

// Opens is the number of Socket Mode connections accepted so far.
func (f *Fake) Opens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastLink
}

// WaitConnected waits until a socket is connected.
func (f *Fake) WaitConnected(ctx context.Context) error {
	return f.await(ctx, "socket connection", func() bool { return f.cur != nil })
}

// WaitOpens waits until at least n sockets have been accepted and one is
// connected.
func (f *Fake) WaitOpens(ctx context.Context, n int) error {
	return f.await(ctx, "socket connections", func() bool { return f.lastLink >= n && f.cur != nil })
}

// sendEnvelope records and delivers an envelope. Call with f.mu held.
func (f *Fake) sendEnvelope(env *envelope) (string, error) {
	data, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	f.envelopes[env.ID] = env
	f.deliver(data)
	f.notify()
	return env.ID, nil
}

// SendRaw delivers frame as is on the socket (or on the next one).
func (f *Fake) SendRaw(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliver(append([]byte(nil), frame...))
	return nil
}

// Redeliver sends an envelope again with the same envelope_id,
// retry_attempt+1 and retry_reason "timeout", as Slack does when an ack is late.
func (f *Fake) Redeliver(ctx context.Context, envID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	env, ok := f.envelopes[envID]
	if !ok {
		return errors.New("redeliver: unknown envelope " + envID)
	}
	env.RetryAttempt++
	env.RetryReason = "timeout"
	_, err := f.sendEnvelope(env)
	return err
}
