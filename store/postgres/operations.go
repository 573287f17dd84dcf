package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/togather-foundation/togather-chatops/ops"
)

var _ ops.Journal = (*Store)(nil)

// operationColumns are the operations columns, in the order scanOperation
// reads them.
const operationColumns = `id, kind, env, requester, reason, state, version, image, image_id,
	from_slot, to_slot, prev_image, snapshot, error, bake_until, baked, chat, created_at, updated_at, approval`

// unfinished is the SQL condition of an operation not yet in a terminal
// state (ops.Step.Terminal); the partial index operations_unfinished_idx has
// the same predicate.
const unfinished = `state NOT IN ('done', 'failed', 'rolled_back', 'needs_attention')`

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// querier is what reads need of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Create stores a new operation with the entries of its journal, if any.
// An operation with the same id is an error. Under a stale leader term
// (WithTerm) it wraps *StaleTermError.
func (s *Store) Create(ctx context.Context, op ops.Operation) error {
	if op.ID == "" || op.CreatedAt.IsZero() {
		return errors.New("create operation: id and created_at are required")
	}
	err := s.fenced(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO operations (`+operationColumns+`)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			op.ID, op.Kind, op.Env, op.Requester, op.Reason, op.State, op.Version, op.Image, op.ImageID,
			op.FromSlot, op.ToSlot, op.PrevImage, op.Snapshot, op.Error, nullTime(op.BakeUntil), op.Baked,
			op.Chat, op.CreatedAt, op.UpdatedAt, op.Approval)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
			return errors.New("it already exists")
		}
		if err != nil {
			return err
		}
		for _, e := range op.Journal {
			if err := appendEntry(ctx, tx, op.ID, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create operation %s: %w", op.ID, err)
	}
	return nil
}

// Record writes op's fields — all but its identity (id, kind, env,
// requester, created_at) and its approval, fixed at Create — and appends e to its journal, both or
// neither. An unknown operation wraps ops.ErrNotFound; a stale leader
// term (WithTerm), *StaleTermError.
func (s *Store) Record(ctx context.Context, op ops.Operation, e ops.JournalEntry) error {
	if e.At.IsZero() {
		return fmt.Errorf("record operation %s: journal entry has no time", op.ID)
	}
	// One statement, hence one transaction: the entry is appended only
	// when the update found the row, and a failure undoes both.
	tag, err := s.fencedExec(ctx,
		`WITH updated AS (
			UPDATE operations
			SET reason = $2, state = $3, version = $4, image = $5, image_id = $6, from_slot = $7,
			    to_slot = $8, prev_image = $9, snapshot = $10, error = $11, bake_until = $12,
			    baked = $13, chat = $14, updated_at = $15
			WHERE id = $1
			RETURNING id
		 )
		 INSERT INTO operation_journal (operation_id, at, step, phase, detail)
		 SELECT id, $16, $17, $18, $19 FROM updated`,
		op.ID, op.Reason, op.State, op.Version, op.Image, op.ImageID, op.FromSlot,
		op.ToSlot, op.PrevImage, op.Snapshot, op.Error, nullTime(op.BakeUntil),
		op.Baked, op.Chat, op.UpdatedAt,
		e.At, e.Step, e.Phase, e.Detail)
	if err != nil {
		return fmt.Errorf("record operation %s: %w", op.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record operation %s: %w", op.ID, ops.ErrNotFound)
	}
	return nil
}

// TransitionOperation moves operation id to state to, and appends e to its
// journal, only if its state is one of from; updated_at becomes e.At. It
// returns the operation as it is afterwards and whether this call moved it:
// of several concurrent callers (double clicks, two approvers), exactly one
// does. An unknown operation wraps ops.ErrNotFound; a stale leader term
// (WithTerm), *StaleTermError.
func (s *Store) TransitionOperation(ctx context.Context, id string, from []ops.Step, to ops.Step, e ops.JournalEntry) (ops.Operation, bool, error) {
	if e.At.IsZero() {
		return ops.Operation{}, false, fmt.Errorf("transition operation %s: journal entry has no time", id)
	}
	var (
		op    ops.Operation
		moved bool
	)
	err := s.fenced(ctx, func(tx pgx.Tx) error {
		// A concurrent update of the row makes this one wait, then
		// re-check the state against the committed row: one wins.
		tag, err := tx.Exec(ctx,
			`UPDATE operations SET state = $2, updated_at = $3 WHERE id = $1 AND state = ANY($4)`,
			id, to, e.At, from)
		if err != nil {
			return err
		}
		if moved = tag.RowsAffected() == 1; moved {
			if err := appendEntry(ctx, tx, id, e); err != nil {
				return err
			}
		}
		op, err = getOperation(ctx, tx, id)
		return err
	})
	if err != nil {
		return ops.Operation{}, false, fmt.Errorf("transition operation %s to %s: %w", id, to, err)
	}
	return op, moved, nil
}

// Get returns the operation id with its journal, oldest entry first. An
// unknown id wraps ops.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (ops.Operation, error) {
	op, err := getOperation(ctx, s.pool, id)
	if err != nil {
		return ops.Operation{}, fmt.Errorf("get operation %s: %w", id, err)
	}
	return op, nil
}

// Unfinished returns the operations not in a terminal state, oldest first,
// with their journals.
func (s *Store) Unfinished(ctx context.Context) ([]ops.Operation, error) {
	list, err := listOperations(ctx, s.pool,
		`SELECT `+operationColumns+` FROM operations WHERE `+unfinished+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("unfinished operations: %w", err)
	}
	return list, nil
}

