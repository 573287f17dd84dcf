package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Action ids of the buttons and forms of the deploy flow. A button's value
// is the id of the operation it acts on.
const (
	actApprove     = "op.approve"
	actReject      = "op.reject"
	actConfirm     = "op.confirm" // a rollback's confirmation
	actCancel      = "op.cancel"
	actRollback    = "deploy.rollback" // on a finished deploy: roll it back
	formReject     = "op.reject.reason"
	inputReason    = "reason"
	opRunTimeout   = 30 * time.Minute // a deploy or rollback, detached from the command's timeout
	rollbackPrefix = "rbk_of_"        // a rollback started from a deploy's button: one per deploy
)

// handleDeploy runs the pre-flight checks, posts the report in the deploys
// channel with Approve/Reject buttons when the policy needs approval, and
// otherwise deploys at once. A failing report is posted without buttons.
func (b *Bot) handleDeploy(ctx context.Context, req Request, cmd Command, rw Responder) error {
	version := cmd.Args[0]
	override, _ := cmd.Flag("override-window")
	destructive, _ := cmd.Flag("allow-destructive")
	reason, _ := cmd.Flag("reason")
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":mag: Running the pre-flight checks of `%s` on %s…", version, cmd.Env)))
	report, err := b.envOps.Preflight(ctx, ops.PreflightRequest{Env: cmd.Env, Version: version, AllowDestructive: destructive, OverrideWindow: override, Now: b.now()})
	if err != nil {
		_ = rw.Reply(ctx, Textf(":x: The pre-flight checks could not run: "+err.Error()))
		return fmt.Errorf("preflight %s %s: %w", cmd.Env, version, err)
	}
	if cmd.Bool("dry-run") {
		m := RenderPreflight(report)
		m.Blocks = append(m.Blocks, Context{Text: "Dry run: nothing was changed and nothing will be."})
		return b.replyReport(ctx, rw, m, report)
	}
	policy, _ := b.envOps.Policy(cmd.Env)
	needed := 0
	if policy.RequireApproval {
		needed = max(policy.Approvals, 1)
	}
	if override != "" && windowClosed(report) {
		needed++ // the policy's extra approval for deploying outside the window
	}
	msg := RenderPreflight(report)
	msg.Blocks = append([]Block{Section{Text: fmt.Sprintf("<@%s> asks to deploy `%s` to *%s*%s", req.User, version, cmd.Env, quoteReason(reason))}}, msg.Blocks...)
	if report.Verdict() == ops.CheckFail {
		msg.Blocks = append(msg.Blocks, Context{Text: "Nothing will be deployed: fix the blocking checks above, then ask again."})
		ts, err := b.poster.Post(ctx, b.channels.Deploys, "", msg)
		b.postPendingList(ctx, b.channels.Deploys, ts, report)
		b.recordRefusal(ctx, req, reason, report, map[string]string{chatChannel: b.channels.Deploys, chatTS: ts})
		_ = rw.Reply(ctx, Textf(fmt.Sprintf(":x: The pre-flight checks of `%s` on %s failed; the report is in <#%s> (%s).", version, cmd.Env, b.channels.Deploys, ts)))
		return err
	}
	now := b.now()
	binding := report.Binding()
	op := ops.Operation{ID: ops.NewOpID(ops.KindDeploy, now), Kind: ops.KindDeploy, Env: cmd.Env, Requester: req.User, Reason: reason,
		State: ops.StepRequested, Version: version, Image: report.Image, ImageID: report.ImageID, CreatedAt: now, UpdatedAt: now,
		Chat:     map[string]string{chatChannel: b.channels.Deploys},
		Approval: &ops.Approval{Needed: needed, Expires: now.Add(b.approval.TTL), Binding: &binding}}
	if needed > 0 {
		msg.Blocks = append(msg.Blocks,
			Context{Text: fmt.Sprintf("Needs %d approval(s) from someone other than <@%s>, bound to image %s and report %s; expires at %s.",
				needed, req.User, shortID(report.ImageID), shortID(report.Hash), op.Approval.Expires.UTC().Format("15:04 UTC"))},
			Actions{ID: "approval", Buttons: []Button{
				{ActionID: actApprove, Label: "Approve", Value: op.ID, Style: Primary},
				{ActionID: actReject, Label: "Reject", Value: op.ID, Style: Danger},
			}})
	}
	if err := b.postRequest(ctx, &op, msg); err != nil {
		_ = rw.Reply(ctx, Textf(":x: The request could not be posted in the deploys channel: "+err.Error()))
		return err
	}
	b.postPendingList(ctx, op.Chat[chatChannel], op.Chat[chatTS], report)
	if needed > 0 {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":hourglass: Waiting for approval in <#%s>.", b.channels.Deploys)))
	}
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":rocket: Deploying `%s` to %s; progress in the thread in <#%s>.", version, cmd.Env, b.channels.Deploys)))
	moved, ok, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepApproved, b.note("no approval needed by policy"))
	if err != nil || !ok {
		return fmt.Errorf("start deploy %s: %v (moved %v)", op.ID, err, ok)
	}
	b.runDeploy(ctx, moved)
	return nil
}

