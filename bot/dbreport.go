package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// DBReportMessage renders the weekly database report of env. last is the
// size recorded a week earlier (ok false when none was recorded).
func DBReportMessage(env string, r ops.DBReport, last int64, ok bool) Message {
	title := "Weekly database report: " + env
	deadPct := fmt.Sprintf("%.0f %%", ops.DeadTupleRatioMax*100)
	slowOver := fmtSpan(ops.SlowQueryThreshold)
	connPct := 0
	if r.MaxConnections > 0 {
		connPct = r.Connections * 100 / r.MaxConnections
	}

	var attention []string
	if !r.Autovacuum {
		attention = append(attention, fmt.Sprintf(":warning: autovacuum is off: dead rows pile up until `/togather db %s vacuum` runs.", env))
	}
	if n := len(r.DeadTables); n > 0 {
		attention = append(attention, fmt.Sprintf(":warning: %d table(s) over %s dead rows — run `/togather db %s vacuum`.", n, deadPct, env))
	}
	if r.MaxConnections > 0 && connPct >= connWarnPercent {
		attention = append(attention, fmt.Sprintf(":warning: %d of max_connections %d in use (%d %%) — `/togather db %s slow` shows what holds them.", r.Connections, r.MaxConnections, connPct, env))
	}
	if n := len(r.LongQueries); n > 0 {
		attention = append(attention, fmt.Sprintf(":warning: %d query(ies) running longer than %s — `/togather db %s slow` lists them.", n, slowOver, env))
	}
	summary := ":white_check_mark: Nothing needs attention."
	if len(attention) > 0 {
		summary = "*Needs attention*\n" + strings.Join(attention, "\n")
	}

	conns := fmt.Sprintf("%d of max_connections %d (%d %%)", r.Connections, r.MaxConnections, connPct)
	if r.MaxConnections <= 0 {
		conns = fmt.Sprintf("%d, max_connections unknown", r.Connections)
	}
	autovacuum := "on"
	if !r.Autovacuum {
		autovacuum = "off"
	}
	facts := []string{
		fmt.Sprintf("• Size: %s, %s", fmtMB(r.Bytes), fmtGrowth(r.Bytes, last, ok)),
		"• Connections: " + conns,
		fmt.Sprintf("• Queries running longer than %s: %s", slowOver, countLongest(r.LongQueries)),
		"• Unused indexes: " + countIndexes(r.UnusedIndexes),
		"• Autovacuum: " + autovacuum,
		fmt.Sprintf("• Tables over %s dead rows: %s", deadPct, countOrNone(len(r.DeadTables))),
	}
	blocks := []Block{Header{Text: title}, Section{Text: summary}, Section{Text: strings.Join(facts, "\n")}}

	if len(r.DeadTables) > 0 {
		rows := make([]string, len(r.DeadTables))
		for i, t := range r.DeadTables {
			rows[i] = fmt.Sprintf("%-36s %10s %12d %4.0f %%", t.Name, fmtMB(t.Bytes), t.Rows, t.DeadRatio*100)
		}
		rows = append([]string{fmt.Sprintf("%-36s %10s %12s %6s", "table", "size", "live rows", "dead")}, clipLines(rows, "table(s)")...)
		blocks = append(blocks, Section{Text: fmt.Sprintf("Tables over %s dead rows, worst first:", deadPct)}, Preformatted{Text: strings.Join(rows, "\n")})
	}
	if len(r.LongQueries) > 0 {
		rows := make([]string, len(r.LongQueries))
		for i, q := range r.LongQueries {
			rows[i] = fmt.Sprintf("%-8d %7s  %-19s  %s", q.PID, fmtSpan(q.Duration), q.State, q.Query)
		}
		rows = append([]string{fmt.Sprintf("%-8s %7s  %-19s  %s", "pid", "time", "state", "query")}, clipLines(rows, "query(ies)")...)
		blocks = append(blocks, Section{Text: fmt.Sprintf("Queries running longer than %s when the report was taken:", slowOver)}, Preformatted{Text: strings.Join(rows, "\n")})
	}
	if len(r.UnusedIndexes) > 0 {
		rows := make([]string, len(r.UnusedIndexes))
		for i, x := range r.UnusedIndexes {
			rows[i] = fmt.Sprintf("%-36s %-36s %10s", x.Index, x.Table, fmtMB(x.Bytes))
		}
		rows = append([]string{fmt.Sprintf("%-36s %-36s %10s", "index", "table", "size")}, clipLines(rows, "index(es)")...)
		blocks = append(blocks, Section{Text: "Indexes never scanned since the statistics were last reset, largest first:"}, Preformatted{Text: strings.Join(rows, "\n")},
			Context{Text: "Unique and primary-key indexes are not listed, and scans on a replica are not counted: check before dropping one."})
	}

	m := Message{Blocks: blocks}
	m.Text = m.PlainText()
	return m
}

// fmtGrowth is the change from last to now, in megabytes and per cent of
// last, or what stands in for it when no size was recorded a week earlier.
func fmtGrowth(now, last int64, ok bool) string {
	if !ok {
		return "first report, no growth figure yet"
	}
	d := now - last
	if d == 0 {
		return "no change since last week"
	}
	sign, abs := "+", d
	if d < 0 {
		sign, abs = "-", -d
	}
	s := sign + fmtMB(abs)
	if last > 0 {
		s += fmt.Sprintf(" (%+.1f %%)", float64(d)*100/float64(last))
	}
	return s + " since last week"
}

// countOrNone is n, or "none" for 0.
func countOrNone(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

// countLongest is how many queries there are and the longest one's time.
func countLongest(list []ops.SlowQuery) string {
	if len(list) == 0 {
		return "none"
	}
	var longest time.Duration
	for _, q := range list {
		longest = max(longest, q.Duration)
	}
	return fmt.Sprintf("%d, longest %s", len(list), fmtSpan(longest))
}

// countIndexes is how many indexes there are and their size together.
func countIndexes(list []ops.IndexUse) string {
	if len(list) == 0 {
		return "none"
	}
	var total int64
	for _, x := range list {
		total += x.Bytes
	}
	return fmt.Sprintf("%d, %s in all", len(list), fmtMB(total))
}
