package bot

import (
	"context"
	"fmt"
	"strings"
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
// read the application database and answer at once; analyze and vacuum run
// at once where the environment needs no approval.
func (b *Bot) handleDB(ctx context.Context, _ Request, cmd Command, rw Responder) error {
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
	case "analyze", "vacuum":
		return b.dbMaintenance(ctx, db, cmd, rw)
	}
	return rw.Reply(ctx, Textf(fmt.Sprintf("`db %s` is not handled here.", cmd.Sub)))
}

// dbMaintenance runs ANALYZE or VACUUM (ANALYZE) and reports how long it
// took. VACUUM FULL, and any maintenance of an environment that requires
// approval, is refused until maintenance windows and approvals for it exist.
func (b *Bot) dbMaintenance(ctx context.Context, db ops.DatabaseInspector, cmd Command, rw Responder) error {
	if cmd.Bool("full") {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: VACUUM FULL locks every table; it is allowed only inside a maintenance window of %s, which arrive with the maintenance commands. "+
			"`/togather db %s vacuum` without --full takes no exclusive lock.", cmd.Env, cmd.Env)))
	}
	if p, ok := b.envOps.Policy(cmd.Env); !ok || p.RequireApproval {
		return rw.Reply(ctx, Textf(fmt.Sprintf(":no_entry: `db %s` on %s needs approval: ask in <#%s> — approval for db maintenance is planned.", cmd.Sub, cmd.Env, b.channels.Deploys)))
	}
	stmt, run := "ANALYZE", db.Analyze
	if cmd.Sub == "vacuum" {
		stmt, run = "VACUUM (ANALYZE)", func(c context.Context) error { return db.Vacuum(c, false) }
	}
	_ = rw.Reply(ctx, Textf(fmt.Sprintf(":broom: Running %s on %s…", stmt, cmd.Env)))
	start := b.now()
	if err := run(ctx); err != nil {
		return failReply(ctx, rw, "run "+stmt+" on "+cmd.Env, dbNext, err)
	}
	return replyDetached(ctx, rw, Textf(fmt.Sprintf(":white_check_mark: %s on %s finished in %s.", stmt, cmd.Env, fmtElapsed(b.now().Sub(start)))))
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
