package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
)

// MaintenanceStore keeps maintenance windows, the posts made for them and
// the alerts recorded while they ran.
type MaintenanceStore interface {
	// CreateWindow stores w under a new id and returns it with that id.
	CreateWindow(ctx context.Context, w ops.MaintenanceWindow) (ops.MaintenanceWindow, error)
	// GetWindow returns window id; an unknown id wraps ops.ErrNotFound.
	GetWindow(ctx context.Context, id int64) (ops.MaintenanceWindow, error)
	// Windows lists the windows not over yet and those ended at or after
	// endedSince, by start; proposed and cancelled ones are left out.
	Windows(ctx context.Context, endedSince time.Time) ([]ops.MaintenanceWindow, error)
	// MoveWindow writes w's state and progress if the stored window is in
	// one of from (compare-and-set), stamped with now.
	MoveWindow(ctx context.Context, w ops.MaintenanceWindow, from []ops.MaintenanceState, now time.Time) (bool, error)
	// SetWindowChat records where the window's announcement is, unless
	// one is recorded already.
	SetWindowChat(ctx context.Context, id int64, channel, ts string) error
	// ClaimWindowEvent claims a post of the window: true once, ever.
	ClaimWindowEvent(ctx context.Context, id int64, event string, now time.Time) (bool, error)
	// RecordWindowAlert records an alert against the window in a phase.
	RecordWindowAlert(ctx context.Context, id int64, phase string, a incidents.Alert, now time.Time) error
	// WindowAlerts lists the alerts recorded against the window in phase.
	WindowAlerts(ctx context.Context, id int64, phase string) ([]WindowAlert, error)
}

// WindowAlert is an alert group seen during a maintenance window or the
// watch after it.
type WindowAlert struct {
	Key, Name       string
	Severity        incidents.Severity
	Summary         string
	Firing          bool // at the last report
	Firings         int  // times it started firing
	FirstAt, LastAt time.Time
}

// Phases of a window in which alerts are recorded.
const (
	phaseWindow = "window" // muted: summed up when the window ends
	phaseWatch  = "watch"  // posted as usual, and summed up when the watch ends
)

// MaintenancePage switches an environment's proxy to a maintenance page
// and back.
type MaintenancePage interface {
	EnterMaintenance(ctx context.Context, page string) error
	ExitMaintenance(ctx context.Context) error
}

// Maintenance button and event ids.
const (
	actMaintConfirm = "maint.confirm"
	actMaintDiscard = "maint.discard"
	// maintStall is how long a start or end may sit unfinished before the
	// leader takes it over: its runner has died.
	maintStall = 2 * time.Minute
	// snapshotReason names the snapshot taken when a window starts.
	snapshotReason = "pre-maintenance"
)

// handleMaintenance runs the maintenance subcommands.
func (b *Bot) handleMaintenance(ctx context.Context, req Request, cmd Command, rw Responder) error {
	if b.maint == nil {
		return rw.Reply(ctx, Textf("Maintenance windows are not kept on this bot: it has no store for them."))
	}
	if cmd.Sub == "schedule" {
		return b.scheduleWindow(ctx, req, cmd, rw)
	}
	if cmd.Sub == "list" {
		return b.listWindows(ctx, rw)
	}
	w, err := b.windowArg(ctx, cmd.Args[0])
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()))
	}
	// The grammar had no environment to check: the window's is checked now.
	if allowed, why := b.authz.Decide(ctx, req.User, cmd.Permission(), w.Env); !allowed {
		_ = b.record(ctx, req, cmd.Permission(), w.Env, false, why+" ("+w.Name()+")")
		return rw.Reply(ctx, Textf(":no_entry: "+why))
	}
	switch cmd.Sub {
	case "cancel":
		return b.cancelWindow(ctx, w, req.User, rw)
	case "start":
		if !w.Open() || w.State == ops.MaintProposed {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s is %s; only a scheduled or held window can be started.", w.Name(), w.State)))
		}
		_ = rw.Reply(ctx, Textf(fmt.Sprintf(":construction: Starting %s on %s: pre-maintenance snapshot first; progress in <#%s>.", w.Name(), w.Env, w.Channel)))
		// Detached from the command's timeout: the snapshot may take longer.
		run, cancel := context.WithTimeout(context.WithoutCancel(ctx), opRunTimeout)
		defer cancel()
		return b.replyWhere(ctx, w, b.startWindow(run, w, req.User), rw)
	case "end":
		if w.State != ops.MaintActive && w.State != ops.MaintEnding {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s is %s; only a window in progress can be ended.", w.Name(), w.State)))
		}
		run, cancel := context.WithTimeout(context.WithoutCancel(ctx), opRunTimeout)
		defer cancel()
		return b.replyWhere(ctx, w, b.endWindow(run, w, req.User), rw)
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf("`maintenance %s` is not handled here.", cmd.Sub)))
}

