package bot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// snapshotListMax is how many snapshots or tables a reply lists before it
// says how many more there are.
const snapshotListMax = 20

// handleSnapshot runs snapshot create, list, prune and verify. Restore goes
// through approvals and is routed elsewhere.
func (b *Bot) handleSnapshot(ctx context.Context, _ Request, cmd Command, rw Responder) error {
	snaps, ok := b.envOps.Snapshots(cmd.Env)
	if !ok {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":x: Snapshots are not set up for %s: configure its snapshots in the bot's configuration.", cmd.Env)))
	}
	switch cmd.Sub {
	case "create":
		return snapshotCreate(ctx, snaps, cmd, rw)
	case "list":
		return b.snapshotList(ctx, snaps, cmd, rw)
	case "prune":
		return b.snapshotPrune(ctx, snaps, cmd, rw)
	case "verify":
		return snapshotVerify(ctx, snaps, cmd, rw)
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf("`snapshot %s` is not handled here.", cmd.Sub)))
}

func snapshotCreate(ctx context.Context, snaps ops.Snapshotter, cmd Command, rw Responder) error {
	reason, _ := cmd.Flag("reason")
	if reason == "" {
		reason = "manual"
	}
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":camera_with_flash: Taking a snapshot of %s…", cmd.Env)))
	info, err := snaps.Create(ctx, reason, nil)
	if err != nil {
		next := "Check that the database in the app's env file is reachable, that pg_dump on the bot's host is at least the server's major version (or snapshots.dump: container:<the database's container> uses the server's own), and that the snapshot directory is writable and has free space."
		if errors.Is(err, context.DeadlineExceeded) {
			next = fmt.Sprintf("It ran out of the command's time limit; for a large database take it from the terminal: `togather-chatops snapshot create %s`.", cmd.Env)
		}
		return failReply(ctx, rw, "take a snapshot of "+cmd.Env, next, err)
	}
	text := fmt.Sprintf(":white_check_mark: Snapshot of %s taken: `%s` · %s · sha256 `%s`", cmd.Env, info.Name, fmtMB(info.Size), shortID(info.SHA256))
	if !info.ExpiresAt.IsZero() {
		text += " · kept until " + fmtUTC(info.ExpiresAt)
	}
	return replyDetached(ctx, rw, Textf(text))
}

func (b *Bot) snapshotList(ctx context.Context, snaps ops.Snapshotter, cmd Command, rw Responder) error {
	list, err := snaps.List(ctx)
	if err != nil {
		return failReply(ctx, rw, "list the snapshots of "+cmd.Env, "Check that the snapshot directory exists and the bot may read it.", err)
	}
	return rw.Reply(ctx, RenderSnapshots(cmd.Env, list, b.now()))
}

func (b *Bot) snapshotPrune(ctx context.Context, snaps ops.Snapshotter, cmd Command, rw Responder) error {
	dry := cmd.Bool("dry-run")
	removed, err := snaps.Prune(ctx, b.now(), dry)
	verb := "Pruned"
	if dry {
		verb = "Dry run: would prune"
	}
	if err != nil {
		next := "Check that the bot may write the snapshot directory."
		if len(removed) > 0 {
			next = fmt.Sprintf("%s %d before it failed: %s. %s", verb, len(removed), strings.Join(snapshotNames(removed), ", "), next)
		}
		return failReply(ctx, rw, "prune the snapshots of "+cmd.Env, next, err)
	}
	if len(removed) == 0 {
		return rw.Reply(ctx, Textf(fmt.Sprintf("Nothing to prune on %s: every snapshot is within its retention (the newest is always kept).", cmd.Env)))
	}
	lines := clipLines(snapshotNames(removed), "snapshot(s)")
	for i, l := range lines {
		lines[i] = "• " + l
	}
	text := fmt.Sprintf(":wastebasket: %s %d snapshot(s) of %s:\n%s", verb, len(removed), cmd.Env, strings.Join(lines, "\n"))
	return rw.Reply(ctx, Message{Text: text, InChannel: !dry})
}

