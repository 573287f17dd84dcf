package apptest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/app"
)

// Metric reads the value of an unlabelled metric from the /metrics of the
// bot serving HTTP at addr (host:port).
func Metric(ctx context.Context, addr, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metric %s: %w", name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s: %w", name, err)
			}
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metric %s: %w", name, err)
	}
	return 0, fmt.Errorf("/metrics of %s lacks %s", addr, name)
}

// TerminateLeader ends, with pg_terminate_backend, the database session
// holding the replicas' leader lock (app.LeaderKey) in the store at dsn, as
// a PostgreSQL restart or a network cut would; it returns how many sessions
// it ended.
func TerminateLeader(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("terminate the leader's session: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A bigint advisory lock shows as its high half in classid and its
	// low half in objid.
	var n int
	err = conn.QueryRow(ctx,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		 WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid
		   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		uint64(app.LeaderKey)>>32, uint64(app.LeaderKey)&0xffffffff).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("terminate the leader's session: %w", err)
	}
	return n, nil
}