// recordRefusal puts a deploy refused by pre-flight in the history, as a
// failed operation, and in the audit log, as denied. Neither write stops
// the refusal: it is logged when it fails.
func (b *Bot) recordRefusal(ctx context.Context, req Request, reason string, report ops.Report, chat map[string]string) {
	op := ops.RefusedDeploy(report, req.User, reason, chat, b.now())
	if err := b.ops.Create(ctx, op); err != nil {
		b.log.Warn().Err(err).Str("op", op.ID).Msg("recording the refused deploy failed")
	}
	if err := b.record(ctx, req, "deploy", report.Env, false, fmt.Sprintf("%s %s (%s)", report.Version, op.Error, op.ID)); err != nil {
		b.log.Warn().Err(err).Str("op", op.ID).Msg("auditing the refused deploy failed")
	}
}

// postRequest records a request, then posts its message and records where
// it is: recorded first, so a click that comes at once finds it.
func (b *Bot) postRequest(ctx context.Context, op *ops.Operation, msg Message) error {
	if err := b.ops.Create(ctx, *op); err != nil {
		return fmt.Errorf("record %s request: %w", op.Kind, err)
	}
	ts, err := b.poster.Post(ctx, op.Chat[chatChannel], "", msg)
	if err != nil {
		_, _, _ = b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepFailed,
			ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "its request could not be posted: " + err.Error()})
		return fmt.Errorf("post %s request: %w", op.Kind, err)
	}
	op.Chat[chatTS] = ts
	if err := b.ops.SetChat(ctx, op.ID, op.Chat); err != nil {
		return fmt.Errorf("record where the %s request is: %w", op.Kind, err)
	}
	return nil
}

// windowClosed reports whether the report found the deploy window closed.
func windowClosed(r ops.Report) bool {
	for _, c := range r.Checks {
		if c.Name == "window" {
			return c.Status != ops.CheckPass
		}
	}
	return false
}

func quoteReason(r string) string {
	if r == "" {
		return ""
	}
	return fmt.Sprintf(": _%s_", escape(r))
}

func (b *Bot) note(detail string) ops.JournalEntry {
	return ops.JournalEntry{At: b.now(), Step: ops.StepRequested, Phase: ops.PhaseNote, Detail: detail}
}

