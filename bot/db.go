package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

const (
	// dbNext is what to check when the application database cannot be read.
	dbNext = "Check that the database named in the app's env file is reachable."
	// connWarnPercent is the share of max_connections in use that is
	// flagged.
	connWarnPercent = 80
	// deadWarnRatio is the share of dead rows above which a table is
	// flagged for VACUUM.
	deadWarnRatio = 0.2
)

// handleDB runs the db actions. connections, slow, size and unused-indexes
// read the application database and answer at once; analyze, vacuum and
// reindex run at once where the environment needs no approval, and after
// it where it does.
func (b *Bot) handleDB(ctx context.Context, req Request, cmd Command, rw Responder) error {
	db, ok := b.envOps.Database(cmd.Env)
	if !ok {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":x: The database of %s is not set up in the bot's configuration.", cmd.Env)))
	}
	switch cmd.Sub {
	case "connections":
		states, limit, err := db.Connections(ctx)
		if err != nil {
			return failReply(ctx, rw, "read the connections of "+cmd.Env, dbNext, err)
		}
		return rw.Reply(ctx, renderConnections(cmd.Env, states, limit))
	case "slow":
		list, err := db.Slow(ctx, ops.SlowQueryThreshold)
		if err != nil {
			return failReply(ctx, rw, "read the slow queries of "+cmd.Env, dbNext, err)
		}
		return rw.Reply(ctx, renderSlow(cmd.Env, list))
	case "size":
		size, err := db.Size(ctx)
		if err != nil {
			return failReply(ctx, rw, "read the size of "+cmd.Env+"'s database", dbNext, err)
		}
		return rw.Reply(ctx, renderSize(cmd.Env, size))
	case "unused-indexes":
		list, err := db.UnusedIndexes(ctx)
		if err != nil {
			return failReply(ctx, rw, "read the index usage of "+cmd.Env, dbNext, err)
		}
		return rw.Reply(ctx, renderUnused(cmd.Env, list))
	case "analyze", "vacuum", "reindex":
		return b.dbMaintenance(ctx, req, db, cmd, rw)
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf("`db %s` is not handled here.", cmd.Sub)))
}

// dbMaintenance runs ANALYZE, VACUUM or REINDEX. VACUUM FULL and REINDEX
// lock tables, so they run only inside a maintenance window of the
// environment; an environment whose deploys need approval needs it for
// maintenance too, and the request waits in the deploys channel.
func (b *Bot) dbMaintenance(ctx context.Context, req Request, db ops.DatabaseInspector, cmd Command, rw Responder) error {
	action := cmd.Sub
	if cmd.Bool("full") {
		action = dbVacuumFull
	}
	st := dbStatements[action]
	if st.locks {
		if _, in := b.inMaintenance(ctx, cmd.Env); !in {
			return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: %s locks tables, so it runs only inside a maintenance window of %s, and none is in progress. "+
				"Schedule one with `/togather maintenance schedule %s <start> <duration> <description>`.", st.sql, cmd.Env, cmd.Env)))
		}
	}
	if p, ok := b.envOps.Policy(cmd.Env); !ok || p.RequireApproval {
		return b.requestDB(ctx, req, cmd.Env, action, max(p.Approvals, 1), rw)
	}
	lease, err := b.holdEnv(ctx, cmd.Env, ops.NewOpID(ops.KindDB, b.now()), req.User, st.sql)
	if err != nil {
		return failReply(ctx, rw, "run "+st.sql+" on "+cmd.Env, "Wait for it to finish, then run the command again.", err)
	}
	defer lease.Release(ctx)
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":broom: Running %s on %s…", st.sql, cmd.Env)))
	took, err := b.runStatement(ctx, db, cmd.Env, action)
	if err != nil {
		return failReply(ctx, rw, "run "+st.sql+" on "+cmd.Env, dbNext, err)
	}
	return replyDetached(ctx, rw, Textf(fmt.Sprintf(":white_check_mark: %s on %s finished in %s.", st.sql, cmd.Env, fmtElapsed(took))))
}

// The db maintenance actions, and what each runs.
const (
	dbVacuumFull = "vacuum-full"
	// dbRunTimeout bounds one maintenance statement; VACUUM FULL of a
	// large database takes a while.
	dbRunTimeout = 4 * time.Hour
)

var dbStatements = map[string]struct {
	sql   string
	locks bool // takes exclusive locks: only inside a maintenance window
}{
	"analyze":    {sql: "ANALYZE"},
	"vacuum":     {sql: "VACUUM (ANALYZE)"},
	dbVacuumFull: {sql: "VACUUM (FULL, ANALYZE)", locks: true},
	"reindex":    {sql: "REINDEX DATABASE", locks: true},
}

