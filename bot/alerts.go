package bot

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
)

// AlertRecord is an alert group with where its message is and what people
// did with it.
type AlertRecord struct {
	Alert         incidents.Alert
	Channel, TS   string
	AckedBy       string
	AckedAt       time.Time
	SilencedUntil time.Time
}

// AlertStore keeps alert groups.
type AlertStore interface {
	UpsertAlert(ctx context.Context, a incidents.Alert, now time.Time) (prev AlertRecord, existed bool, err error)
	SetAlertMessage(ctx context.Context, key, channel, ts string) error
	AckAlert(ctx context.Context, key, user string, now time.Time) (bool, error)
	SilenceAlert(ctx context.Context, key string, until, now time.Time) error
	GetAlert(ctx context.Context, key string) (AlertRecord, error)
	// AlertsOnMessage returns the groups whose message is channel/ts, by
	// key: those a message lists, whichever replica posted it.
	AlertsOnMessage(ctx context.Context, channel, ts string) ([]AlertRecord, error)
}

// Alert action ids; the value is the alert group's key.
const (
	actAlertAck     = "alert.ack"
	actAlertSilence = "alert.silence"
	actAlertDeclare = "alert.declare"
	actAlertRoll    = "alert.rollback"
	silenceFor      = time.Hour
	recentDeploy    = time.Hour // alerts offer a rollback this long after a deploy
)

// alertQueue coalesces alert messages per channel. A first alert waits a
// moment for others arriving with it; while a channel stays busy the wait
// between flushes doubles (1 s, 2 s, 4 s, up to 8 s) and falls back to 1 s
// once it is quiet. New groups in one flush are merged into one message;
// changes to groups that have a message edit it. Nothing is dropped: a
// flush takes everything pending.
type alertQueue struct {
	mu       sync.Mutex
	pending  map[string]map[string]AlertRecord // channel → key → latest
	timer    map[string]bool                   // a flush is scheduled for the channel
	last     map[string]time.Time
	interval map[string]time.Duration // current pace of the channel
}

// Alert pacing: a gathering moment for a first alert, Slack's pace, and the
// slowest pace in a long storm.
const (
	alertGather  = 250 * time.Millisecond
	alertPaceMax = 8 * time.Second
)

// HandleAlert records an alert group's new state and queues its message:
// critical to the critical channel with the on-call group mentioned,
// warning to the team channel. A silenced group is recorded, not posted.
func (b *Bot) HandleAlert(ctx context.Context, a incidents.Alert) error {
	now := b.now()
	prev, existed, err := b.alerts.UpsertAlert(ctx, a, now)
	if err != nil {
		return fmt.Errorf("record alert %s: %w", a.Key, err)
	}
	if w, phase, ok := b.windowPhase(ctx, a.Env); ok {
		if err := b.maint.RecordWindowAlert(ctx, w.ID, phase, a, now); err != nil {
			b.log.Warn().Err(err).Str("window", w.Name()).Msg("recording an alert against a maintenance window failed")
		}
		if phase == phaseWindow {
			return nil // muted: summed up when the window ends
		}
	}
	if existed && now.Before(prev.SilencedUntil) {
		return nil
	}
	rec := AlertRecord{Alert: a, Channel: prev.Channel, TS: prev.TS, AckedBy: prev.AckedBy, AckedAt: prev.AckedAt}
	if a.Firing && existed && !prev.Alert.Firing {
		rec.AckedBy, rec.AckedAt = "", time.Time{} // a new episode needs a new acknowledgement
	}
	if rec.Channel == "" {
		rec.Channel = b.channels.AlertsWarning
		if a.Severity == incidents.Critical {
			rec.Channel = b.channels.AlertsCritical
		}
	}
	b.queueAlert(rec)
	switch {
	case a.Firing && !(existed && prev.Alert.Firing):
		b.page(ctx, PageTrigger, rec)
	case !a.Firing && existed && prev.Alert.Firing:
		b.page(ctx, PageResolve, rec)
	}
	if a.Severity == incidents.Critical && a.Firing && !(existed && prev.Alert.Firing) {
		b.criticalToIncident(ctx, a)
	}
	return nil
}

