package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/togather-foundation/togather-chatops/ops"
)

// handleRollback rolls an environment back: at once with --force,
// otherwise after a confirmation click in the deploys channel.
func (b *Bot) handleRollback(ctx context.Context, req Request, cmd Command, rw Responder) error {
	reason, _ := cmd.Flag("reason")
	if reason == "" {
		reason = "no reason given"
	}
	now := b.now()
	op := ops.Operation{ID: ops.NewOpID(ops.KindRollback, now), Kind: ops.KindRollback, Env: cmd.Env, Requester: req.User, Reason: reason,
		State: ops.StepRequested, CreatedAt: now, UpdatedAt: now,
		Chat: map[string]string{chatChannel: b.channels.Deploys}, Approval: &ops.Approval{Expires: now.Add(b.approval.TTL)}}
	force := cmd.Bool("force")
	if cmd.Bool("restore-snapshot") {
		// Restoring the database needs what `snapshot restore` needs, and a
		// confirmation: it is never a one-keystroke --force.
		if err := b.mayRestore(ctx, req, cmd.Env, "rollback --restore-snapshot"); err != nil {
			return rw.Reply(ctx, Textf(":no_entry: "+err.Error()))
		}
		if force {
			_ = b.record(ctx, req, permRestore, cmd.Env, false, "--force with --restore-snapshot")
			return rw.Reply(ctx, Textf(":no_entry: --restore-snapshot overwrites the database, so it is never forced: ask again without --force and confirm the request."))
		}
		op.Chat[chatRestore] = "true"
	}
	text := fmt.Sprintf(":leftwards_arrow_with_hook: <@%s> asks to roll back *%s*: _%s_", req.User, cmd.Env, escape(reason))
	if op.Chat[chatRestore] != "" {
		text += "\n:warning: The last deploy's pre-deploy snapshot will be restored with the previous release, behind the maintenance page: data written since is lost."
	}
	msg := Message{Text: text, Blocks: []Block{Section{Text: text}}}
	if !force {
		msg.Blocks = append(msg.Blocks, Actions{ID: "confirm", Buttons: []Button{
			{ActionID: actConfirm, Label: "Roll back now", Value: op.ID, Style: Danger},
			{ActionID: actCancel, Label: "Cancel", Value: op.ID},
		}})
	}
	if err := b.postRequest(ctx, &op, msg); err != nil {
		_ = rw.Reply(ctx, Textf(":x: The rollback request could not be posted: "+err.Error()))
		return err
	}
	if !force {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":point_right: Confirm the rollback in <#%s> (or use --force next time it is urgent).", b.channels.Deploys)))
	}
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":leftwards_arrow_with_hook: Rolling back %s now; progress in <#%s>.", cmd.Env, b.channels.Deploys)))
	op, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepApproved, b.note("forced by "+req.User))
	if err != nil || !moved {
		return err
	}
	b.runDeploy(ctx, op)
	return nil
}

// confirm starts a confirmed rollback; anyone allowed to roll back may
// confirm it.
func (b *Bot) confirm(ctx context.Context, req Request, rw Responder) error {
	op, ok := b.pending(ctx, req, req.Action.Value, byConfirmation, rw)
	if !ok {
		return nil
	}
	if !b.gate(ctx, req, "rollback", op.Env, "confirm "+op.ID, rw) {
		return nil
	}
	if op.Chat[chatRestore] != "" {
		if err := b.mayRestore(ctx, req, op.Env, "confirm "+op.ID); err != nil {
			return rw.Reply(ctx, Textf(":no_entry: "+err.Error()))
		}
	}
	op, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepApproved, b.note("confirmed by "+req.User))
	if err != nil || !moved {
		if err == nil {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: This rollback is already %s.", op.State)))
		}
		return err
	}
	_ = b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":leftwards_arrow_with_hook: Rollback of %s confirmed by <@%s>: running, progress in the thread.", op.Env, req.User)))
	b.runDeploy(ctx, op)
	return nil
}

// permRestore is the permission that overwrites a database from a snapshot.
const permRestore = "snapshot.restore"

// mayRestore decides and audits whether req's user may restore env's
// database, as `snapshot restore` would; what names the path for the audit.
func (b *Bot) mayRestore(ctx context.Context, req Request, env, what string) error {
	allowed, why := b.authz.Decide(ctx, req.User, permRestore, env)
	if err := b.record(ctx, req, permRestore, env, allowed, why+" ("+what+")"); err != nil && allowed {
		return fmt.Errorf("the audit log cannot be written right now, so %s is refused: %w", permRestore, err)
	}
	if !allowed {
		return fmt.Errorf("restoring the database needs %s: %s", permRestore, why)
	}
	return nil
}