// runStatement runs one maintenance action and says how long it took. One
// that locks tables is checked against the maintenance windows again: an
// approval may come after the window ended.
func (b *Bot) runStatement(ctx context.Context, db ops.DatabaseInspector, env, action string) (time.Duration, error) {
	// Detached from the command's timeout: cancelling would throw the
	// work away (the statements are transactional).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dbRunTimeout)
	defer cancel()
	st := dbStatements[action]
	if _, in := b.inMaintenance(ctx, env); st.locks && !in {
		return 0, fmt.Errorf("%s runs only inside a maintenance window of %s, and none is in progress now", st.sql, env)
	}
	start := b.now()
	var err error
	switch action {
	case "analyze":
		err = db.Analyze(ctx)
	case "vacuum", dbVacuumFull:
		err = db.Vacuum(ctx, action == dbVacuumFull)
	case "reindex":
		err = db.Reindex(ctx)
	default:
		err = fmt.Errorf("unknown database action %q", action)
	}
	return b.now().Sub(start), err
}

// requestDB posts a request for database maintenance with approval buttons.
func (b *Bot) requestDB(ctx context.Context, req Request, env, action string, needed int, rw Responder) error {
	st := dbStatements[action]
	text := fmt.Sprintf(":broom: <@%s> asks to run `%s` on *%s*'s database.", req.User, st.sql, env)
	if st.locks {
		text += " It locks tables while it runs; a maintenance window is in progress."
	}
	op := ops.Operation{Kind: ops.KindDB, Env: env, Requester: req.User}
	if err := b.askApproval(ctx, op, action, needed, text); err != nil {
		_ = rw.Reply(ctx, Textf(":x: The request could not be posted: "+err.Error()))
		return err
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf(":hourglass: %s on %s needs approval: waiting in <#%s>.", st.sql, env, b.channels.Deploys)))
}

// runDB runs approved database maintenance, journaling its start and end;
// a crash in between leaves it for recovery to end as interrupted (the
// statements are transactional: nothing is half done).
func (b *Bot) runDB(ctx context.Context, op ops.Operation) (ops.Operation, error) {
	action := op.Chat[chatTarget]
	st := dbStatements[action]
	db, ok := b.envOps.Database(op.Env)
	if !ok {
		return ops.Operation{}, fmt.Errorf("the database of %s is not configured", op.Env)
	}
	id := op.ID
	lease, err := b.holdEnv(ctx, op.Env, id, op.Requester, st.sql)
	if err != nil {
		failed, _, terr := b.ops.Transition(context.WithoutCancel(ctx), id, []ops.Step{ops.StepApproved}, ops.StepFailed,
			ops.JournalEntry{At: b.now(), Step: ops.StepFailed, Phase: ops.PhaseEnd, Detail: fmt.Sprintf("%s was not run: %v", st.sql, err)})
		if terr != nil {
			return ops.Operation{}, errors.Join(err, fmt.Errorf("record the refusal of %s: %w", id, terr))
		}
		b.finishMessage(ctx, failed)
		return failed, err
	}
	release := sync.OnceFunc(func() { lease.Release(ctx) })
	defer release()
	op, moved, err := b.ops.Transition(ctx, id, []ops.Step{ops.StepApproved}, ops.StepLocked, b.note("running "+st.sql))
	switch {
	case err != nil:
		return ops.Operation{}, fmt.Errorf("start %s: %w", id, err)
	case !moved:
		return ops.Operation{}, fmt.Errorf("start %s: it is %s, no longer approved", id, op.State)
	}
	took, runErr := b.runStatement(ctx, db, op.Env, action)
	release() // before the message says it is done: a deploy asked then must find the environment free
	end, detail := ops.StepDone, fmt.Sprintf("%s finished in %s", st.sql, fmtElapsed(took))
	if runErr != nil {
		end, detail = ops.StepFailed, fmt.Sprintf("%s failed: %v", st.sql, runErr)
	}
	done, _, err := b.ops.Transition(context.WithoutCancel(ctx), op.ID, []ops.Step{ops.StepLocked}, end,
		ops.JournalEntry{At: b.now(), Step: end, Phase: ops.PhaseEnd, Detail: detail})
	if err != nil {
		return ops.Operation{}, fmt.Errorf("record the end of %s: %w", op.ID, err)
	}
	b.finishMessage(ctx, done)
	return done, runErr
}