func (b *Bot) queueAlert(rec AlertRecord) {
	q := &b.alertQ
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending, q.timer, q.last = map[string]map[string]AlertRecord{}, map[string]bool{}, map[string]time.Time{}
		q.interval = map[string]time.Duration{}
	}
	if q.pending[rec.Channel] == nil {
		q.pending[rec.Channel] = map[string]AlertRecord{}
	}
	q.pending[rec.Channel][rec.Alert.Key] = rec
	if q.timer[rec.Channel] {
		return
	}
	q.timer[rec.Channel] = true
	pace := max(q.interval[rec.Channel], progressEvery)
	wait := max(pace-time.Since(q.last[rec.Channel]), alertGather)
	time.AfterFunc(wait, func() { b.flushAlerts(rec.Channel) })
}

// flushAlerts sends everything pending for one channel.
func (b *Bot) flushAlerts(channel string) {
	q := &b.alertQ
	q.mu.Lock()
	batch := q.pending[channel]
	delete(q.pending, channel)
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.timer[channel], q.last[channel] = false, time.Now()
		if len(q.pending[channel]) == 0 {
			q.interval[channel] = progressEvery // quiet again
			return
		}
		// Still busy: slow down, so a storm becomes a few large messages.
		q.interval[channel] = min(max(q.interval[channel], progressEvery)*2, alertPaceMax)
		q.timer[channel] = true
		time.AfterFunc(q.interval[channel], func() { b.flushAlerts(channel) })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var fresh []AlertRecord
	edits := map[string]bool{}
	for _, rec := range batch {
		if rec.TS == "" {
			fresh = append(fresh, rec)
			continue
		}
		edits[rec.TS] = true
		if !rec.Alert.Firing {
			_, _ = b.poster.Post(ctx, channel, rec.TS, Textf(fmt.Sprintf(":white_check_mark: Resolved: %s", escape(rec.Alert.Summary))))
		}
	}
	for ts := range edits {
		b.editAlertMessage(ctx, channel, ts)
	}
	if len(fresh) == 0 {
		return
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Alert.Key < fresh[j].Alert.Key })
	var m Message
	if len(fresh) == 1 {
		m = b.renderAlert(ctx, fresh[0])
	} else {
		m = b.renderDigest(ctx, fresh)
	}
	ts, err := b.poster.Post(ctx, channel, "", m)
	if err != nil {
		b.log.Error().Err(err).Int("alerts", len(fresh)).Msg("posting alerts failed; they stay recorded and will be posted with their next change")
		return
	}
	for _, rec := range fresh {
		if err := b.alerts.SetAlertMessage(ctx, rec.Alert.Key, channel, ts); err != nil {
			b.log.Warn().Err(err).Str("alert", rec.Alert.Key).Msg("recording the alert's message failed")
		}
	}
}

// editAlertMessage re-renders a message from the stored state of the
// groups it shows, as the store records them: a restarted or new leader
// edits the messages another replica posted.
func (b *Bot) editAlertMessage(ctx context.Context, channel, ts string) {
	recs, err := b.alerts.AlertsOnMessage(ctx, channel, ts)
	if err != nil {
		b.log.Warn().Err(err).Str("ts", ts).Msg("reading the alert groups of a message failed; it is not edited")
		return
	}
	if len(recs) == 0 {
		return
	}
	m := b.renderDigest(ctx, recs)
	if len(recs) == 1 {
		m = b.renderAlert(ctx, recs[0])
	}
	if err := b.poster.Update(ctx, channel, ts, m); err != nil {
		b.log.Warn().Err(err).Str("ts", ts).Msg("editing an alert message failed")
	}
}

// alertLine is one line about an alert group.
func alertLine(r AlertRecord) string {
	a := r.Alert
	icon := ":large_yellow_circle:"
	if a.Severity == incidents.Critical {
		icon = ":red_circle:"
	}
	if !a.Firing {
		icon = ":white_check_mark:"
	}
	where := ""
	if a.Env != "" {
		where = " · " + a.Env
	}
	line := fmt.Sprintf("%s *%s*%s: %s", icon, escape(a.Name), where, escape(a.Summary))
	if a.Count > 1 {
		line += fmt.Sprintf(" (%d alerts)", a.Count)
	}
	if !a.Firing {
		line += " — resolved"
	}
	if r.AckedBy != "" {
		line += fmt.Sprintf(" — acknowledged by <@%s>", r.AckedBy)
	}
	return line
}

// mention pages the on-call group on a firing critical alert.
func (b *Bot) mention(a incidents.Alert) string {
	if a.Severity == incidents.Critical && a.Firing && b.channels.OncallGroup != "" {
		return fmt.Sprintf("<!subteam^%s> ", b.channels.OncallGroup)
	}
	return ""
}

