// Package slack connects the bot to Slack over Socket Mode. It is the only
// package that imports slack-go: it acks every envelope before any work,
// hands work to a bounded pool with a timeout and panic recovery, drops
// redelivered envelopes, and renders bot messages to Block Kit within
// Slack's limits.
package slack

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/togather-foundation/togather-chatops/bot"
)

// Handler runs what people ask for; *bot.Bot implements it.
type Handler interface {
	HandleCommand(ctx context.Context, req bot.Request, rw bot.Responder) error
	HandleAction(ctx context.Context, req bot.Request, rw bot.Responder) error
}

// Deduper remembers processed envelope ids so a redelivery has no effect.
type Deduper interface {
	ClaimEnvelope(ctx context.Context, envelopeID string, now time.Time, ttl time.Duration) (first bool, err error)
}

// Options configure an Adapter.
type Options struct {
	AppToken       string // xapp-…
	BotToken       string // xoxb-…
	APIURL         string // Slack Web API base, ending in "/"
	PingInterval   time.Duration
	Workers        int           // concurrent requests
	CommandTimeout time.Duration // per request
	EnvelopeTTL    time.Duration // how long envelope ids are remembered
	DrainTimeout   time.Duration // how long shutdown waits for in-flight work
	Handler        Handler
	Deduper        Deduper
	Metrics        *Metrics
	Logger         zerolog.Logger
	Now            func() time.Time
}

// Adapter is a running Socket Mode connection.
type Adapter struct {
	o    Options
	api  *slack.Client
	sm   *socketmode.Client
	jobs chan job
	wg   sync.WaitGroup

	mu    sync.Mutex
	opens int
}

type job struct {
	kind     string // "command" or "action"
	req      bot.Request
	respond  bot.Responder
	received time.Time
}

// New returns an Adapter; Run connects it.
func New(o Options) *Adapter {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 2 * time.Minute
	}
	if o.EnvelopeTTL <= 0 {
		o.EnvelopeTTL = 24 * time.Hour
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	opts := []slack.Option{slack.OptionAppLevelToken(o.AppToken)}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	api := slack.New(o.BotToken, opts...)
	return &Adapter{
		o:    o,
		api:  api,
		sm:   socketmode.New(api, socketmode.OptionPingInterval(o.PingInterval)),
		jobs: make(chan job, o.Workers*32),
	}
}

// Run connects to Slack and serves until ctx is cancelled, then stops taking
// new work and waits (up to DrainTimeout) for in-flight requests to finish.
// It returns an error only when Slack refuses the tokens.
func (a *Adapter) Run(ctx context.Context) error {
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	for range a.o.Workers {
		a.wg.Add(1)
		go a.worker(workCtx)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.sm.RunContext(ctx) }()

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-runErr:
			if ctx.Err() == nil && err != nil {
				a.o.Logger.Error().Err(err).Msg("slack refused the connection; check SLACK_APP_TOKEN and SLACK_API_URL")
			}
			break loop
		case evt := <-a.sm.Events:
			a.dispatch(evt)
		}
	}
	close(a.jobs)
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.o.DrainTimeout):
		a.o.Logger.Warn().Dur("waited", a.o.DrainTimeout).Msg("in-flight requests still running at shutdown; cancelling them")
		stopWork()
		<-done
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// dispatch acks an envelope at once and queues its work. It never blocks on
// the work itself: a stalled event loop stops answering pings and Slack then
// drops the socket.
func (a *Adapter) dispatch(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		a.mu.Lock()
		a.opens++
		reconnect := a.opens > 1
		a.mu.Unlock()
		if reconnect {
			a.o.Metrics.Reconnects.Inc()
		}
		a.o.Logger.Info().Bool("reconnect", reconnect).Msg("connected to slack")
		return
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
		a.o.Logger.Warn().Str("event", string(evt.Type)).Interface("data", evt.Data).Msg("slack connection problem")
		return
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
	default:
		return
	}
	received := a.o.Now()
	if evt.Request == nil {
		return
	}
	if err := a.sm.Ack(*evt.Request); err != nil {
		a.o.Logger.Error().Err(err).Str("envelope", evt.Request.EnvelopeID).Msg("ack failed")
	}
	a.o.Metrics.AckSeconds.Observe(a.o.Now().Sub(received).Seconds())

	j, ok := a.toJob(evt, received)
	if !ok {
		return
	}
	select {
	case a.jobs <- j:
	default:
		a.o.Metrics.Commands.WithLabelValues(j.kind, "busy").Inc()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = j.respond.Reply(ctx, bot.Textf(":hourglass: The bot is busy with other requests right now and did not run this one. Try again in a minute."))
		}()
	}
}

