package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/bot"
)

var _ bot.MessageOutbox = (*Store)(nil)

// messageColumns are the message_outbox columns, in the order scanMessage
// reads them.
const messageColumns = `operation_id, message, channel, thread_ts, ts, shown`

// TrackMessages records msgs, keeping those already recorded, and returns
// every message recorded for their operations, by operation and role. Under
// a stale leader term (WithTerm) it wraps *StaleTermError.
func (s *Store) TrackMessages(ctx context.Context, msgs []bot.OpMessage) ([]bot.OpMessage, error) {
	var out []bot.OpMessage
	ops := make([]string, 0, len(msgs))
	err := s.fenced(ctx, func(tx pgx.Tx) error {
		for _, m := range msgs {
			_, err := tx.Exec(ctx,
				`INSERT INTO message_outbox (operation_id, message, channel, thread_ts, ts, shown)
				 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
				m.Op, m.Role, m.Channel, m.Thread, m.TS, m.Shown)
			if err != nil {
				return err
			}
			ops = append(ops, m.Op)
		}
		rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM message_outbox
			WHERE operation_id = ANY($1) ORDER BY operation_id, message`, ops)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanMessage)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("track operation messages: %w", err)
	}
	return out, nil
}

// SetMessageShown records m's timestamp, if the stored message had none,
// and that it shows at least m.Shown journal entries. Under a stale leader
// term (WithTerm) it wraps *StaleTermError.
func (s *Store) SetMessageShown(ctx context.Context, m bot.OpMessage) error {
	tag, err := s.fencedExec(ctx,
		`UPDATE message_outbox SET ts = COALESCE(NULLIF(ts, ''), $3), shown = GREATEST(shown, $4)
		 WHERE operation_id = $1 AND message = $2`,
		m.Op, m.Role, m.TS, m.Shown)
	if err != nil {
		return fmt.Errorf("record what the %s message of %s shows: %w", m.Role, m.Op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record what the %s message of %s shows: it is not tracked", m.Role, m.Op)
	}
	return nil
}

// UnsettledMessages returns the messages of finished operations, whose last
// journal entry was written in [from, to), that show fewer entries than the
// journal has, by operation and role.
func (s *Store) UnsettledMessages(ctx context.Context, from, to time.Time) ([]bot.OpMessage, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT m.operation_id, m.message, m.channel, m.thread_ts, m.ts, m.shown
		 FROM message_outbox m
		 JOIN operations o ON o.id = m.operation_id
		 CROSS JOIN LATERAL (SELECT count(*) AS entries, max(at) AS last
		                     FROM operation_journal j WHERE j.operation_id = o.id) j
		 WHERE NOT (o.`+unfinished+`) AND m.shown < j.entries AND j.last >= $1 AND j.last < $2
		 ORDER BY m.operation_id, m.message`, from, to)
	if err != nil {
		return nil, fmt.Errorf("unsettled operation messages: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("unsettled operation messages: %w", err)
	}
	return list, nil
}

// scanMessage reads a row of messageColumns.
func scanMessage(row pgx.CollectableRow) (bot.OpMessage, error) {
	var m bot.OpMessage
	err := row.Scan(&m.Op, &m.Role, &m.Channel, &m.Thread, &m.TS, &m.Shown)
	return m, err
}