// runDeploy runs an approved operation to its end, detached from the
// command's timeout, and edits its request message to the outcome.
func (b *Bot) runDeploy(ctx context.Context, op ops.Operation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opRunTimeout)
	defer cancel()
	var done ops.Operation
	var err error
	switch op.Kind {
	case ops.KindDeploy:
		done, err = b.envOps.Deploy(ctx, op.Env, ops.DeployRequest{Version: op.Version, Requester: op.Requester, Reason: op.Reason, ImageID: op.ImageID, OpID: op.ID})
	case ops.KindRollback:
		done, err = b.envOps.Rollback(ctx, op.Env, ops.RollbackRequest{Requester: op.Requester, Reason: op.Reason, OpID: op.ID, RestoreSnapshot: op.Chat[chatRestore] == "true"})
	case ops.KindRestore:
		done, err = b.runRestore(ctx, op)
	case ops.KindDB:
		done, err = b.runDB(ctx, op)
	}
	if err != nil {
		b.log.Warn().Err(err).Str("op", op.ID).Msg("operation failed")
	}
	// Operations journal their end, and Progress edits the message then;
	// one that never started is finished here.
	if done.ID == "" {
		done = op
		done.State, done.Error = ops.StepFailed, fmt.Sprint(err)
		b.finishMessage(ctx, done)
	}
}

// finishMessage edits an operation's request message to its outcome at
// once, for operations whose end is not journalled through Progress.
func (b *Bot) finishMessage(ctx context.Context, op ops.Operation) {
	channel, ts := op.Chat[chatChannel], op.Chat[chatTS]
	if channel == "" || ts == "" {
		return
	}
	if err := b.poster.Update(ctx, channel, ts, outcomeMessage(op)); err != nil {
		b.log.Warn().Err(err).Str("op", op.ID).Msg("editing the request message failed")
	}
}

// outcomeMessage is what an ended operation's request message shows: its
// outcome, with a Roll back button while the previous slot of a deploy is
// warm.
func outcomeMessage(op ops.Operation) Message {
	m := RenderOutcome(op)
	if op.Kind == ops.KindDeploy && op.State == ops.StepDone {
		m.Blocks = append(m.Blocks, Actions{ID: "outcome", Buttons: []Button{{ActionID: actRollback, Label: "Roll back", Value: op.ID, Style: Danger}}})
	}
	return m
}

// RenderOutcome says how an operation ended and what state the environment
// is in now.
func RenderOutcome(op ops.Operation) Message {
	last := ""
	if n := len(op.Journal); n > 0 {
		last = op.Journal[n-1].Detail
	}
	var head string
	switch op.State {
	case ops.StepDone:
		head = fmt.Sprintf(":white_check_mark: *%s: done*", title(op))
	case ops.StepRolledBack:
		head = fmt.Sprintf(":leftwards_arrow_with_hook: *%s: rolled back*", title(op))
	case ops.StepNeedsAttention:
		head = fmt.Sprintf(":rotating_light: *%s needs attention*", title(op))
	default:
		head = fmt.Sprintf(":x: *%s: %s*", title(op), op.State)
	}
	text := head
	if last != "" {
		text += "\n" + last
	}
	if op.State == ops.StepNeedsAttention {
		text += "\nRun `/togather status " + op.Env + "` and see docs/operations.md → recover by hand."
	}
	foot := fmt.Sprintf("operation %s · requested by <@%s>", op.ID, op.Requester)
	return Message{Text: text, Blocks: []Block{Section{Text: text}, Context{Text: foot}}}
}

// HandleAction handles button presses and form submissions. Every press
// is checked against the operation's current state with a compare-and-set,
// so double clicks, racing approvers and stale buttons have one effect at
// most; each refused press is told why.
func (b *Bot) HandleAction(ctx context.Context, req Request, rw Responder) error {
	a := req.Action
	switch a.ActionID {
	case actApprove:
		return b.approve(ctx, req, rw)
	case actReject:
		return b.askRejectReason(ctx, req, rw)
	case formReject:
		return b.reject(ctx, req, rw)
	case actConfirm:
		return b.confirm(ctx, req, rw)
	case actCancel:
		return b.cancel(ctx, req, rw)
	case actRollback:
		return b.rollbackFromButton(ctx, req, rw)
	case actAlertAck, actAlertSilence, actAlertDeclare:
		return b.handleAlertAction(ctx, req, rw)
	case actIncUpdate, actIncResolve, actIncSnooze, actIncDiag, formIncUpdate:
		return b.handleIncidentAction(ctx, req, rw)
	case actMaintConfirm, actMaintDiscard:
		return b.confirmWindow(ctx, req, rw)
	}
	return rw.Reply(ctx, Textf(":information_source: This button is no longer active. Run the command again to get a fresh one."))
}

