package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents"
)

var _ bot.IncidentStore = (*Store)(nil)

// ErrIncidentNotFound is wrapped by the errors about an incident the store
// does not know, and by OpenIncidentFor when none is open.
var ErrIncidentNotFound = errors.New("incident not found")

// incidentColumns are the incidents columns, in the order scanIncident
// reads them.
const incidentColumns = `id, title, sev, env, status, commander, declared_at, resolved_at, last_update_at,
	escalated, snoozed_until, channel, thread_ts`

// openIncident is the SQL condition of an incident not resolved; the
// partial index incidents_open_idx has the same predicate.
const openIncident = `status <> '` + string(incidents.Resolved) + `'`

// openIncidentOf selects the newest incident of environment $1 not
// resolved.
const openIncidentOf = `SELECT ` + incidentColumns + ` FROM incidents WHERE env = $1 AND ` + openIncident + `
	ORDER BY declared_at DESC, id DESC LIMIT 1`

// CreateIncident stores inc with its timeline under a new id, INC-<n> with
// n from a sequence, and returns it with that id. inc.ID is ignored.
func (s *Store) CreateIncident(ctx context.Context, inc incidents.Incident) (incidents.Incident, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		inc, err = insertIncident(ctx, tx, inc)
		return err
	})
	if err != nil {
		return incidents.Incident{}, fmt.Errorf("create incident: %w", err)
	}
	return inc, nil
}

// CreateIncidentUnlessOpen is CreateIncident unless an incident of inc.Env
// is open: then it returns that one, with its timeline, and created false.
// Of callers racing for one environment, across replicas, exactly one
// creates.
func (s *Store) CreateIncidentUnlessOpen(ctx context.Context, inc incidents.Incident) (_ incidents.Incident, created bool, err error) {
	env := inc.Env
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Held to the commit: the next caller's check sees this insert.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('togather-chatops incident ' || $1, 0))`, env); err != nil {
			return err
		}
		open, err := oneIncident(ctx, tx, openIncidentOf, env)
		if err == nil {
			inc = open
			return nil
		}
		if !errors.Is(err, ErrIncidentNotFound) {
			return err
		}
		inc, err = insertIncident(ctx, tx, inc)
		created = err == nil
		return err
	})
	if err != nil {
		return incidents.Incident{}, false, fmt.Errorf("create incident of %s unless one is open: %w", env, err)
	}
	return inc, created, nil
}

// insertIncident stores inc with its timeline under a new id and returns it
// with that id.
func insertIncident(ctx context.Context, tx pgx.Tx, inc incidents.Incident) (incidents.Incident, error) {
	if inc.Title == "" || inc.Sev == "" || inc.Status == "" || inc.DeclaredAt.IsZero() {
		return incidents.Incident{}, errors.New("title, severity, status and declaration time are required")
	}
	err := tx.QueryRow(ctx,
		`INSERT INTO incidents (id, title, sev, env, status, commander, declared_at, resolved_at,
		                        last_update_at, escalated, snoozed_until, channel, thread_ts)
		 VALUES ('INC-' || nextval('incident_seq'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		 RETURNING id`,
		inc.Title, inc.Sev, inc.Env, inc.Status, inc.Commander, inc.DeclaredAt, nullTime(inc.ResolvedAt),
		nullTime(inc.LastUpdateAt), inc.Escalated, nullTime(inc.SnoozedUntil), inc.Channel, inc.ThreadTS,
	).Scan(&inc.ID)
	if err != nil {
		return incidents.Incident{}, err
	}
	if err := appendTimeline(ctx, tx, inc.ID, inc.Timeline); err != nil {
		return incidents.Incident{}, err
	}
	return inc, nil
}

// GetIncident returns incident id with its timeline, oldest entry first. An
// unknown id wraps ErrIncidentNotFound.
func (s *Store) GetIncident(ctx context.Context, id string) (incidents.Incident, error) {
	inc, err := oneIncident(ctx, s.pool, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id)
	if err != nil {
		return incidents.Incident{}, fmt.Errorf("get incident %s: %w", id, err)
	}
	return inc, nil
}