// replyWhere tells the requester where a window stands after a start or
// end by hand: in progress, held (and why), or ended.
func (b *Bot) replyWhere(ctx context.Context, w ops.MaintenanceWindow, err error, rw Responder) error {
	if err != nil {
		return failReply(ctx, rw, "move "+w.Name()+" on", "`/togather maintenance list` shows where it stands; try again.", err)
	}
	now, gerr := b.maint.GetWindow(ctx, w.ID)
	if gerr != nil {
		return replyDetached(ctx, rw, Textf(fmt.Sprintf("%s moved on; `/togather maintenance list` shows where it stands.", w.Name())))
	}
	switch now.State {
	case ops.MaintActive:
		return replyDetached(ctx, rw, Textf(fmt.Sprintf(":construction: %s is in progress until %s; `/togather maintenance end %s` ends it early.",
			w.Name(), now.End.In(b.maintRules.Location).Format("15:04 MST"), w.Name())))
	case ops.MaintHeld:
		return replyDetached(ctx, rw, Textf(fmt.Sprintf(":x: %s is held: %s. Fix it, then start it again.", w.Name(), now.Held)))
	case ops.MaintEnded:
		return replyDetached(ctx, rw, Textf(fmt.Sprintf(":white_check_mark: %s ended; the summary is in its thread.", w.Name())))
	}
	return replyDetached(ctx, rw, Textf(fmt.Sprintf("%s is %s.", w.Name(), now.State)))
}

// windowArg loads the window an argument names.
func (b *Bot) windowArg(ctx context.Context, arg string) (ops.MaintenanceWindow, error) {
	id, err := ops.ParseMaintenanceID(arg)
	if err != nil {
		return ops.MaintenanceWindow{}, err
	}
	w, err := b.maint.GetWindow(ctx, id)
	if errors.Is(err, ops.ErrNotFound) {
		return w, fmt.Errorf("there is no maintenance window MW-%d; `/togather maintenance list` shows them", id)
	}
	if err != nil {
		return w, fmt.Errorf("could not read MW-%d: %w; try again in a moment", id, err)
	}
	return w, nil
}

