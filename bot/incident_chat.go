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

// IncidentStore keeps incidents; CreateIncidentUnlessOpen, ClaimReminder
// and MarkEscalated are compare-and-sets so each alert-declared incident,
// reminder and escalation happens once across replicas.
type IncidentStore interface {
	CreateIncident(ctx context.Context, inc incidents.Incident) (incidents.Incident, error)
	// CreateIncidentUnlessOpen creates inc unless an incident of inc.Env is
	// open, and then returns that one with created false.
	CreateIncidentUnlessOpen(ctx context.Context, inc incidents.Incident) (_ incidents.Incident, created bool, err error)
	GetIncident(ctx context.Context, id string) (incidents.Incident, error)
	SaveIncident(ctx context.Context, inc incidents.Incident) error
	OpenIncidents(ctx context.Context) ([]incidents.Incident, error)
	OpenIncidentFor(ctx context.Context, env string) (incidents.Incident, error)
	SetIncidentThread(ctx context.Context, id, channel, ts string) error
	ClaimReminder(ctx context.Context, id string, due, now time.Time) (bool, error)
	MarkEscalated(ctx context.Context, id string) (bool, error)
}

// IncidentPolicy is how incidents are run.
type IncidentPolicy struct {
	Cadence incidents.Cadence
	// AutoDeclare opens a SEV2 incident for a critical alert when its
	// environment has none open; otherwise the alert joins the open one.
	AutoDeclare bool
}

// Incident action and form ids; values are incident ids.
const (
	actIncUpdate  = "incident.update"
	actIncResolve = "incident.resolve"
	actIncSnooze  = "incident.snooze"
	actIncDiag    = "incident.diagnostics"
	formIncUpdate = "incident.update.form"
	botActor      = "togather-chatops"
	snoozeFor     = 15 * time.Minute
)

func (b *Bot) handleIncident(ctx context.Context, req Request, cmd Command, rw Responder) error {
	if b.incidents == nil {
		return rw.Reply(ctx, Textf("Incidents are not configured on this bot."))
	}
	switch cmd.Sub {
	case "declare":
		sev, err := incidents.ParseSev(cmd.Args[0])
		if err != nil {
			return rw.Reply(ctx, Textf(":x: "+err.Error()))
		}
		inc, err := b.declare(ctx, req.User, sev, strings.Join(cmd.Args[1:], " "), cmd.Env)
		if err != nil {
			_ = rw.Reply(ctx, Textf(":x: The incident could not be declared: "+err.Error()))
			return err
		}
		return rw.Reply(ctx, Textf(fmt.Sprintf(":rotating_light: %s declared; its thread is in <#%s>. Post updates with `/togather incident update %s`.", inc.ID, b.channels.Incidents, inc.ID)))
	case "list":
		return b.listIncidents(ctx, rw)
	}
	inc, err := b.incidentFor(ctx, cmd)
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()))
	}
	switch cmd.Sub {
	case "update":
		forms, ok := b.poster.(FormOpener)
		if !ok || req.TriggerID == "" {
			return rw.Reply(ctx, Textf("Updates are posted through a form; press *Post update* in the incident's thread."))
		}
		return forms.OpenForm(ctx, req.TriggerID, updateForm(inc))
	case "sev":
		sev, err := incidents.ParseSev(cmd.Args[1])
		if err != nil {
			return rw.Reply(ctx, Textf(":x: "+err.Error()))
		}
		return b.applyUpdate(ctx, inc, incidents.Update{Status: inc.Status, Severity: sev, By: req.User, At: b.now()}, rw)
	case "note":
		text := strings.Join(cmd.Args[1:], " ")
		inc.Timeline = append(inc.Timeline, incidents.Entry{At: b.now(), Kind: "note", By: req.User, Text: text})
		if err := b.incidents.SaveIncident(ctx, inc); err != nil {
			return err
		}
		_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Textf(fmt.Sprintf(":memo: <@%s>: %s", req.User, text)))
		return rw.Reply(ctx, Textf("Noted on "+inc.ID+"'s timeline."))
	case "resolve":
		return b.applyUpdate(ctx, inc, incidents.Update{Status: incidents.Resolved, Severity: inc.Sev, By: req.User, At: b.now(), WhatWeAreDoing: "resolved"}, rw)
	case "report":
		return rw.Reply(ctx, Message{Text: "Report of " + inc.ID, Blocks: []Block{Preformatted{Text: incidents.Report(inc, nil)}}})
	}
	return rw.Reply(ctx, Textf("unknown incident command"))
}

