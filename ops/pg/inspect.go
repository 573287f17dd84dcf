package pg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Inspector reads the application database's statistics views and runs
// ANALYZE and VACUUM on it, each call over its own short connection.
type Inspector struct {
	url    string
	redact ops.Redactor
}

var _ ops.DatabaseInspector = (*Inspector)(nil)

// NewInspector returns an Inspector of the database at databaseURL
// (postgres://); r hides secrets in the text of the queries it lists.
func NewInspector(databaseURL string, r ops.Redactor) *Inspector {
	return &Inspector{url: databaseURL, redact: r}
}

// with runs f on a new connection and wraps its error with what.
func (i *Inspector) with(ctx context.Context, what string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, i.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := f(conn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Connections counts the server's client connections by state, most
// frequent first; a state the role may not see is "unknown".
func (i *Inspector) Connections(ctx context.Context) ([]ops.ConnState, int, error) {
	var (
		states []ops.ConnState
		limit  int
	)
	err := i.with(ctx, "connections", func(conn *pgx.Conn) (err error) {
		states, limit, err = connections(ctx, conn)
		return err
	})
	return states, limit, err
}

// connections is Connections over conn.
func connections(ctx context.Context, conn *pgx.Conn) ([]ops.ConnState, int, error) {
	rows, err := conn.Query(ctx, `
SELECT coalesce(state, 'unknown'), count(*)::int
FROM pg_stat_activity WHERE backend_type = 'client backend'
GROUP BY 1 ORDER BY 2 DESC, 1`)
	if err != nil {
		return nil, 0, err
	}
	states, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ops.ConnState])
	if err != nil {
		return nil, 0, err
	}
	var limit int
	if err := conn.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&limit); err != nil {
		return nil, 0, err
	}
	return states, limit, nil
}

// Slow lists the database's queries running longer than over, longest
// first, leaving out the inspector's own. An active query's time counts
// from its start; a session idle in a transaction counts from the
// transaction's start, since that is how long it holds its locks.
func (i *Inspector) Slow(ctx context.Context, over time.Duration) ([]ops.SlowQuery, error) {
	var list []ops.SlowQuery
	err := i.with(ctx, "slow queries", func(conn *pgx.Conn) (err error) {
		list, err = slowQueries(ctx, conn, over, i.redact)
		return err
	})
	return list, err
}

// slowQueries is Slow over conn, each query's text redacted.
func slowQueries(ctx context.Context, conn *pgx.Conn, over time.Duration, redact ops.Redactor) ([]ops.SlowQuery, error) {
	rows, err := conn.Query(ctx, `
SELECT pid, extract(epoch FROM running)::float8, state, query
FROM (SELECT pid, state, query,
             now() - CASE WHEN state = 'active' THEN query_start ELSE coalesce(xact_start, query_start) END AS running
      FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend'
        AND pid <> pg_backend_pid() AND state <> 'idle') a
WHERE running > $1 * interval '1 second'
ORDER BY running DESC`, over.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ops.SlowQuery, error) {
		var (
			q    ops.SlowQuery
			secs float64
		)
		err := r.Scan(&q.PID, &secs, &q.State, &q.Query)
		q.Duration = time.Duration(secs * float64(time.Second))
		q.Query = clipQuery(redact.Redact(q.Query)) // clipped after, so no secret is cut in two
		return q, err
	})
}

// clipQuery collapses a query's whitespace and cuts it to
// ops.SlowQueryTextMax characters, the last one an ellipsis when cut.
func clipQuery(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > ops.SlowQueryTextMax {
		return string(r[:ops.SlowQueryTextMax-1]) + "…"
	}
	return q
}

// sizeTables is how many tables Size lists.
const sizeTables = 10

// Size is the database's size and its sizeTables largest tables by total
// size (with indexes and TOAST), with their live rows and dead ratio as the
// statistics collector last counted them.
func (i *Inspector) Size(ctx context.Context) (ops.DBSize, error) {
	var size ops.DBSize
	err := i.with(ctx, "database size", func(conn *pgx.Conn) error {
		var err error
		if size.Bytes, err = databaseBytes(ctx, conn); err != nil {
			return err
		}
		rows, err := conn.Query(ctx, `
SELECT schemaname || '.' || relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup
FROM pg_stat_user_tables ORDER BY 2 DESC, 1 LIMIT $1`, sizeTables)
		if err != nil {
			return err
		}
		size.Tables, err = pgx.CollectRows(rows, scanTable)
		return err
	})
	return size, err
}