// scheduleWindow records a window. One that starts inside business hours
// or lasts too long waits for its owner's confirmation; otherwise it is
// announced at once.
func (b *Bot) scheduleWindow(ctx context.Context, req Request, cmd Command, rw Responder) error {
	rules := b.maintRules
	mode, _ := cmd.Flag("mode")
	if mode != "" && mode != ops.Mode503 {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":x: Unknown mode %s: the only mode is `--mode 503`, which shows a maintenance page instead of the site.", echo(mode))))
	}
	start, note, err := ops.ParseMaintenanceStart(cmd.Args[0], rules.Location)
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()+"."))
	}
	d, _ := time.ParseDuration(cmd.Args[1])
	now := b.now()
	if !start.After(now) {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":x: %s is in the past (it is %s now in %s). To start maintenance now, schedule it a few minutes ahead, then `/togather maintenance start <id>`.",
			cmd.Args[0], now.In(rules.Location).Format(ops.MaintenanceStartLayout), rules.Location)))
	}
	if mode == ops.Mode503 {
		if _, ok := b.envOps.Maintenance(cmd.Env); !ok {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":x: %s has no proxy the bot can switch to a maintenance page; schedule it without `--mode 503`.", cmd.Env)))
		}
	}
	warnings := rules.Warnings(start, d)
	if len(warnings) > 0 && cmd.Bool("confirm") {
		if note != "" {
			warnings = append(warnings, note)
		}
		note, warnings = "confirmed although "+strings.Join(warnings, "; and "), nil
	}
	w := ops.MaintenanceWindow{Env: cmd.Env, Description: cmd.Args[2], Owner: req.User, Mode: mode,
		Start: start, End: start.Add(d), State: ops.MaintScheduled, CreatedAt: now}
	if len(warnings) > 0 {
		w.State = ops.MaintProposed
	}
	w, err = b.maint.CreateWindow(ctx, w)
	if err != nil {
		return failReply(ctx, rw, "schedule the maintenance window", "Nothing was scheduled; try again in a moment.", err)
	}
	if len(warnings) > 0 {
		text := fmt.Sprintf(":warning: %s is not scheduled yet: %s.", describeWindow(w, rules.Location), strings.Join(warnings, "; and "))
		if note != "" {
			text += " Note: " + note + "."
		}
		text += " Schedule it anyway? (`--confirm` schedules at once next time.)"
		return rw.Reply(ctx, Message{Text: text, Blocks: []Block{Section{Text: text}, Actions{ID: "maint_" + w.Name(), Buttons: []Button{
			{ActionID: actMaintConfirm, Label: "Schedule anyway", Value: w.Name(), Style: Primary},
			{ActionID: actMaintDiscard, Label: "Discard", Value: w.Name()},
		}}}})
	}
	return b.announceWindow(ctx, w, note, rw)
}

// announceWindow posts a scheduled window's announcement and tells the
// requester where it is.
func (b *Bot) announceWindow(ctx context.Context, w ops.MaintenanceWindow, note string, rw Responder) error {
	channel := b.announcements()
	if err := b.postAnnouncement(ctx, w); err != nil {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":warning: %s is scheduled, but its announcement could not be posted (%v). The bot tries again in a minute.", w.Name(), err)))
	}
	var next []string
	for _, a := range b.maintRules.Announcements(w) {
		next = append(next, fmt.Sprintf("%s before", days(a.Days)))
	}
	reminders := "no reminders (it is less than a day away)"
	if len(next) > 0 {
		reminders = "reminders " + strings.Join(next, ", ")
	}
	text := fmt.Sprintf(":calendar: Scheduled %s, announced in <#%s> with %s, then at its start and end.", describeWindow(w, b.maintRules.Location), channel, reminders)
	if note != "" {
		text += " Note: " + note + "."
	}
	return rw.Reply(ctx, Message{InChannel: true, Text: text})
}

// postAnnouncement posts the root message of a window's thread and
// records where it is.
func (b *Bot) postAnnouncement(ctx context.Context, w ops.MaintenanceWindow) error {
	channel := b.announcements()
	ts, err := b.poster.Post(ctx, channel, "", b.announcement(w, ""))
	if err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Msg("maintenance announcement failed")
		return err
	}
	if err := b.maint.SetWindowChat(ctx, w.ID, channel, ts); err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Msg("recording the maintenance announcement failed")
		return err
	}
	return nil
}

// announceRetry is how long after scheduling a window without an
// announcement the leader posts it: the scheduling command had its chance.
const announceRetry = time.Minute

// announcements is the channel maintenance is announced in.
func (b *Bot) announcements() string {
	if b.channels.Announcements != "" {
		return b.channels.Announcements
	}
	return b.channels.Deploys
}

// describeWindow is one line about a window: MW-3 on production, Tue
// 2026-12-08 02:00–04:00 EST (2h): Postgres upgrade.
func describeWindow(w ops.MaintenanceWindow, loc *time.Location) string {
	return fmt.Sprintf("*%s* on *%s*, %s (%s): %s", w.Name(), w.Env, windowSpan(w, loc), fmtSpan(w.End.Sub(w.Start)), escape(w.Description))
}

// windowSpan is a window's start and end on the team's wall clock.
func windowSpan(w ops.MaintenanceWindow, loc *time.Location) string {
	s, e := w.Start.In(loc), w.End.In(loc)
	end := e.Format("15:04 MST")
	if e.YearDay() != s.YearDay() || e.Year() != s.Year() {
		end = e.Format("Mon 2006-01-02 15:04 MST")
	}
	return s.Format("Mon 2006-01-02 15:04") + "–" + end
}