// renderAlert is the message of one alert group, with its buttons.
func (b *Bot) renderAlert(ctx context.Context, r AlertRecord) Message {
	text := b.mention(r.Alert) + alertLine(r)
	blocks := []Block{Section{Text: text}, Context{Text: fmt.Sprintf("%s · since %s · %s", r.Alert.Severity, r.Alert.StartsAt.UTC().Format("15:04 UTC"), r.Alert.Source)}}
	if r.Alert.Firing {
		blocks = append(blocks, Actions{ID: "alert", Buttons: b.alertButtons(ctx, r)})
	}
	return Message{Text: text, Blocks: blocks}
}

// renderDigest merges several alert groups into one message, so a storm
// stays within Slack's pace.
func (b *Bot) renderDigest(ctx context.Context, recs []AlertRecord) Message {
	firing, mention := 0, ""
	var lines []string
	for _, r := range recs {
		if r.Alert.Firing {
			firing++
		}
		if m := b.mention(r.Alert); m != "" {
			mention = m
		}
		lines = append(lines, alertLine(r))
	}
	head := fmt.Sprintf("%s%d alert groups, %d firing", mention, len(recs), firing)
	blocks := []Block{Section{Text: "*" + head + "*"}}
	chunks := pack(lines, 2800)
	for i, chunk := range chunks {
		if i == 40 {
			blocks = append(blocks, Context{Text: fmt.Sprintf("… %d more lines not shown; `/togather status` and the alert channel's threads have the rest", len(lines))})
			break
		}
		blocks = append(blocks, Section{Text: chunk})
	}
	blocks = append(blocks, Context{Text: "Merged into one message to keep up with a burst; changes to these groups edit it."})
	return Message{Text: head, Blocks: blocks}
}

// alertButtons are Acknowledge, Silence 1 h, Declare incident, and Roll
// back when the environment was deployed less than an hour ago.
func (b *Bot) alertButtons(ctx context.Context, r AlertRecord) []Button {
	key := r.Alert.Key
	btns := []Button{{ActionID: actAlertAck, Label: "Acknowledge", Value: key}, {ActionID: actAlertSilence, Label: "Silence 1 h", Value: key},
		{ActionID: actAlertDeclare, Label: "Declare incident", Value: key, Style: Danger}}
	if r.Alert.Env == "" || b.ops == nil {
		return btns
	}
	if hist, err := b.ops.History(ctx, r.Alert.Env, 5); err == nil {
		for _, op := range hist {
			if op.Kind == ops.KindDeploy && op.State == ops.StepDone && b.now().Sub(op.UpdatedAt) < recentDeploy {
				return append(btns, Button{ActionID: actRollback, Label: "Roll back " + op.Version, Value: op.ID, Style: Danger})
			}
		}
	}
	return btns
}

// handleAlertAction acknowledges, silences or declares an incident from an
// alert's buttons.
func (b *Bot) handleAlertAction(ctx context.Context, req Request, rw Responder) error {
	key := req.Action.Value
	rec, err := b.alerts.GetAlert(ctx, key)
	if err != nil {
		return rw.Reply(ctx, Textf(":information_source: This alert is no longer known."))
	}
	switch req.Action.ActionID {
	case actAlertAck:
		first, err := b.alerts.AckAlert(ctx, key, req.User, b.now())
		if err != nil {
			return fmt.Errorf("acknowledge %s: %w", key, err)
		}
		if !first {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: Already acknowledged by <@%s>.", rec.AckedBy)))
		}
		_ = b.record(ctx, req, "alert.ack", rec.Alert.Env, true, key)
		rec.AckedBy = req.User
		b.queueAlert(rec)
		b.page(ctx, PageAcknowledge, rec)
		return nil
	case actAlertSilence:
		allowed, why := b.authz.Decide(ctx, req.User, "alert.silence", rec.Alert.Env)
		_ = b.record(ctx, req, "alert.silence", rec.Alert.Env, allowed, why+" ("+key+")")
		if !allowed {
			return rw.Reply(ctx, Textf(":no_entry: "+why))
		}
		until := b.now().Add(silenceFor)
		if err := b.alerts.SilenceAlert(ctx, key, until, b.now()); err != nil {
			return fmt.Errorf("silence %s: %w", key, err)
		}
		_, _ = b.poster.Post(ctx, rec.Channel, rec.TS, Textf(fmt.Sprintf(":mute: Silenced by <@%s> until %s; changes are still recorded.", req.User, until.UTC().Format("15:04 UTC"))))
		return nil
	}
	return b.declareFromAlert(ctx, req, rec, rw)
}