// Answers a request waits for: approvals (Approve, Reject) when it needs
// any, else a confirmation (Roll back now, Cancel).
const (
	byApproval     = true
	byConfirmation = false
)

// pending loads the operation a button acts on and checks that it still
// waits, and for this kind of answer: a confirmation button cannot start a
// request that needs approvals, nor Approve one that needs a confirmation
// (a forged or mismatched payload), and such a press is audited as denied.
func (b *Bot) pending(ctx context.Context, req Request, id string, approval bool, rw Responder) (ops.Operation, bool) {
	op, err := b.ops.Get(ctx, id)
	if err != nil {
		_ = rw.Reply(ctx, Textf(":information_source: This request no longer exists."))
		return op, false
	}
	if op.State != ops.StepRequested {
		_ = rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: This request is already %s; the button does nothing now.", op.State)))
		return op, false
	}
	if op.Approval == nil || op.Approval.Expired(b.now()) {
		b.expire(ctx, op)
		_ = rw.Reply(ctx, Textf(":hourglass: This request expired; ask again for a fresh pre-flight report."))
		return op, false
	}
	if (op.Approval.Needed > 0) != approval {
		want := "a confirmation"
		if op.Approval.Needed > 0 {
			want = fmt.Sprintf("%d approval(s)", op.Approval.Needed)
		}
		_ = b.record(ctx, req, req.Action.ActionID, op.Env, false, fmt.Sprintf("button %s on %s, which needs %s", req.Action.ActionID, op.ID, want))
		_ = rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: This button does not answer the %s: it needs %s.", title(op), want)))
		return op, false
	}
	return op, true
}

func (b *Bot) approve(ctx context.Context, req Request, rw Responder) error {
	op, ok := b.pending(ctx, req, req.Action.Value, byApproval, rw)
	if !ok {
		return nil
	}
	allowed, why := false, "you asked for this, so someone else must approve it"
	if req.User != op.Requester {
		allowed, why = b.authz.Decide(ctx, req.User, "approve", op.Env)
	}
	if !b.decided(ctx, req, "approve", op.Env, allowed, why, op.ID, rw) {
		return nil
	}
	op, added, err := b.ops.Approve(ctx, op.ID, req.User, ops.StepRequested, b.note("approved by "+req.User))
	switch {
	case err != nil:
		return fmt.Errorf("approve %s: %w", req.Action.Value, err)
	case op.State != ops.StepRequested:
		return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: This request is already %s.", op.State)))
	case !added:
		return rw.Reply(ctx, Textf(":information_source: You already approved this request: it needs someone else."))
	}
	if got, needed := len(op.Approvers), op.Approval.Needed; got < needed {
		_, _ = b.poster.Post(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":ballot_box_with_check: Approved by <@%s> (%d of %d).", req.User, got, needed)))
		return nil
	}
	op, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepApproved, b.note("approvals complete"))
	if err != nil || !moved {
		return err // another approver's click completed it
	}
	if op.Kind == ops.KindDeploy {
		if void, err := b.recheck(ctx, op); void {
			return err
		}
	}
	_ = b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Message{Text: fmt.Sprintf(":rocket: %s approved by <@%s>: running…", title(op), req.User),
		Blocks: []Block{Section{Text: fmt.Sprintf(":rocket: *%s* approved by <@%s>: running, progress in the thread.", title(op), req.User)}}})
	b.runDeploy(ctx, op)
	return nil
}