// announcement is the root message of a window's thread; status replaces
// the scheduled line as the window moves on.
func (b *Bot) announcement(w ops.MaintenanceWindow, status string) Message {
	impact := "the site stays up; short disruptions are possible"
	if w.Mode == ops.Mode503 {
		impact = "the site shows a maintenance page (HTTP 503) for the whole window"
	}
	if status == "" {
		status = ":calendar: Scheduled"
	}
	text := fmt.Sprintf("%s · *Maintenance %s — %s*\n*When:* %s (%s)\n*What:* %s\n*Impact:* %s\nOwner: %s · updates in this thread",
		status, w.Name(), w.Env, windowSpan(w, b.maintRules.Location), fmtSpan(w.End.Sub(w.Start)), escape(w.Description), impact, mention(w.Owner))
	return Message{Text: text, Blocks: []Block{Section{Text: text}}}
}

// confirmWindow schedules a proposed window once its owner accepts the
// warnings, or discards it.
func (b *Bot) confirmWindow(ctx context.Context, req Request, rw Responder) error {
	w, err := b.windowArg(ctx, req.Action.Value)
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()))
	}
	if req.User != w.Owner {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: Only %s, who asked for %s, can confirm or discard it.", mention(w.Owner), w.Name())))
	}
	to, verb := ops.MaintScheduled, "confirm"
	if req.Action.ActionID == actMaintDiscard {
		to, verb = ops.MaintCancelled, "discard"
	}
	_ = b.record(ctx, req, "maintenance.schedule", w.Env, true, verb+" "+w.Name())
	w.State = to
	moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintProposed}, b.now())
	if err != nil {
		return failReply(ctx, rw, verb+" "+w.Name(), "Try the button again in a moment.", err)
	}
	if !moved {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s was already confirmed or discarded; the button does nothing now.", w.Name())))
	}
	if to == ops.MaintCancelled {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":wastebasket: %s discarded; nothing was announced.", w.Name())))
	}
	if !w.Start.After(b.now()) {
		w.State = ops.MaintCancelled
		_, _ = b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintScheduled}, b.now())
		return rw.Reply(ctx, Textf(fmt.Sprintf(":x: %s would have started already; schedule it again with a later start.", w.Name())))
	}
	return b.announceWindow(ctx, w, "", rw)
}

// listWindows shows the windows not over yet and those whose watch runs.
func (b *Bot) listWindows(ctx context.Context, rw Responder) error {
	now := b.now()
	list, err := b.maint.Windows(ctx, now.Add(-b.maintRules.Watch))
	if err != nil {
		return failReply(ctx, rw, "list the maintenance windows", "Try again in a moment.", err)
	}
	if len(list) == 0 {
		return rw.Reply(ctx, Textf("No maintenance windows are scheduled. Schedule one with `/togather maintenance schedule <env> <start> <duration> <description>`."))
	}
	lines := []string{"*Maintenance windows*"}
	for _, w := range list {
		line := fmt.Sprintf("• %s · %s", describeWindow(w, b.maintRules.Location), w.State)
		if w.Mode == ops.Mode503 {
			line += " · 503 page"
		}
		if w.Held != "" && w.State == ops.MaintHeld {
			line += " · held: " + w.Held
		}
		lines = append(lines, line)
	}
	return rw.Reply(ctx, Textf(strings.Join(lines, "\n")))
}

// cancelWindow cancels a window that has not started: its announcement
// is edited and the thread told.
func (b *Bot) cancelWindow(ctx context.Context, w ops.MaintenanceWindow, by string, rw Responder) error {
	if !w.Open() {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s is %s; only a window that has not started can be cancelled. End it with `/togather maintenance end %s`.", w.Name(), w.State, w.Name())))
	}
	w.State = ops.MaintCancelled
	moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintScheduled, ops.MaintHeld, ops.MaintProposed}, b.now())
	if err != nil {
		return failReply(ctx, rw, "cancel "+w.Name(), "Try again in a moment.", err)
	}
	if !moved {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s moved on meanwhile; `/togather maintenance list` shows where it is.", w.Name())))
	}
	if w.TS != "" {
		_ = b.poster.Update(ctx, w.Channel, w.TS, b.announcement(w, ":no_entry_sign: ~Cancelled~"))
		b.threadPost(ctx, w, "cancel", fmt.Sprintf(":no_entry_sign: %s is cancelled by %s: the maintenance will not happen.", w.Name(), mention(by)))
	}
	return rw.Reply(ctx, Message{InChannel: true, Text: fmt.Sprintf(":no_entry_sign: %s on %s cancelled by %s.", w.Name(), w.Env, mention(by))})
}