// SaveIncident writes inc's mutable fields — title, severity, status,
// commander, resolution, last update and snooze — and appends the entries
// of inc.Timeline the store does not have yet. An entry is new when the
// stored timeline holds fewer equal ones (same time to the microsecond,
// kind, author and text), so two replicas saving copies read before each
// other's save both keep their entries. Channel and thread belong to
// SetIncidentThread, escalation to MarkEscalated: a stale copy cannot undo
// them. An unknown incident wraps ErrIncidentNotFound.
func (s *Store) SaveIncident(ctx context.Context, inc incidents.Incident) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The update locks the row: concurrent saves of one incident run
		// one after the other, each seeing the entries the other stored.
		tag, err := tx.Exec(ctx,
			`UPDATE incidents
			 SET title = $2, sev = $3, status = $4, commander = $5, resolved_at = $6, last_update_at = $7,
			     snoozed_until = $8
			 WHERE id = $1`,
			inc.ID, inc.Title, inc.Sev, inc.Status, inc.Commander, nullTime(inc.ResolvedAt),
			nullTime(inc.LastUpdateAt), nullTime(inc.SnoozedUntil))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrIncidentNotFound
		}
		stored, err := timelines(ctx, tx, []string{inc.ID})
		if err != nil {
			return err
		}
		return appendTimeline(ctx, tx, inc.ID, newEntries(stored[inc.ID], inc.Timeline))
	})
	if err != nil {
		return fmt.Errorf("save incident %s: %w", inc.ID, err)
	}
	return nil
}

// OpenIncidents returns the incidents not resolved, oldest first, with
// their timelines.
func (s *Store) OpenIncidents(ctx context.Context) ([]incidents.Incident, error) {
	list, err := listIncidents(ctx, s.pool,
		`SELECT `+incidentColumns+` FROM incidents WHERE `+openIncident+` ORDER BY declared_at, id`)
	if err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	return list, nil
}

// OpenIncidentFor returns the newest incident of env not resolved, with its
// timeline; none wraps ErrIncidentNotFound.
func (s *Store) OpenIncidentFor(ctx context.Context, env string) (incidents.Incident, error) {
	inc, err := oneIncident(ctx, s.pool, openIncidentOf, env)
	if err != nil {
		return incidents.Incident{}, fmt.Errorf("open incident of %s: %w", env, err)
	}
	return inc, nil
}