// incidentFor finds the incident a command names, or the only open one.
func (b *Bot) incidentFor(ctx context.Context, cmd Command) (incidents.Incident, error) {
	if len(cmd.Args) > 0 && strings.HasPrefix(cmd.Args[0], "INC-") {
		inc, err := b.incidents.GetIncident(ctx, cmd.Args[0])
		if err != nil {
			return inc, fmt.Errorf("%s: no such incident", cmd.Args[0])
		}
		return inc, nil
	}
	open, err := b.incidents.OpenIncidents(ctx)
	if err != nil {
		return incidents.Incident{}, err
	}
	switch len(open) {
	case 0:
		return incidents.Incident{}, errors.New("no incident is open")
	case 1:
		return open[0], nil
	}
	var ids []string
	for _, inc := range open {
		ids = append(ids, inc.ID)
	}
	return incidents.Incident{}, fmt.Errorf("several incidents are open (%s): name one", strings.Join(ids, ", "))
}

// declare opens an incident with its own thread in the incidents channel;
// SEV1 pages the on-call group.
func (b *Bot) declare(ctx context.Context, by string, sev incidents.Sev, title, env string) (incidents.Incident, error) {
	inc, err := b.incidents.CreateIncident(ctx, b.newIncident(by, sev, title, env, ""))
	if err != nil {
		return inc, fmt.Errorf("declare: %w", err)
	}
	return inc, b.announce(ctx, inc, by)
}

// declareForAlert declares an incident for alert a, whose timeline text is
// alertText, unless its environment has one open: then it returns that
// one, created false, and posts nothing. Alerts racing, on any replica,
// open one incident.
func (b *Bot) declareForAlert(ctx context.Context, by string, sev incidents.Sev, a incidents.Alert, alertText string) (_ incidents.Incident, created bool, err error) {
	inc, created, err := b.incidents.CreateIncidentUnlessOpen(ctx, b.newIncident(by, sev, a.Summary, a.Env, alertText))
	if err != nil {
		return inc, false, fmt.Errorf("declare for alert %s: %w", a.Key, err)
	}
	if !created {
		return inc, false, nil
	}
	return inc, true, b.announce(ctx, inc, by)
}

// newIncident is an investigating incident declared now by by, with the
// alert text on its timeline when not empty.
func (b *Bot) newIncident(by string, sev incidents.Sev, title, env, alertText string) incidents.Incident {
	now := b.now()
	inc := incidents.Incident{Title: title, Sev: sev, Env: env, Status: incidents.Investigating, Commander: by, DeclaredAt: now, LastUpdateAt: now,
		Timeline: []incidents.Entry{{At: now, Kind: incidents.KindDeclared, By: by, Text: fmt.Sprintf("%s declared: %s", strings.ToUpper(string(sev)), title)}}}
	if alertText != "" {
		inc.Timeline = append(inc.Timeline, incidents.Entry{At: now, Kind: incidents.KindAlert, By: botActor, Text: alertText})
	}
	return inc
}

// announce posts a new incident's parent message, records it as the
// incident's thread and posts the first update there.
func (b *Bot) announce(ctx context.Context, inc incidents.Incident, by string) error {
	ts, err := b.poster.Post(ctx, b.channels.Incidents, "", b.renderIncident(inc))
	if err != nil {
		return fmt.Errorf("post %s: %w", inc.ID, err)
	}
	inc.Channel, inc.ThreadTS = b.channels.Incidents, ts
	if err := b.incidents.SetIncidentThread(ctx, inc.ID, inc.Channel, ts); err != nil {
		return err
	}
	u := incidents.Update{Status: inc.Status, Severity: inc.Sev, Impact: "being assessed", WhatHappened: inc.Title, WhatWeAreDoing: "investigating", NextUpdate: b.nextUpdateText(inc), By: by, At: inc.DeclaredAt}
	_, _ = b.poster.Post(ctx, inc.Channel, ts, Textf(incidents.TemplateText(inc, u)))
	return nil
}