// threadPost posts text in the window's thread once per event, across
// replicas and restarts. A post that fails after its claim is logged, not
// retried: a missing line is better than a repeated announcement. Without
// an announcement yet there is no thread: nothing is claimed, and the
// next tick tries again.
func (b *Bot) threadPost(ctx context.Context, w ops.MaintenanceWindow, event, text string) {
	if b.claimPost(ctx, w, event) {
		b.postInThread(ctx, w, event, text)
	}
}

// claimPost claims the post of event for a window that has a thread.
func (b *Bot) claimPost(ctx context.Context, w ops.MaintenanceWindow, event string) bool {
	if w.TS == "" {
		return false
	}
	claimed, err := b.maint.ClaimWindowEvent(ctx, w.ID, event, b.now())
	if err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Str("event", event).Msg("claiming a maintenance post failed")
	}
	return claimed
}

// postInThread posts a claimed event's text in the window's thread.
func (b *Bot) postInThread(ctx context.Context, w ops.MaintenanceWindow, event, text string) {
	if _, err := b.poster.Post(ctx, w.Channel, w.TS, Textf(text)); err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Str("event", event).Msg("maintenance post failed")
	}
}

// MaintenanceTick moves every window along the clock: announcements 7, 3
// and 1 days before, the start, the end and the summary of the watch after
// it. Every post is claimed in the store, so a restart or a second replica
// never posts twice; a start or end whose runner died is taken over.
func (b *Bot) MaintenanceTick(ctx context.Context) error {
	if b.maint == nil {
		return nil
	}
	now := b.now()
	list, err := b.maint.Windows(ctx, now.Add(-b.maintRules.Watch-time.Hour))
	if err != nil {
		return fmt.Errorf("maintenance tick: %w", err)
	}
	var errs []error
	for _, w := range list {
		stalled := now.Sub(w.UpdatedAt) >= maintStall
		switch {
		case w.State == ops.MaintScheduled && w.TS == "" && now.Sub(w.CreatedAt) >= announceRetry:
			errs = append(errs, b.postAnnouncement(ctx, w))
		case w.State == ops.MaintScheduled && now.Before(w.Start):
			b.announceDue(ctx, w, now)
		case w.State == ops.MaintScheduled && !now.Before(w.End):
			errs = append(errs, b.missWindow(ctx, w))
		case w.State == ops.MaintScheduled, w.State == ops.MaintStarting && stalled:
			errs = append(errs, b.startWindow(ctx, w, ""))
		case w.State == ops.MaintActive && !now.Before(w.End), w.State == ops.MaintEnding && stalled:
			errs = append(errs, b.endWindow(ctx, w, ""))
		case w.State == ops.MaintEnded && !now.Before(w.EndedAt.Add(b.maintRules.Watch)):
			b.watchSummary(ctx, w)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("maintenance tick: %w", err)
	}
	return nil
}

// missWindow ends a window whose whole span passed before it could start
// (the bot was down): starting it now would take the site down unplanned.
func (b *Bot) missWindow(ctx context.Context, w ops.MaintenanceWindow) error {
	w.State, w.Held = ops.MaintCancelled, "missed: the bot was not running during the window"
	moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintScheduled}, b.now())
	if err != nil || !moved {
		return err
	}
	b.auditJob(ctx, "maintenance.cancel", w.Env, w.Name()+" "+w.Held)
	if w.TS != "" {
		_ = b.poster.Update(ctx, w.Channel, w.TS, b.announcement(w, ":no_entry_sign: ~Missed~"))
	}
	b.threadPost(ctx, w, "cancel", fmt.Sprintf(":warning: %s, %s did not start: the bot was not running between %s and its end. Nothing was done; schedule it again.",
		mention(w.Owner), w.Name(), w.Start.In(b.maintRules.Location).Format("Mon 15:04 MST")))
	return nil
}