func (b *Bot) cancel(ctx context.Context, req Request, rw Responder) error {
	op, ok := b.pending(ctx, req, req.Action.Value, byConfirmation, rw)
	if !ok {
		return nil
	}
	if req.User == op.Requester {
		if !b.decided(ctx, req, "rollback", op.Env, true, "the requester withdraws the request", "cancel "+op.ID, rw) {
			return nil
		}
	} else if !b.gate(ctx, req, "rollback", op.Env, "cancel "+op.ID, rw) {
		return nil
	}
	op, moved, err := b.ops.Transition(ctx, op.ID, []ops.Step{ops.StepRequested}, ops.StepFailed,
		ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: "cancelled by " + req.User})
	if err != nil || !moved {
		return err
	}
	return b.poster.Update(ctx, op.Chat[chatChannel], op.Chat[chatTS], Textf(fmt.Sprintf(":heavy_multiplication_x: The rollback of %s was cancelled by <@%s>. Nothing was changed.", op.Env, req.User)))
}

// rollbackFromButton rolls back a finished deploy from its message. The
// rollback's id derives from the deploy's, so a double click starts one.
func (b *Bot) rollbackFromButton(ctx context.Context, req Request, rw Responder) error {
	dep, err := b.ops.Get(ctx, req.Action.Value)
	if err != nil {
		return rw.Reply(ctx, Textf(":information_source: This deploy no longer exists."))
	}
	if !b.gate(ctx, req, "rollback", dep.Env, "button on "+dep.ID, rw) {
		return nil
	}
	now := b.now()
	op := ops.Operation{ID: rollbackPrefix + dep.ID, Kind: ops.KindRollback, Env: dep.Env, Requester: req.User,
		Reason: "rolling back " + dep.Version + " from its message", State: ops.StepApproved, CreatedAt: now, UpdatedAt: now,
		Chat: map[string]string{chatChannel: dep.Chat[chatChannel], chatTS: dep.Chat[chatTS]}}
	if err := b.ops.Create(ctx, op); err != nil {
		if existing, gerr := b.ops.Get(ctx, op.ID); gerr == nil {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":information_source: A rollback of this deploy was already started by <@%s> (%s).", existing.Requester, existing.State)))
		}
		return fmt.Errorf("record rollback: %w", errors.Join(err))
	}
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":leftwards_arrow_with_hook: Rolling back %s on %s.", dep.Version, dep.Env)))
	b.runDeploy(ctx, op)
	return nil
}

// handleRestore asks for approval to restore a snapshot, like a production
// deploy: restoring overwrites the database.
func (b *Bot) handleRestore(ctx context.Context, req Request, cmd Command, rw Responder) error {
	name := cmd.Args[0]
	policy, _ := b.envOps.Policy(cmd.Env)
	text := fmt.Sprintf(":floppy_disk: <@%s> asks to restore *%s*'s database from `%s`. Everything written since that snapshot is lost.", req.User, cmd.Env, name)
	op := ops.Operation{Kind: ops.KindRestore, Env: cmd.Env, Requester: req.User, Snapshot: name}
	if err := b.askApproval(ctx, op, name, max(policy.Approvals, 1), text); err != nil {
		_ = rw.Reply(ctx, Textf(":x: The restore request could not be posted: "+err.Error()))
		return err
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf(":hourglass: Waiting for approval in <#%s>.", b.channels.Deploys)))
}

// askApproval records op as a request of its requester waiting for needed
// approvals of target (what it acts on: a snapshot, a statement), and posts
// text with Approve and Reject in the deploys channel. The request expires
// after the approval TTL.
func (b *Bot) askApproval(ctx context.Context, op ops.Operation, target string, needed int, text string) error {
	now := b.now()
	op.ID, op.State, op.CreatedAt, op.UpdatedAt = ops.NewOpID(op.Kind, now), ops.StepRequested, now, now
	op.Chat = map[string]string{chatChannel: b.channels.Deploys, chatTarget: target}
	op.Approval = &ops.Approval{Needed: needed, Expires: now.Add(b.approval.TTL)}
	msg := Message{Text: text, Blocks: []Block{Section{Text: text},
		Context{Text: fmt.Sprintf("Needs %d approval(s) from someone other than <@%s>.", needed, op.Requester)},
		Actions{ID: "approval", Buttons: []Button{{ActionID: actApprove, Label: "Approve", Value: op.ID, Style: Primary}, {ActionID: actReject, Label: "Reject", Value: op.ID, Style: Danger}}}}}
	return b.postRequest(ctx, &op, msg)
}

// runRestore restores an approved snapshot under the environment's lock.
func (b *Bot) runRestore(ctx context.Context, op ops.Operation) (ops.Operation, error) {
	return b.envOps.Restore(ctx, op.Env, ops.RestoreRequest{Snapshot: op.Chat[chatTarget], Requester: op.Requester, OpID: op.ID})
}