// recheck runs the pre-flight checks of an approved deploy again, with the
// options the approvers saw, and voids the approval when the image, the
// pending migrations or a check's outcome got worse since. err is a
// failure to run the checks or to post about the void.
func (b *Bot) recheck(ctx context.Context, op ops.Operation) (void bool, err error) {
	bound := op.Approval.Binding
	if bound == nil {
		return true, b.voidApproval(ctx, op, ops.Report{}, "the request was made by an older version of the bot, which bound no pre-flight report to it")
	}
	fresh, err := b.envOps.Preflight(ctx, bound.Request(op.Env, op.Version, b.now()))
	if err != nil {
		return true, errors.Join(err, b.voidApproval(ctx, op, ops.Report{}, "the pre-flight checks could not run again: "+err.Error()))
	}
	if drift := bound.Drift(fresh); len(drift) > 0 {
		return true, b.voidApproval(ctx, op, fresh, "since it was approved, "+strings.Join(drift, "; "))
	}
	return false, nil
}

// voidApproval ends an approved deploy whose image or pre-flight outcome
// changed since the report the approvers saw, says why, and posts the
// fresh report when there is one.
func (b *Bot) voidApproval(ctx context.Context, op ops.Operation, fresh ops.Report, why string) error {
	_, _, _ = b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepApproved}, ops.StepFailed, ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "approval void: " + why})
	_ = b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":warning: The approval of %s on %s is void: %s. Nothing was deployed; ask again for a fresh report and approval.", op.Version, op.Env, why)))
	if fresh.Env == "" {
		return nil
	}
	m := RenderPreflight(fresh)
	m.Blocks = append([]Block{Section{Text: fmt.Sprintf("Fresh report for <@%s>'s deploy of `%s` to *%s*: ask again with `/togather deploy %s %s` to get approval buttons.", op.Requester, op.Version, op.Env, op.Env, op.Version)}}, m.Blocks...)
	_, err := b.poster.Post(ctx, op.Chat[chatChannel], op.Chat[chatTS], m)
	return err
}

func (b *Bot) askRejectReason(ctx context.Context, req Request, rw Responder) error {
	op, ok := b.pending(ctx, req, req.Action.Value, byApproval, rw)
	if !ok {
		return nil
	}
	if allowed, why := b.mayReject(ctx, req.User, op); !allowed {
		b.decided(ctx, req, "reject", op.Env, false, why, op.ID, rw)
		return nil
	}
	forms, ok := b.poster.(FormOpener)
	if !ok {
		return b.rejectWith(ctx, req, op.ID, "(no reason: this chat cannot ask)", rw)
	}
	return forms.OpenForm(ctx, req.Action.TriggerID, Form{ID: formReject, Value: op.ID, Title: "Reject request", Submit: "Reject",
		Inputs: []FormInput{{ID: inputReason, Label: fmt.Sprintf("Why reject the %s?", title(op)), Multiline: true}}})
}

// mayReject decides whether user may reject op: its requester withdraws
// it, anyone else needs the approve permission.
func (b *Bot) mayReject(ctx context.Context, user string, op ops.Operation) (bool, string) {
	if user == op.Requester {
		return true, "the requester withdraws the request"
	}
	return b.authz.Decide(ctx, user, "approve", op.Env)
}

func (b *Bot) reject(ctx context.Context, req Request, rw Responder) error {
	return b.rejectWith(ctx, req, req.Action.Value, strings.TrimSpace(req.Action.Inputs[inputReason]), rw)
}