// announceDue posts the latest announcement that is due; earlier ones
// missed while the bot was down are claimed without a post, so the thread
// never gets a burst of stale reminders.
func (b *Bot) announceDue(ctx context.Context, w ops.MaintenanceWindow, now time.Time) {
	var due []ops.Announcement
	for _, a := range b.maintRules.Announcements(w) {
		if !now.Before(a.At) {
			due = append(due, a)
		}
	}
	if w.TS == "" {
		return // claimed only once there is a thread to post in
	}
	for i, a := range due {
		if i < len(due)-1 {
			_, _ = b.maint.ClaimWindowEvent(ctx, w.ID, a.Event, now)
			continue
		}
		b.threadPost(ctx, w, a.Event, fmt.Sprintf(":loudspeaker: Reminder: maintenance %s of %s starts in %s, %s. %s",
			w.Name(), w.Env, days(a.Days), w.Start.In(b.maintRules.Location).Format("Mon 2006-01-02 15:04 MST"), escape(w.Description)))
	}
}

// startWindow starts a window: the pre-maintenance snapshot, then the
// maintenance page when asked for; alerts of the environment are muted
// from here to the end. When a step fails the start is held, nothing else
// is changed, and the owner is told why. by is who started it by hand, ""
// on schedule.
func (b *Bot) startWindow(ctx context.Context, w ops.MaintenanceWindow, by string) error {
	now := b.now()
	from := w.State
	w.State = ops.MaintStarting
	moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{from}, now)
	if err != nil || !moved {
		return err
	}
	if w.Snapshot == "" {
		snaps, ok := b.envOps.Snapshots(w.Env)
		if !ok {
			return b.holdWindow(ctx, w, by, "snapshots are not configured for "+w.Env)
		}
		info, err := snaps.Create(ctx, snapshotReason, nil)
		if err != nil {
			return b.holdWindow(ctx, w, by, fmt.Sprintf("the pre-maintenance snapshot failed: %v", err))
		}
		w.Snapshot = info.Name
		if _, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintStarting}, b.now()); err != nil {
			b.log.Error().Err(err).Str("window", w.Name()).Msg("recording the pre-maintenance snapshot failed")
		}
	}
	if w.Mode == ops.Mode503 {
		page, ok := b.envOps.Maintenance(w.Env)
		if !ok {
			return b.holdWindow(ctx, w, by, "the proxy of "+w.Env+" cannot show a maintenance page")
		}
		if err := page.EnterMaintenance(ctx, maintenancePage(w, b.maintRules.Location)); err != nil {
			return b.holdWindow(ctx, w, by, fmt.Sprintf("the proxy refused the maintenance page: %v", err))
		}
	}
	w.State, w.StartedAt, w.Held = ops.MaintActive, b.now(), ""
	if moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintStarting}, b.now()); err != nil || !moved {
		return err
	}
	started := "on schedule"
	if by != "" {
		started = "by " + mention(by)
	} else {
		b.auditJob(ctx, "maintenance.start", w.Env, w.Name()+" started on schedule; snapshot "+w.Snapshot)
	}
	text := fmt.Sprintf(":construction: *Maintenance in progress* — %s on %s started %s, until %s. Snapshot `%s` taken. Alerts of %s are muted until the end and summed up then.",
		w.Name(), w.Env, started, w.End.In(b.maintRules.Location).Format("15:04 MST"), w.Snapshot, w.Env)
	if w.Mode == ops.Mode503 {
		text += " The site shows the maintenance page."
	}
	if w.TS != "" {
		_ = b.poster.Update(ctx, w.Channel, w.TS, b.announcement(w, ":construction: In progress"))
		b.threadPost(ctx, w, "start", text)
	}
	return nil
}