func (a *Adapter) toJob(evt socketmode.Event, received time.Time) (job, bool) {
	env := evt.Request.EnvelopeID
	switch data := evt.Data.(type) {
	case slack.SlashCommand:
		return job{kind: "command", received: received,
			req:     bot.Request{ID: env, User: data.UserID, Channel: data.ChannelID, Text: unescape.Replace(data.Text), TriggerID: data.TriggerID, At: received},
			respond: a.responder(data.ChannelID, data.UserID, data.ResponseURL),
		}, true
	case slack.InteractionCallback:
		if data.Type == slack.InteractionTypeViewSubmission {
			return job{kind: "action", received: received,
				req: bot.Request{ID: env, User: data.User.ID, At: received, Action: &bot.Action{
					ActionID: data.View.CallbackID, Value: data.View.PrivateMetadata, Inputs: formInputs(data.View.State),
				}},
				respond: a.responder("", data.User.ID, ""),
			}, true
		}
		if data.Type != slack.InteractionTypeBlockActions || len(data.ActionCallback.BlockActions) == 0 {
			return job{}, false
		}
		act := data.ActionCallback.BlockActions[0]
		channel := data.Channel.ID
		if channel == "" {
			channel = data.Container.ChannelID
		}
		return job{kind: "action", received: received,
			req: bot.Request{ID: env, User: data.User.ID, Channel: channel, At: received, Action: &bot.Action{
				ActionID: act.ActionID, Value: act.Value, MessageTS: data.Container.MessageTs, ThreadTS: data.Container.ThreadTs,
				TriggerID: data.TriggerID,
			}},
			respond: a.responder(channel, data.User.ID, data.ResponseURL),
		}, true
	}
	return job{}, false
}

// unescape undoes Slack's escaping of the three characters it escapes in
// user text, so a reason like "db & cache" is stored as typed.
var unescape = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func (a *Adapter) worker(ctx context.Context) {
	defer a.wg.Done()
	for j := range a.jobs {
		a.handle(ctx, j)
	}
}

// handle runs one request with its own timeout, after dropping envelopes
// already processed, and turns a panic into a logged error and a reply.
func (a *Adapter) handle(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, a.o.CommandTimeout)
	defer cancel()
	log := a.o.Logger.With().Str("envelope", j.req.ID).Str("user", j.req.User).Str("kind", j.kind).Logger()
	a.o.Metrics.InFlight.Inc()
	defer a.o.Metrics.InFlight.Dec()
	outcome := "ok"
	defer func() {
		if p := recover(); p != nil {
			outcome = "panic"
			log.Error().Interface("panic", p).Str("stack", string(debug.Stack())).Msg("handler panicked")
			_ = j.respond.Reply(ctx, bot.Textf(":boom: Something went wrong inside the bot while handling this; it has been logged. Nothing else was changed by this request."))
		}
		a.o.Metrics.Commands.WithLabelValues(j.kind, outcome).Inc()
	}()
	if a.o.Deduper != nil {
		first, err := a.o.Deduper.ClaimEnvelope(ctx, j.req.ID, a.o.Now(), a.o.EnvelopeTTL)
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("envelope dedupe unavailable; handling anyway")
		case !first:
			outcome = "duplicate"
			log.Info().Msg("duplicate envelope ignored")
			return
		}
	}
	var err error
	if j.kind == "action" {
		err = a.o.Handler.HandleAction(ctx, j.req, j.respond)
	} else {
		err = a.o.Handler.HandleCommand(ctx, j.req, j.respond)
	}
	if err != nil {
		outcome = "error"
		log.Error().Err(err).Msg("request failed")
	}
}

// Opens reports how many times the socket has connected.
func (a *Adapter) Opens() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opens
}