func snapshotVerify(ctx context.Context, snaps ops.Snapshotter, cmd Command, rw Responder) error {
	name := cmd.Args[0]
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":mag: Verifying `%s` of %s: restoring it into a scratch database…", name, cmd.Env)))
	res, err := snaps.Verify(ctx, name)
	switch {
	case errors.Is(err, ops.ErrNotFound):
		return failReply(ctx, rw, "verify "+name, fmt.Sprintf("`/togather snapshot list %s` shows the snapshots there are.", cmd.Env), err)
	case err != nil:
		return failReply(ctx, rw, "verify "+name,
			"Do not rely on this snapshot until it verifies. If the file is intact, check that the bot's database role may CREATE DATABASE and that psql is installed on the bot's host.", err)
	}
	return replyDetached(ctx, rw, RenderVerify(cmd.Env, res))
}

// RenderSnapshots renders snapshots, newest first: name, size, age and
// expiry, at most snapshotListMax of them.
func RenderSnapshots(env string, list []ops.SnapshotInfo, now time.Time) Message {
	if len(list) == 0 {
		return Textf(fmt.Sprintf("No snapshot of %s yet. `/togather snapshot create %s` takes one.", env, env))
	}
	lines := make([]string, len(list))
	for i, s := range list {
		expiry := "kept until " + fmtUTC(s.ExpiresAt)
		switch {
		case s.ExpiresAt.IsZero():
			expiry = "no expiry"
		case !s.ExpiresAt.After(now):
			expiry = "past its retention; prune removes it"
		}
		lines[i] = fmt.Sprintf("`%s` · %s · %s ago · %s", s.Name, fmtMB(s.Size), fmtSpan(now.Sub(s.CreatedAt)), expiry)
	}
	title := fmt.Sprintf("%d snapshot(s) of %s, newest first", len(list), env)
	body := strings.Join(clipLines(lines, "older snapshot(s)"), "\n")
	return Message{Text: title + "\n" + body, Blocks: []Block{Section{Text: "*" + title + "*\n" + body}}}
}

// RenderVerify renders a verification: the tables and rows restored, and
// every table whose row count differs from the one recorded at snapshot
// time.
func RenderVerify(env string, r ops.VerifyResult) Message {
	counts := make([]string, 0, len(r.RowCounts))
	var rows int64
	for _, t := range slices.Sorted(maps.Keys(r.RowCounts)) {
		rows += r.RowCounts[t]
		counts = append(counts, fmt.Sprintf("%-40s %12d", t, r.RowCounts[t]))
	}
	title := fmt.Sprintf(":white_check_mark: `%s` of %s verifies: %d table(s), %d row(s) restored; no row count differs from those recorded when it was taken.",
		r.Snapshot, env, r.Tables, rows)
	if len(r.Mismatch) > 0 {
		title = fmt.Sprintf(":warning: `%s` of %s restored (%d table(s), %d row(s)), but %d table(s) differ from the counts recorded when it was taken:\n• %s",
			r.Snapshot, env, r.Tables, rows, len(r.Mismatch), strings.Join(r.Mismatch, "\n• "))
	}
	blocks := []Block{Section{Text: title}}
	if len(counts) > 0 {
		blocks = append(blocks, Preformatted{Text: strings.Join(clipLines(counts, "table(s)"), "\n")})
	}
	return Message{Text: title, Blocks: blocks}
}

// clipLines keeps the first snapshotListMax lines and says how many more
// of what there are.
func clipLines(lines []string, what string) []string {
	if len(lines) <= snapshotListMax {
		return lines
	}
	return append(lines[:snapshotListMax:snapshotListMax], fmt.Sprintf("… and %d more %s", len(lines)-snapshotListMax, what))
}

func snapshotNames(list []ops.SnapshotInfo) []string {
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = s.Name
	}
	return names
}

// fmtMB is a size in megabytes with one decimal.
func fmtMB(n int64) string {
	if n > 0 && n < 50_000 {
		return "<0.1 MB"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