// History returns at most limit operations of env, newest first, with their
// journals. A limit <= 0 returns none.
func (s *Store) History(ctx context.Context, env string, limit int) ([]ops.Operation, error) {
	list, err := listOperations(ctx, s.pool,
		`SELECT `+operationColumns+` FROM operations WHERE env = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
		env, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("operation history of %s: %w", env, err)
	}
	return list, nil
}

// Unbaked returns the finished deploys whose previous slot is still warm
// (a bake deadline is set and the bake did not end), oldest first, with
// their journals.
func (s *Store) Unbaked(ctx context.Context) ([]ops.Operation, error) {
	list, err := listOperations(ctx, s.pool,
		`SELECT `+operationColumns+` FROM operations
		 WHERE kind = $1 AND state = $2 AND NOT baked AND bake_until IS NOT NULL
		 ORDER BY created_at, id`,
		ops.KindDeploy, ops.StepDone)
	if err != nil {
		return nil, fmt.Errorf("unbaked deploys: %w", err)
	}
	return list, nil
}

// appendEntry adds e to the journal of operation id.
func appendEntry(ctx context.Context, tx pgx.Tx, id string, e ops.JournalEntry) error {
	if e.At.IsZero() {
		return fmt.Errorf("journal entry %s %s has no time", e.Step, e.Phase)
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO operation_journal (operation_id, at, step, phase, detail) VALUES ($1, $2, $3, $4, $5)`,
		id, e.At, e.Step, e.Phase, e.Detail)
	return err
}

// getOperation reads one operation with its journal; an unknown id wraps
// ops.ErrNotFound.
func getOperation(ctx context.Context, q querier, id string) (ops.Operation, error) {
	list, err := listOperations(ctx, q, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id)
	if err != nil {
		return ops.Operation{}, err
	}
	if len(list) == 0 {
		return ops.Operation{}, ops.ErrNotFound
	}
	return list[0], nil
}

// listOperations runs query, which selects operationColumns, and attaches
// each operation's journal.
func listOperations(ctx context.Context, q querier, query string, args ...any) ([]ops.Operation, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, scanOperation)
	if err != nil || len(list) == 0 {
		return list, err
	}
	ids := make([]string, len(list))
	index := make(map[string]int, len(list))
	for i, op := range list {
		ids[i], index[op.ID] = op.ID, i
	}
	rows, err = q.Query(ctx,
		`SELECT operation_id, at, step, phase, detail FROM operation_journal
		 WHERE operation_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	var (
		opID string
		e    ops.JournalEntry
	)
	_, err = pgx.ForEachRow(rows, []any{&opID, &e.At, &e.Step, &e.Phase, &e.Detail}, func() error {
		e.At = e.At.UTC()
		i := index[opID]
		list[i].Journal = append(list[i].Journal, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx,
		`SELECT operation_id, approver FROM operation_approvals WHERE operation_id = ANY($1) ORDER BY at, approver`, ids)
	if err != nil {
		return nil, err
	}
	var approver string
	_, err = pgx.ForEachRow(rows, []any{&opID, &approver}, func() error {
		i := index[opID]
		list[i].Approvers = append(list[i].Approvers, approver)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// Approve adds user to the approvers of the operation id while it waits in
// from, and journals e, in one transaction: concurrent clicks of one user,
// from any replica, add one approval. added is false when user had already
// approved or the operation is no longer in from; op is as committed.
func (s *Store) Approve(ctx context.Context, id, user string, from ops.Step, e ops.JournalEntry) (op ops.Operation, added bool, err error) {
	if e.At.IsZero() {
		return ops.Operation{}, false, fmt.Errorf("approve operation %s: journal entry has no time", id)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var state ops.Step
		if err := tx.QueryRow(ctx, `SELECT state FROM operations WHERE id = $1 FOR UPDATE`, id).Scan(&state); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ops.ErrNotFound
			}
			return err
		}
		if state == from {
			tag, err := tx.Exec(ctx,
				`INSERT INTO operation_approvals (operation_id, approver, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, user, e.At)
			if err != nil {
				return err
			}
			if added = tag.RowsAffected() == 1; added {
				if err := appendEntry(ctx, tx, id, e); err != nil {
					return err
				}
			}
		}
		op, err = getOperation(ctx, tx, id)
		return err
	})
	if err != nil {
		return ops.Operation{}, false, fmt.Errorf("approve operation %s by %s: %w", id, user, err)
	}
	return op, added, nil
}

// scanOperation reads a row of operationColumns. Times come back in UTC.
func scanOperation(row pgx.CollectableRow) (ops.Operation, error) {
	var (
		op        ops.Operation
		bakeUntil *time.Time
	)
	err := row.Scan(&op.ID, &op.Kind, &op.Env, &op.Requester, &op.Reason, &op.State, &op.Version, &op.Image,
		&op.ImageID, &op.FromSlot, &op.ToSlot, &op.PrevImage, &op.Snapshot, &op.Error, &bakeUntil, &op.Baked,
		&op.Chat, &op.CreatedAt, &op.UpdatedAt, &op.Approval)
	if err != nil {
		return ops.Operation{}, err
	}
	op.BakeUntil = utc(bakeUntil)
	op.CreatedAt, op.UpdatedAt = op.CreatedAt.UTC(), op.UpdatedAt.UTC()
	return op, nil
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// utc is the time t points to in UTC, or the zero time for NULL.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// SetOperationChat records where an operation is discussed (its chat
// message), without touching its state. Unknown → ops.ErrNotFound.
func (s *Store) SetOperationChat(ctx context.Context, id string, chat map[string]string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE operations SET chat = $2 WHERE id = $1`, id, chat)
	if err != nil {
		return fmt.Errorf("set chat of operation %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set chat of operation %s: %w", id, ops.ErrNotFound)
	}
	return nil
}