// responder replies through the request's response_url, falling back to an
// ephemeral message when the URL is spent or missing.
func (a *Adapter) responder(channel, user, responseURL string) bot.Responder {
	return bot.ResponderFunc(func(ctx context.Context, m bot.Message) error {
		text, blocks := Render(m)
		if responseURL != "" {
			rt := slack.ResponseTypeEphemeral
			if m.InChannel {
				rt = slack.ResponseTypeInChannel
			}
			err := a.call(ctx, "response_url", func() error {
				_, _, err := a.api.PostMessageContext(ctx, channel, slack.MsgOptionResponseURL(responseURL, rt),
					slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
				return err
			})
			if err == nil {
				return nil
			}
			a.o.Logger.Warn().Err(err).Msg("response_url failed; replying with an ephemeral message")
		}
		if m.InChannel {
			_, err := a.Post(ctx, channel, "", m)
			return err
		}
		return a.call(ctx, "chat.postEphemeral", func() error {
			_, err := a.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
			return err
		})
	})
}

// Post sends a message to a channel, or into a thread when threadTS is set,
// and returns its timestamp.
func (a *Adapter) Post(ctx context.Context, channel, threadTS string, m bot.Message) (string, error) {
	text, blocks := Render(m)
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := a.call(ctx, "chat.postMessage", func() error {
		var err error
		_, ts, err = a.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// Update replaces the content of a message the bot posted.
func (a *Adapter) Update(ctx context.Context, channel, ts string, m bot.Message) error {
	text, blocks := Render(m)
	return a.call(ctx, "chat.update", func() error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

// formInputs flattens a submitted view's state to input id → value.
func formInputs(st *slack.ViewState) map[string]string {
	out := map[string]string{}
	if st == nil {
		return out
	}
	for _, actions := range st.Values {
		for id, v := range actions {
			out[id] = v.Value
		}
	}
	return out
}

// OpenForm opens a modal with text inputs (views.open).
func (a *Adapter) OpenForm(ctx context.Context, triggerID string, f bot.Form) error {
	var blocks []slack.Block
	for _, in := range f.Inputs {
		el := slack.NewPlainTextInputBlockElement(nil, in.ID)
		el.Multiline = in.Multiline
		ib := slack.NewInputBlock("in-"+in.ID, slack.NewTextBlockObject(slack.PlainTextType, cut(in.Label, 2000), false, false), nil, el)
		ib.Optional = in.Optional
		blocks = append(blocks, ib)
	}
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: f.ID, PrivateMetadata: f.Value,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, cut(f.Title, 24), false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, cut(f.Submit, 24), false, false),
		Close:  slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
		Blocks: slack.Blocks{BlockSet: blocks},
	}
	return a.call(ctx, "views.open", func() error {
		_, err := a.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
}

// Upload attaches a text file to a thread (files.getUploadURLExternal,
// upload, files.completeUploadExternal).
func (a *Adapter) Upload(ctx context.Context, channel, threadTS, filename, content string) error {
	return a.call(ctx, "files.upload", func() error {
		_, err := a.api.UploadFileContext(ctx, slack.UploadFileParameters{
			Content: content, FileSize: len(content), Filename: filename, Title: filename, Channel: channel, ThreadTimestamp: threadTS,
		})
		return err
	})
}

// GroupMembers lists a user group's members (usergroups.users.list).
func (a *Adapter) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	var users []string
	err := a.call(ctx, "usergroups.users.list", func() error {
		var err error
		users, err = a.api.GetUserGroupMembersContext(ctx, groupID)
		return err
	})
	return users, err
}

// maxAttempts bounds retries of one Web API call.
const maxAttempts = 5

// call runs one Web API call, waiting out 429s for as long as Retry-After
// says and retrying server errors with backoff, always within ctx.
func (a *Adapter) call(ctx context.Context, method string, fn func() error) error {
	backoff := 250 * time.Millisecond
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err = fn(); err == nil {
			return nil
		}
		wait, retry := retryAfter(err, backoff)
		a.o.Metrics.APIErrors.WithLabelValues(method, errorLabel(err)).Inc()
		if !retry || attempt == maxAttempts {
			break
		}
		a.o.Logger.Debug().Err(err).Str("method", method).Dur("wait", wait).Int("attempt", attempt).Msg("retrying slack call")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up waiting: %w)", method, err, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
	return fmt.Errorf("%s: %w", method, err)
}

func retryAfter(err error, backoff time.Duration) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		if rl.RetryAfter <= 0 {
			return time.Second, true
		}
		return rl.RetryAfter, true
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code >= 500 {
		return backoff, true
	}
	return 0, false
}

func errorLabel(err error) string {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return "ratelimited"
	case errors.As(err, &sc):
		return fmt.Sprintf("http_%d", sc.Code)
	case errors.As(err, &se):
		return se.Err
	}
	return "transport"
}