// addAlert puts an alert on an open incident's timeline and, once the
// incident has its thread, into the thread. An incident declared by a
// racing alert may not have its thread yet; the timeline still holds it.
func (b *Bot) addAlert(ctx context.Context, inc incidents.Incident, text string) error {
	inc.Timeline = append(inc.Timeline, incidents.Entry{At: b.now(), Kind: incidents.KindAlert, By: botActor, Text: text})
	if err := b.incidents.SaveIncident(ctx, inc); err != nil {
		return fmt.Errorf("add alert to %s: %w", inc.ID, err)
	}
	if inc.ThreadTS != "" {
		_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Textf(":red_circle: "+text))
	}
	return nil
}

// hasAlert reports whether inc's timeline holds the alert text.
func hasAlert(inc incidents.Incident, text string) bool {
	for _, e := range inc.Timeline {
		if e.Kind == incidents.KindAlert && e.Text == text {
			return true
		}
	}
	return false
}

// alertText is how an alert is written on an incident's timeline.
func alertText(a incidents.Alert) string {
	return fmt.Sprintf("%s alert %s: %s", a.Severity, a.Name, a.Summary)
}

func (b *Bot) nextUpdateText(inc incidents.Incident) string {
	if due, ok := inc.NextReminder(b.incidentPolicy.Cadence); ok {
		return due.UTC().Format("15:04 UTC")
	}
	return "at the next status change"
}

// renderIncident is the incident's parent message.
func (b *Bot) renderIncident(inc incidents.Incident) Message {
	page := ""
	if inc.Sev == incidents.SEV1 && inc.Status != incidents.Resolved && b.channels.OncallGroup != "" {
		page = fmt.Sprintf("<!subteam^%s> ", b.channels.OncallGroup)
	}
	env := ""
	if inc.Env != "" {
		env = " · " + inc.Env
	}
	text := fmt.Sprintf("%s:rotating_light: *%s · %s%s · %s*\n%s\ncommander <@%s> · declared %s", page, inc.ID, strings.ToUpper(string(inc.Sev)), env, inc.Status, escape(inc.Title), inc.Commander, inc.DeclaredAt.UTC().Format("15:04 UTC"))
	blocks := []Block{Section{Text: text}}
	if inc.Status != incidents.Resolved {
		buttons := []Button{{ActionID: actIncUpdate, Label: "Post update", Value: inc.ID, Style: Primary}, {ActionID: actIncResolve, Label: "Resolve", Value: inc.ID}}
		if inc.Env != "" {
			buttons = append(buttons, Button{ActionID: actIncDiag, Label: "Diagnostics", Value: inc.ID})
		}
		blocks = append(blocks, Actions{ID: "incident", Buttons: buttons})
	}
	return Message{Text: text, Blocks: blocks}
}

func updateForm(inc incidents.Incident) Form {
	return Form{ID: formIncUpdate, Value: inc.ID, Title: "Update " + inc.ID, Submit: "Post update", Inputs: []FormInput{
		{ID: "status", Label: "Status (investigating, identified, monitoring, resolved)"},
		{ID: "severity", Label: "Severity (sev1, sev2, sev3)"},
		{ID: "impact", Label: "Impact", Multiline: true},
		{ID: "what_happened", Label: "What happened", Multiline: true},
		{ID: "what_doing", Label: "What we're doing", Multiline: true},
		{ID: "next_update", Label: "Next update", Optional: true},
	}}
}

// applyUpdate records an update, posts the template in the thread, edits
// the parent, and on resolution posts the report.
func (b *Bot) applyUpdate(ctx context.Context, inc incidents.Incident, u incidents.Update, rw Responder) error {
	if err := inc.Apply(u); err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()))
	}
	if err := b.incidents.SaveIncident(ctx, inc); err != nil {
		return fmt.Errorf("save %s: %w", inc.ID, err)
	}
	if u.NextUpdate == "" {
		u.NextUpdate = b.nextUpdateText(inc)
	}
	_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Textf(incidents.TemplateText(inc, u)))
	_ = b.poster.Update(ctx, inc.Channel, inc.ThreadTS, b.renderIncident(inc))
	if inc.Status == incidents.Resolved {
		_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Message{Text: "Report of " + inc.ID, Blocks: []Block{Section{Text: "*Report of " + inc.ID + "*"}, Preformatted{Text: incidents.Report(inc, nil)}}})
	}
	return nil
}

func (b *Bot) listIncidents(ctx context.Context, rw Responder) error {
	open, err := b.incidents.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	if len(open) == 0 {
		return rw.Reply(ctx, Textf("No incident is open."))
	}
	var lines []string
	for _, inc := range open {
		lines = append(lines, fmt.Sprintf("*%s* · %s · %s · %s — %s (since %s)", inc.ID, strings.ToUpper(string(inc.Sev)), inc.Env, inc.Status, escape(inc.Title), inc.DeclaredAt.UTC().Format("Jan 2 15:04 UTC")))
	}
	return rw.Reply(ctx, Textf(strings.Join(lines, "\n")))
}