// databaseBytes is the size of conn's database.
func databaseBytes(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// scanTable reads a row of name, total size, live and dead rows into a
// TableSize, its dead ratio 0 for an empty table.
func scanTable(r pgx.CollectableRow) (ops.TableSize, error) {
	var (
		t    ops.TableSize
		dead int64
	)
	err := r.Scan(&t.Name, &t.Bytes, &t.Rows, &dead)
	if total := t.Rows + dead; total > 0 {
		t.DeadRatio = float64(dead) / float64(total)
	}
	return t, err
}

// deadTables lists every user table whose dead rows are over ratio of its
// rows, worst first, as the statistics collector last counted them.
func deadTables(ctx context.Context, conn *pgx.Conn, ratio float64) ([]ops.TableSize, error) {
	rows, err := conn.Query(ctx, `
SELECT schemaname || '.' || relname, pg_total_relation_size(relid), n_live_tup, n_dead_tup
FROM pg_stat_user_tables
WHERE n_dead_tup > 0 AND n_dead_tup::float8 / (n_live_tup + n_dead_tup) > $1
ORDER BY n_dead_tup::float8 / (n_live_tup + n_dead_tup) DESC, 1`, ratio)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTable)
}

// UnusedIndexes lists the indexes with no scan since the statistics were
// last reset, largest first. Unique and primary-key indexes are left out:
// they enforce constraints whether or not queries use them.
func (i *Inspector) UnusedIndexes(ctx context.Context) ([]ops.IndexUse, error) {
	var list []ops.IndexUse
	err := i.with(ctx, "unused indexes", func(conn *pgx.Conn) (err error) {
		list, err = unusedIndexes(ctx, conn)
		return err
	})
	return list, err
}

// unusedIndexes is UnusedIndexes over conn.
func unusedIndexes(ctx context.Context, conn *pgx.Conn) ([]ops.IndexUse, error) {
	rows, err := conn.Query(ctx, `
SELECT s.schemaname || '.' || s.relname, s.indexrelname, pg_relation_size(s.indexrelid), s.idx_scan
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
ORDER BY 3 DESC, 1, 2`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[ops.IndexUse])
}

// Report reads the weekly health report over one connection: the
// database's size, the server's client connections against
// max_connections, the queries running longer than ops.SlowQueryThreshold
// (the report's own left out), the unused indexes as UnusedIndexes lists
// them, the server's autovacuum setting and every table with over
// ops.DeadTupleRatioMax dead rows, worst first.
func (i *Inspector) Report(ctx context.Context) (ops.DBReport, error) {
	var r ops.DBReport
	err := i.with(ctx, "database report", func(conn *pgx.Conn) error {
		var err error
		if r.Bytes, err = databaseBytes(ctx, conn); err != nil {
			return fmt.Errorf("size: %w", err)
		}
		states, limit, err := connections(ctx, conn)
		if err != nil {
			return fmt.Errorf("connections: %w", err)
		}
		for _, s := range states {
			r.Connections += s.Count
		}
		r.MaxConnections = limit
		if r.LongQueries, err = slowQueries(ctx, conn, ops.SlowQueryThreshold, i.redact); err != nil {
			return fmt.Errorf("slow queries: %w", err)
		}
		if r.UnusedIndexes, err = unusedIndexes(ctx, conn); err != nil {
			return fmt.Errorf("unused indexes: %w", err)
		}
		if err := conn.QueryRow(ctx, "SELECT current_setting('autovacuum')::bool").Scan(&r.Autovacuum); err != nil {
			return fmt.Errorf("autovacuum setting: %w", err)
		}
		if r.DeadTables, err = deadTables(ctx, conn, ops.DeadTupleRatioMax); err != nil {
			return fmt.Errorf("dead rows: %w", err)
		}
		return nil
	})
	return r, err
}

// Analyze runs ANALYZE on the whole database.
func (i *Inspector) Analyze(ctx context.Context) error {
	return i.exec(ctx, "ANALYZE")
}

// Vacuum runs VACUUM (ANALYZE) on the whole database, or with full
// VACUUM (FULL, ANALYZE), which rewrites each table under an exclusive lock.
func (i *Inspector) Vacuum(ctx context.Context, full bool) error {
	if full {
		return i.exec(ctx, "VACUUM (FULL, ANALYZE)")
	}
	return i.exec(ctx, "VACUUM (ANALYZE)")
}

// Reindex rebuilds every index of the database (REINDEX DATABASE), which
// blocks writes to each table while its indexes are rebuilt.
func (i *Inspector) Reindex(ctx context.Context) error {
	return i.with(ctx, "reindex database", func(conn *pgx.Conn) error {
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "REINDEX DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
}

// exec runs one maintenance statement, named by itself in errors.
func (i *Inspector) exec(ctx context.Context, sql string) error {
	return i.with(ctx, strings.ToLower(sql), func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	})
}