// rejectWith ends a request its requester withdraws or an approver
// rejects; the decision is checked again here, where the form's submission
// lands, and audited either way.
func (b *Bot) rejectWith(ctx context.Context, req Request, id, reason string, rw Responder) error {
	op, ok := b.pending(ctx, req, id, byApproval, rw)
	if !ok {
		return nil
	}
	allowed, why := b.mayReject(ctx, req.User, op)
	if !b.decided(ctx, req, "reject", op.Env, allowed, why, fmt.Sprintf("%s, reason %q", op.ID, reason), rw) {
		return nil
	}
	op, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepFailed,
		ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: fmt.Sprintf("rejected by %s: %s", req.User, reason)})
	if err != nil || !moved {
		return err
	}
	return b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":no_entry_sign: The %s was rejected by <@%s>: %s. Nothing was changed.", title(op), req.User, escape(reason))))
}

// expire ends a request nobody approved in time and says so on its message.
func (b *Bot) expire(ctx context.Context, op ops.Operation) {
	_, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepFailed,
		ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "expired without approval"})
	if err != nil || !moved {
		return
	}
	_ = b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":hourglass: The %s asked by <@%s> expired without approval. Nothing was changed; ask again for a fresh report.", title(op), op.Requester)))
}

// ExpireRequests ends every request past its approval deadline; the leader
// calls it periodically.
func (b *Bot) ExpireRequests(ctx context.Context) error {
	list, err := b.ops.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("expire requests: %w", err)
	}
	for _, op := range list {
		if op.State == ops.StepRequested && op.Approval != nil && op.Approval.Expired(b.now()) {
			b.expire(ctx, op)
		}
	}
	return nil
}

// handlePreflight runs the checks and shows the report to the requester.
func (b *Bot) handlePreflight(ctx context.Context, req Request, cmd Command, rw Responder) error {
	override, _ := cmd.Flag("override-window")
	destructive, _ := cmd.Flag("allow-destructive")
	report, err := b.envOps.Preflight(ctx, ops.PreflightRequest{Env: cmd.Env, Version: cmd.Args[0], AllowDestructive: destructive, OverrideWindow: override, Now: b.now()})
	if err != nil {
		_ = rw.Reply(ctx, Textf(":x: The pre-flight checks could not run: "+err.Error()))
		return fmt.Errorf("preflight: %w", err)
	}
	return b.replyReport(ctx, rw, RenderPreflight(report), report)
}

// replyReport replies with a rendered report and, when it lists only the
// first pending migrations, with all of them.
func (b *Bot) replyReport(ctx context.Context, rw Responder, m Message, report ops.Report) error {
	if err := rw.Reply(ctx, m); err != nil || !truncated(report) {
		return err
	}
	return rw.Reply(ctx, renderPendingMigrations(report))
}

// postPendingList posts every pending migration in the thread of a report
// that lists only the first; a failure is logged, the report stands.
func (b *Bot) postPendingList(ctx context.Context, channel, ts string, report ops.Report) {
	if !truncated(report) || ts == "" {
		return
	}
	if _, err := b.poster.Post(ctx, channel, ts, renderPendingMigrations(report)); err != nil {
		b.log.Warn().Err(err).Str("env", report.Env).Msg("posting the pending migrations in the thread failed")
	}
}

// title names an operation for people: "deploy of v2 to staging",
// "rollback of staging to v1", "restore of staging from <snapshot>".
func title(op ops.Operation) string {
	switch op.Kind {
	case ops.KindDeploy:
		return fmt.Sprintf("deploy of %s to %s", op.Version, op.Env)
	case ops.KindRollback:
		if op.Version == "" {
			return "rollback of " + op.Env
		}
		return fmt.Sprintf("rollback of %s to %s", op.Env, op.Version)
	case ops.KindRestore:
		return fmt.Sprintf("restore of %s from %s", op.Env, op.Snapshot)
	case ops.KindDB:
		return fmt.Sprintf("%s on %s's database", dbStatements[op.Chat[chatTarget]].sql, op.Env)
	}
	return fmt.Sprintf("%s on %s", op.Kind, op.Env)
}