// holdWindow holds a window whose start failed and tells its owner; by is
// who started it, "" for the schedule.
func (b *Bot) holdWindow(ctx context.Context, w ops.MaintenanceWindow, by, why string) error {
	w.State, w.Held = ops.MaintHeld, why
	if _, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintStarting}, b.now()); err != nil {
		return fmt.Errorf("hold %s: %w", w.Name(), err)
	}
	text := fmt.Sprintf(":pause_button: %s, the start of %s on %s is held: %s. Nothing was changed; alerts are not muted. Fix it, then `/togather maintenance start %s`, or `/togather maintenance cancel %s`.",
		mention(w.Owner), w.Name(), w.Env, why, w.Name(), w.Name())
	if w.TS != "" {
		if _, err := b.poster.Post(ctx, w.Channel, w.TS, Textf(text)); err != nil {
			return fmt.Errorf("tell the owner %s is held: %w", w.Name(), err)
		}
	}
	b.log.Warn().Str("window", w.Name()).Str("why", why).Msg("maintenance start held")
	if by == "" {
		b.auditJob(ctx, "maintenance.start", w.Env, w.Name()+" held: "+why)
	}
	return nil
}

// endWindow ends a window: the maintenance page goes, the muted alerts are
// summed up, and the watch after it begins. by is who ended it by hand,
// "" on schedule.
func (b *Bot) endWindow(ctx context.Context, w ops.MaintenanceWindow, by string) error {
	from := w.State
	w.State = ops.MaintEnding
	moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{from}, b.now())
	if err != nil || !moved {
		return err
	}
	if w.Mode == ops.Mode503 {
		if page, ok := b.envOps.Maintenance(w.Env); ok {
			if err := page.ExitMaintenance(ctx); err != nil {
				b.threadPost(ctx, w, "end-failed", fmt.Sprintf(":x: %s: the maintenance page could not be taken down: %v. The site still shows it; the bot retries every few minutes, or run `/togather maintenance end %s`.",
					mention(w.Owner), err, w.Name()))
				return fmt.Errorf("end %s: %w", w.Name(), err)
			}
		}
	}
	w.State, w.EndedAt = ops.MaintEnded, b.now()
	if moved, err := b.maint.MoveWindow(ctx, w, []ops.MaintenanceState{ops.MaintEnding}, w.EndedAt); err != nil || !moved {
		return err
	}
	muted, err := b.maint.WindowAlerts(ctx, w.ID, phaseWindow)
	if err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Msg("reading the muted alerts failed")
	}
	if by == "" {
		b.auditJob(ctx, "maintenance.end", w.Env, w.Name()+" ended on schedule")
	}
	text := fmt.Sprintf(":white_check_mark: *Maintenance complete* — %s on %s %s. %s\nWatching %s for %s; the summary follows here.",
		w.Name(), w.Env, windowEnded(w, by, b.maintRules.Location), summarizeAlerts("During the window", muted), w.Env, fmtSpan(b.maintRules.Watch))
	if w.TS != "" {
		_ = b.poster.Update(ctx, w.Channel, w.TS, b.announcement(w, ":white_check_mark: Complete"))
		b.threadPost(ctx, w, "end", text)
	}
	return nil
}

// endLate is how long after its scheduled end a window ends before the end
// post says it is late: the leader moves windows every few seconds.
const endLate = 30 * time.Second

// windowEnded says how w, just ended, ended: by whom and after how long.
// A scheduled end posted late — no replica led at the end, so the next
// leader ends it — gives the scheduled end, and when and why it is posted.
func windowEnded(w ops.MaintenanceWindow, by string, loc *time.Location) string {
	if by != "" {
		return fmt.Sprintf("ended by %s after %s", mention(by), fmtSpan(w.EndedAt.Sub(w.StartedAt)))
	}
	late := w.EndedAt.Sub(w.End)
	if late < endLate {
		return "ended on schedule after " + fmtSpan(w.EndedAt.Sub(w.StartedAt))
	}
	text := fmt.Sprintf("ended on schedule at %s (%s); posted %s late: no replica of the bot was running (or leading) at %s",
		w.End.In(loc).Format("15:04 MST"), fmtSpan(w.End.Sub(w.StartedAt)), fmtSpan(late), w.End.In(loc).Format("15:04"))
	if w.Mode == ops.Mode503 {
		text += fmt.Sprintf(", so the maintenance page stayed up until %s", w.EndedAt.In(loc).Format("15:04:05 MST"))
	}
	return text
}