// SetIncidentThread records the chat thread of incident id. An unknown id
// wraps ErrIncidentNotFound.
func (s *Store) SetIncidentThread(ctx context.Context, id, channel, ts string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE incidents SET channel = $2, thread_ts = $3 WHERE id = $1`, id, channel, ts)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrIncidentNotFound
	}
	if err != nil {
		return fmt.Errorf("set thread of incident %s: %w", id, err)
	}
	return nil
}

// ClaimReminder claims the update reminder of incident id due at due: it
// reports true to exactly one caller across replicas, once due <= now, and
// only if no reminder was claimed for this due time or a later one. A
// resolved or unknown incident is never claimed.
// Under a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) ClaimReminder(ctx context.Context, id string, due, now time.Time) (bool, error) {
	if due.IsZero() {
		return false, fmt.Errorf("claim reminder of incident %s: no due time", id)
	}
	// A competing claim makes the update wait, then re-check reminded_for
	// against the committed row: one wins.
	tag, err := s.fencedExec(ctx,
		`UPDATE incidents SET reminded_for = $2
		 WHERE id = $1 AND $2 <= $3::timestamptz AND (reminded_for IS NULL OR reminded_for < $2)
		   AND `+openIncident,
		id, due, now)
	if err != nil {
		return false, fmt.Errorf("claim reminder of incident %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkEscalated marks incident id escalated: it reports true to exactly
// one caller across replicas, the first. A resolved or unknown incident is
// never marked.
// Under a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) MarkEscalated(ctx context.Context, id string) (bool, error) {
	tag, err := s.fencedExec(ctx,
		`UPDATE incidents SET escalated = true WHERE id = $1 AND NOT escalated AND `+openIncident, id)
	if err != nil {
		return false, fmt.Errorf("mark incident %s escalated: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// entryKey identifies a timeline entry as stored: times keep microseconds.
type entryKey struct {
	at             int64
	kind, by, text string
}

func keyOf(e incidents.Entry) entryKey {
	return entryKey{e.At.UnixMicro(), e.Kind, e.By, e.Text}
}

// newEntries returns the entries of timeline, in order, that stored lacks:
// each stored entry accounts for one equal entry of timeline.
func newEntries(stored, timeline []incidents.Entry) []incidents.Entry {
	have := make(map[entryKey]int, len(stored))
	for _, e := range stored {
		have[keyOf(e)]++
	}
	var fresh []incidents.Entry
	for _, e := range timeline {
		if k := keyOf(e); have[k] > 0 {
			have[k]--
		} else {
			fresh = append(fresh, e)
		}
	}
	return fresh
}

// appendTimeline adds entries to the timeline of incident id, in order.
func appendTimeline(ctx context.Context, tx pgx.Tx, id string, entries []incidents.Entry) error {
	for _, e := range entries {
		if e.At.IsZero() {
			return fmt.Errorf("timeline entry %q has no time", e.Kind)
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO incident_timeline (incident_id, at, kind, by_user, text) VALUES ($1, $2, $3, $4, $5)`,
			id, e.At, e.Kind, e.By, e.Text)
		if err != nil {
			return err
		}
	}
	return nil
}

// oneIncident runs query, which selects incidentColumns, and returns its
// first incident with the timeline; no row is ErrIncidentNotFound.
func oneIncident(ctx context.Context, q querier, query string, args ...any) (incidents.Incident, error) {
	list, err := listIncidents(ctx, q, query, args...)
	if err != nil {
		return incidents.Incident{}, err
	}
	if len(list) == 0 {
		return incidents.Incident{}, ErrIncidentNotFound
	}
	return list[0], nil
}

// listIncidents runs query, which selects incidentColumns, and attaches
// each incident's timeline.
func listIncidents(ctx context.Context, q querier, query string, args ...any) ([]incidents.Incident, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, scanIncident)
	if err != nil || len(list) == 0 {
		return list, err
	}
	ids := make([]string, len(list))
	for i, inc := range list {
		ids[i] = inc.ID
	}
	byID, err := timelines(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Timeline = byID[list[i].ID]
	}
	return list, nil
}

// timelines reads the timelines of the incidents ids, oldest entry first,
// by incident id.
func timelines(ctx context.Context, q querier, ids []string) (map[string][]incidents.Entry, error) {
	rows, err := q.Query(ctx,
		`SELECT incident_id, at, kind, by_user, text FROM incident_timeline
		 WHERE incident_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string][]incidents.Entry, len(ids))
	var (
		id string
		e  incidents.Entry
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &e.At, &e.Kind, &e.By, &e.Text}, func() error {
		e.At = e.At.UTC()
		byID[id] = append(byID[id], e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return byID, nil
}

// scanIncident reads a row of incidentColumns. Times come back in UTC.
func scanIncident(row pgx.CollectableRow) (incidents.Incident, error) {
	var (
		inc                      incidents.Incident
		resolved, update, snooze *time.Time
	)
	err := row.Scan(&inc.ID, &inc.Title, &inc.Sev, &inc.Env, &inc.Status, &inc.Commander, &inc.DeclaredAt,
		&resolved, &update, &inc.Escalated, &snooze, &inc.Channel, &inc.ThreadTS)
	if err != nil {
		return incidents.Incident{}, err
	}
	inc.DeclaredAt = inc.DeclaredAt.UTC()
	inc.ResolvedAt, inc.LastUpdateAt, inc.SnoozedUntil = utc(resolved), utc(update), utc(snooze)
	return inc, nil
}
