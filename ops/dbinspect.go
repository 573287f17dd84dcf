package ops

import (
	"context"
	"time"
)

// SlowQueryThreshold is how long a query runs before `db slow` lists it.
const SlowQueryThreshold = 5 * time.Second

// DatabaseInspector reads the health of an environment's application
// database and runs its routine maintenance.
type DatabaseInspector interface {
	// Connections counts the server's client connections by state, with
	// the server's max_connections.
	Connections(ctx context.Context) ([]ConnState, int, error)
	// Slow lists the queries of the database running longer than over,
	// longest first.
	Slow(ctx context.Context, over time.Duration) ([]SlowQuery, error)
	// Size is the database's size and its largest tables.
	Size(ctx context.Context) (DBSize, error)
	// UnusedIndexes lists the indexes never scanned since the statistics
	// were last reset, leaving out unique and primary-key indexes, largest
	// first.
	UnusedIndexes(ctx context.Context) ([]IndexUse, error)
	// Analyze refreshes the planner statistics of every table.
	Analyze(ctx context.Context) error
	// Vacuum reclaims dead rows and refreshes statistics; full rewrites
	// every table, holding an exclusive lock on each while it does.
	Vacuum(ctx context.Context, full bool) error
	// Reindex rebuilds every index, blocking writes to each table while it
	// does.
	Reindex(ctx context.Context) error
	// Report reads the weekly health report of the database.
	Report(ctx context.Context) (DBReport, error)
}

// DBReport is the weekly health report of a database.
type DBReport struct {
	Bytes          int64
	Connections    int // client connections now
	MaxConnections int
	LongQueries    []SlowQuery // running longer than SlowQueryThreshold
	UnusedIndexes  []IndexUse
	Autovacuum     bool        // the server's autovacuum setting
	DeadTables     []TableSize // every table whose dead-tuple ratio is over DeadTupleRatioMax, worst first
}

// DeadTupleRatioMax is the share of dead rows over which a table is reported.
const DeadTupleRatioMax = 0.10

// ConnState is how many connections are in one state (active, idle,
// idle in transaction, ...).
type ConnState struct {
	State string
	Count int
}

// SlowQuery is a query that has been running for Duration.
type SlowQuery struct {
	PID      int
	Duration time.Duration
	State    string
	Query    string // whitespace collapsed, cut to SlowQueryTextMax characters
}

// SlowQueryTextMax is how many characters of a slow query's text are kept.
const SlowQueryTextMax = 200

// DBSize is a database's size and its largest tables.
type DBSize struct {
	Bytes  int64
	Tables []TableSize // largest first
}

// TableSize is one table's total size (with indexes and TOAST), its live
// rows and the share of its rows that are dead.
type TableSize struct {
	Name      string // schema.table
	Bytes     int64
	Rows      int64
	DeadRatio float64 // dead / (live + dead), 0 for an empty table
}

// IndexUse is an index, its size and how often it was scanned.
type IndexUse struct {
	Table string // schema.table
	Index string
	Bytes int64
	Scans int64
}