// watchSummary posts what happened in the watch after a window: the alerts
// seen and the environment's health now.
func (b *Bot) watchSummary(ctx context.Context, w ops.MaintenanceWindow) {
	if !b.claimPost(ctx, w, "watch") {
		return
	}
	seen, err := b.maint.WindowAlerts(ctx, w.ID, phaseWatch)
	if err != nil {
		b.log.Error().Err(err).Str("window", w.Name()).Msg("reading the watch's alerts failed")
		return
	}
	health := "health unknown"
	if st, err := b.status.Status(ctx, w.Env); err == nil {
		health = liveHealth(st)
	}
	icon := ":white_check_mark:"
	if len(seen) > 0 {
		icon = ":warning:"
	}
	b.postInThread(ctx, w, "watch", fmt.Sprintf("%s %s after %s on %s: %s Now: %s.",
		icon, fmtSpan(b.maintRules.Watch), w.Name(), w.Env, summarizeAlerts("Alerts", seen), health))
}

// liveHealth is the live slot's health, as a few words.
func liveHealth(st ops.EnvStatus) string {
	for _, ss := range st.Slots {
		if ss.Live {
			return fmt.Sprintf("live slot %s is %s", ss.Slot, ss.Health.Status)
		}
	}
	return "no live slot could be read (" + st.ProxyErr + ")"
}

// summarizeAlerts sums up the alerts of a phase in one paragraph.
func summarizeAlerts(lead string, list []WindowAlert) string {
	if len(list) == 0 {
		return lead + ": no alerts."
	}
	lines := []string{fmt.Sprintf("%s: %d alert group(s):", lead, len(list))}
	firing := 0
	for _, a := range list {
		state := "resolved"
		if a.Firing {
			state = "*still firing*"
			firing++
		}
		line := fmt.Sprintf("• %s %s — %s, fired %d time(s), %s", severityIcon(a.Severity), escape(a.Name), escape(a.Summary), max(a.Firings, 1), state)
		lines = append(lines, line)
	}
	if firing > 0 {
		lines = append(lines, fmt.Sprintf(":point_right: %d still firing: look at them now — an alert is posted again only when it changes.", firing))
	}
	return strings.Join(lines, "\n")
}

// severityIcon marks an alert's severity.
func severityIcon(s incidents.Severity) string {
	if s == incidents.Critical {
		return ":red_circle:"
	}
	return ":large_orange_circle:"
}

// maintenancePage is the HTML shown while a window with the 503 mode runs.
func maintenancePage(w ops.MaintenanceWindow, loc *time.Location) string {
	return fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><title>Togather: maintenance</title></head>`+
		`<body><h1>Togather is down for maintenance</h1><p>We expect to be back by %s.</p></body></html>`,
		w.End.In(loc).Format("Mon 2006-01-02 15:04 MST"))
}

// windowPhase says whether env is under maintenance now (its alerts are
// muted: phaseWindow) or in the watch after one (phaseWatch), and which.
func (b *Bot) windowPhase(ctx context.Context, env string) (ops.MaintenanceWindow, string, bool) {
	if b.maint == nil || env == "" {
		return ops.MaintenanceWindow{}, "", false
	}
	now := b.now()
	list, err := b.maint.Windows(ctx, now.Add(-b.maintRules.Watch))
	if err != nil {
		b.log.Warn().Err(err).Str("env", env).Msg("cannot tell whether a maintenance window runs; alert not muted")
		return ops.MaintenanceWindow{}, "", false
	}
	for _, w := range list {
		switch {
		case w.Env != env:
		case w.InProgress():
			return w, phaseWindow, true
		case w.State == ops.MaintEnded && now.Before(w.EndedAt.Add(b.maintRules.Watch)):
			return w, phaseWatch, true
		}
	}
	return ops.MaintenanceWindow{}, "", false
}

// inMaintenance reports whether env is in a maintenance window now.
func (b *Bot) inMaintenance(ctx context.Context, env string) (ops.MaintenanceWindow, bool) {
	w, phase, ok := b.windowPhase(ctx, env)
	return w, ok && phase == phaseWindow
}
