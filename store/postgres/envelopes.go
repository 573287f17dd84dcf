package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimEnvelope records that the Slack envelope envelopeID is being handled
// at now, for ttl. It reports first = true to exactly one caller, however
// many replicas claim the same id at once; later claims get false until the
// record expires (expires_at <= now), after which the next claim is first
// again.
func (s *Store) ClaimEnvelope(ctx context.Context, envelopeID string, now time.Time, ttl time.Duration) (first bool, err error) {
	if envelopeID == "" {
		return false, errors.New("claim envelope: empty id")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("claim envelope %s: ttl %v is not positive", envelopeID, ttl)
	}
	// One statement: a conflicting insert waits for the competing one to
	// commit and then sees its row, so exactly one claim returns a row.
	err = s.pool.QueryRow(ctx,
		`INSERT INTO processed_envelopes (envelope_id, received_at, expires_at)
		 VALUES ($1, $2, $3)
		 ON CONFLICT (envelope_id) DO UPDATE
		   SET received_at = excluded.received_at, expires_at = excluded.expires_at
		   WHERE processed_envelopes.expires_at <= excluded.received_at
		 RETURNING true`,
		envelopeID, now, now.Add(ttl)).Scan(&first)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim envelope %s: %w", envelopeID, err)
	}
	return first, nil
}

// PruneEnvelopes deletes the envelope records expired at now and returns how
// many it deleted.
func (s *Store) PruneEnvelopes(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM processed_envelopes WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("prune envelopes: %w", err)
	}
	return tag.RowsAffected(), nil
}