// holdEnv takes env's lease for one maintenance statement, renewed while
// it runs, as every operation does: no deploy or rollback runs beside it,
// and recovery leaves a running one alone.
func (b *Bot) holdEnv(ctx context.Context, env, owner, holder, sql string) (*ops.Lease, error) {
	p, _ := b.envOps.Policy(env)
	return ops.HoldLease(ctx, b.locks, ops.Lock{Env: env, Owner: owner, Holder: holder, Reason: "db " + sql}, p.Lease, b.now)
}

// fmtElapsed is fmtSpan, with milliseconds under a second.
func fmtElapsed(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return fmtSpan(d)
}

// tableMessage is a title over a monospaced table.
func tableMessage(title string, rows []string, note string) Message {
	table := strings.Join(rows, "\n")
	blocks := []Block{Section{Text: title}, Preformatted{Text: table}}
	text := title + "\n" + table
	if note != "" {
		blocks = append(blocks, Context{Text: note})
		text += "\n" + note
	}
	return Message{Text: text, Blocks: blocks}
}

func renderConnections(env string, states []ops.ConnState, limit int) Message {
	rows := []string{fmt.Sprintf("%-29s %6s", "state", "count")}
	total := 0
	for _, s := range states {
		total += s.Count
		rows = append(rows, fmt.Sprintf("%-29s %6d", s.State, s.Count))
	}
	pct := 0
	if limit > 0 {
		pct = total * 100 / limit
	}
	title := fmt.Sprintf("Connections to %s's database server: %d of max_connections %d (%d %%)", env, total, limit, pct)
	if pct >= connWarnPercent {
		title = fmt.Sprintf(":warning: %s: near the limit; `/togather db %s slow` shows what holds them.", title, env)
	}
	return tableMessage(title, rows, "")
}

func renderSlow(env string, list []ops.SlowQuery) Message {
	if len(list) == 0 {
		return Textf(fmt.Sprintf(":white_check_mark: No query on %s has been running longer than %s.", env, fmtSpan(ops.SlowQueryThreshold)))
	}
	rows := make([]string, len(list))
	for i, q := range list {
		rows[i] = fmt.Sprintf("%-8d %7s  %-19s  %s", q.PID, fmtSpan(q.Duration), q.State, q.Query)
	}
	rows = append([]string{fmt.Sprintf("%-8s %7s  %-19s  %s", "pid", "time", "state", "query")}, clipLines(rows, "query(ies)")...)
	title := fmt.Sprintf(":turtle: %d query(ies) on %s running longer than %s, longest first", len(list), env, fmtSpan(ops.SlowQueryThreshold))
	return tableMessage(title, rows, "An idle-in-transaction session counts from its transaction's start: it holds its locks that long.")
}

func renderSize(env string, size ops.DBSize) Message {
	if len(size.Tables) == 0 {
		return Textf(fmt.Sprintf("%s's database: %s, no table yet.", env, fmtMB(size.Bytes)))
	}
	rows := []string{fmt.Sprintf("%-36s %10s %12s %6s", "table", "size", "live rows", "dead")}
	note := ""
	for _, t := range size.Tables {
		rows = append(rows, fmt.Sprintf("%-36s %10s %12d %4.0f %%", t.Name, fmtMB(t.Bytes), t.Rows, t.DeadRatio*100))
		if t.DeadRatio > deadWarnRatio {
			note = fmt.Sprintf("Tables with over %.0f %% dead rows gain from `/togather db %s vacuum`.", deadWarnRatio*100, env)
		}
	}
	title := fmt.Sprintf("%s's database: %s; its %d largest table(s):", env, fmtMB(size.Bytes), len(size.Tables))
	return tableMessage(title, rows, note)
}

func renderUnused(env string, list []ops.IndexUse) Message {
	const caveat = "Unique and primary-key indexes are not listed. Counts restart when the statistics are reset, and scans on a replica are not counted: check before dropping one."
	if len(list) == 0 {
		return Textf(fmt.Sprintf(":white_check_mark: Every index of %s has been scanned since the statistics were last reset. %s", env, caveat))
	}
	rows := make([]string, len(list))
	for i, x := range list {
		rows[i] = fmt.Sprintf("%-36s %-36s %10s", x.Index, x.Table, fmtMB(x.Bytes))
	}
	rows = append([]string{fmt.Sprintf("%-36s %-36s %10s", "index", "table", "size")}, clipLines(rows, "index(es)")...)
	title := fmt.Sprintf("%d index(es) of %s never scanned since the statistics were last reset, largest first:", len(list), env)
	return tableMessage(title, rows, caveat)
}