// handleIncidentAction handles the incident buttons and the update form.
func (b *Bot) handleIncidentAction(ctx context.Context, req Request, rw Responder) error {
	inc, err := b.incidents.GetIncident(ctx, req.Action.Value)
	if err != nil {
		return rw.Reply(ctx, Textf(":information_source: This incident no longer exists."))
	}
	if allowed, why := b.authz.Decide(ctx, req.User, "incident.update", inc.Env); !allowed {
		return rw.Reply(ctx, Textf(":no_entry: "+why))
	}
	switch req.Action.ActionID {
	case actIncUpdate:
		forms, ok := b.poster.(FormOpener)
		if !ok {
			return rw.Reply(ctx, Textf("This chat cannot open forms; use `/togather incident sev|note|resolve`."))
		}
		return forms.OpenForm(ctx, req.Action.TriggerID, updateForm(inc))
	case actIncResolve:
		return b.applyUpdate(ctx, inc, incidents.Update{Status: incidents.Resolved, Severity: inc.Sev, By: req.User, At: b.now(), WhatWeAreDoing: "resolved"}, rw)
	case actIncDiag:
		return b.diagnostics(ctx, req, inc, rw)
	case actIncSnooze:
		inc.SnoozedUntil = b.now().Add(snoozeFor)
		inc.Timeline = append(inc.Timeline, incidents.Entry{At: b.now(), Kind: "note", By: req.User, Text: "reminder snoozed for 15 minutes"})
		if err := b.incidents.SaveIncident(ctx, inc); err != nil {
			return err
		}
		return rw.Reply(ctx, Textf(fmt.Sprintf("Reminder for %s snoozed until %s.", inc.ID, inc.SnoozedUntil.UTC().Format("15:04 UTC"))))
	}
	in := req.Action.Inputs
	status, err := incidents.ParseStatus(strings.TrimSpace(in["status"]))
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()+" — nothing was posted; open the form again."))
	}
	sev, err := incidents.ParseSev(strings.TrimSpace(in["severity"]))
	if err != nil {
		return rw.Reply(ctx, Textf(":x: "+err.Error()+" — nothing was posted; open the form again."))
	}
	return b.applyUpdate(ctx, inc, incidents.Update{Status: status, Severity: sev, Impact: in["impact"], WhatHappened: in["what_happened"],
		WhatWeAreDoing: in["what_doing"], NextUpdate: in["next_update"], By: req.User, At: b.now()}, rw)
}

// criticalToIncident adds a critical alert to its environment's open
// incident, or declares one when the policy says so.
func (b *Bot) criticalToIncident(ctx context.Context, a incidents.Alert) {
	if b.incidents == nil {
		return
	}
	text := alertText(a)
	var (
		inc incidents.Incident
		err error
	)
	if b.incidentPolicy.AutoDeclare {
		var created bool
		inc, created, err = b.declareForAlert(ctx, botActor, incidents.SEV2, a, text)
		if err == nil && !created {
			err = b.addAlert(ctx, inc, text)
		}
	} else if inc, err = b.incidents.OpenIncidentFor(ctx, a.Env); err == nil {
		err = b.addAlert(ctx, inc, text)
	} else {
		return // none open to join
	}
	if err != nil {
		b.log.Error().Err(err).Str("alert", a.Key).Msg("bringing a critical alert to an incident failed")
	}
}

func (b *Bot) declareFromAlert(ctx context.Context, req Request, rec AlertRecord, rw Responder) error {
	allowed, why := b.authz.Decide(ctx, req.User, "incident.declare", rec.Alert.Env)
	_ = b.record(ctx, req, "incident.declare", rec.Alert.Env, allowed, why+" (alert "+rec.Alert.Key+")")
	if !allowed {
		return rw.Reply(ctx, Textf(":no_entry: "+why))
	}
	sev := incidents.SEV3
	if rec.Alert.Severity == incidents.Critical {
		sev = incidents.SEV2
	}
	text := alertText(rec.Alert)
	inc, created, err := b.declareForAlert(ctx, req.User, sev, rec.Alert, text)
	if err == nil && !created && !hasAlert(inc, text) {
		err = b.addAlert(ctx, inc, text)
	}
	if err != nil {
		_ = rw.Reply(ctx, Textf(":x: The incident could not be declared: "+err.Error()))
		return err
	}
	if created {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":rotating_light: %s declared from the alert.", inc.ID)))
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: %s is already open for %s; the alert is on its timeline.", inc.ID, rec.Alert.Env)))
}

// IncidentTick sends due update reminders (SEV1 every 30 min, SEV2 every
// hour, configurable) and escalates SEV2 incidents open 30 minutes. Each
// reminder and escalation is claimed in the store, so with several
// replicas each happens once.
func (b *Bot) IncidentTick(ctx context.Context) error {
	if b.incidents == nil {
		return nil
	}
	open, err := b.incidents.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("incident reminders: %w", err)
	}
	now := b.now()
	page := ""
	if b.channels.OncallGroup != "" {
		page = fmt.Sprintf("<!subteam^%s> ", b.channels.OncallGroup)
	}
	for _, inc := range open {
		if due, ok := inc.NextReminder(b.incidentPolicy.Cadence); ok && !now.Before(due) {
			if claimed, err := b.incidents.ClaimReminder(ctx, inc.ID, due, now); err == nil && claimed {
				_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Message{
					Text: fmt.Sprintf("%s%s: an update was due at %s.", page, inc.ID, due.UTC().Format("15:04 UTC")),
					Blocks: []Block{Section{Text: fmt.Sprintf(":alarm_clock: %s*%s* (%s): an update was due at %s. Post one with the button or `/togather incident update %s`.", page, inc.ID, strings.ToUpper(string(inc.Sev)), due.UTC().Format("15:04 UTC"), inc.ID)},
						Actions{ID: "reminder", Buttons: []Button{{ActionID: actIncUpdate, Label: "Post update", Value: inc.ID, Style: Primary}, {ActionID: actIncSnooze, Label: "Snooze 15 min", Value: inc.ID}}}}})
			}
		}
		if inc.ShouldEscalate(b.incidentPolicy.Cadence, now) {
			if first, err := b.incidents.MarkEscalated(ctx, inc.ID); err == nil && first {
				_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Textf(fmt.Sprintf(":arrow_double_up: %s%s has been open %s: escalating to on-call.", page, inc.ID, now.Sub(inc.DeclaredAt).Round(time.Minute))))
			}
		}
	}
	return nil
}

// operationOnTimeline adds a finished deploy or rollback to its
// environment's open incident.
func (b *Bot) operationOnTimeline(op ops.Operation) {
	if b.incidents == nil || !op.State.Terminal() || (op.Kind != ops.KindDeploy && op.Kind != ops.KindRollback) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inc, err := b.incidents.OpenIncidentFor(ctx, op.Env)
	if err != nil {
		return
	}
	text := fmt.Sprintf("%s: %s", title(op), op.State)
	inc.Timeline = append(inc.Timeline, incidents.Entry{At: b.now(), Kind: string(op.Kind), By: op.Requester, Text: text})
	if b.incidents.SaveIncident(ctx, inc) == nil {
		_, _ = b.poster.Post(ctx, inc.Channel, inc.ThreadTS, Textf(":package: "+text))
	}
}

// diagnostics uploads the environment's diagnostics into the incident's
// thread.
func (b *Bot) diagnostics(ctx context.Context, req Request, inc incidents.Incident, rw Responder) error {
	up, ok := b.poster.(Uploader)
	if !ok {
		return rw.Reply(ctx, Textf("This chat cannot take file uploads."))
	}
	text, err := b.envOps.Diagnostics(ctx, inc.Env)
	if err != nil {
		_ = rw.Reply(ctx, Textf(":x: Diagnostics could not be gathered: "+err.Error()))
		return fmt.Errorf("diagnostics %s: %w", inc.Env, err)
	}
	name := fmt.Sprintf("%s-%s-diagnostics-%s.txt", inc.ID, inc.Env, b.now().UTC().Format("20060102-150405"))
	if err := up.Upload(ctx, inc.Channel, inc.ThreadTS, name, text); err != nil {
		return fmt.Errorf("upload diagnostics: %w", err)
	}
	inc.Timeline = append(inc.Timeline, incidents.Entry{At: b.now(), Kind: "note", By: req.User, Text: "diagnostics uploaded: " + name})
	return b.incidents.SaveIncident(ctx, inc)
}
