package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
)

// CheckpointRow is a row of sync_checkpoint (internet side): the position
// of a window in progress, one per table and direction (see
// gapsync.Checkpoint). It is written after every applied page of a window
// longer than one page and deleted when the window ends.
type CheckpointRow struct {
	bun.BaseModel `bun:"table:sync_checkpoint"`

	TableName  string    `bun:"table_name,pk,type:varchar(64)"`
	Direction  string    `bun:"direction,pk,type:varchar(8)"`
	WindowFrom string    `bun:"window_from,type:varchar(63),notnull"`
	WindowTo   string    `bun:"window_to,type:varchar(63),notnull"`
	Config     string    `bun:"config,type:varchar(64),notnull"`
	Position   []byte    `bun:"position,type:longblob"`
	Batches    int       `bun:"batches,notnull"`
	Rows       int64     `bun:"rows_done,notnull"`
	Left       int64     `bun:"rows_left,notnull"`
	RunID      string    `bun:"run_id,type:varchar(64),notnull"`
	StartedAt  time.Time `bun:"started_at,type:datetime(6),notnull"`
	UpdatedAt  time.Time `bun:"updated_at,type:datetime(6),notnull"`
}

func (r CheckpointRow) checkpoint() gapsync.Checkpoint {
	return gapsync.Checkpoint{Table: r.TableName, Direction: gapsync.Direction(r.Direction),
		Window: gapsync.Window{From: r.WindowFrom, To: r.WindowTo}, Config: r.Config, After: r.Position,
		Rows: r.Rows, Batches: r.Batches, Left: r.Left, RunID: r.RunID, StartedAt: r.StartedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// Checkpoint returns the checkpoint of table in direction d, and false
// when there is none. A stored checkpoint that does not validate
// (gapsync.Checkpoint.Validate: sync_checkpoint was edited by hand) is
// returned with an error wrapping gapsync.ErrMalformed, which the caller
// drops.
func (db *DB) Checkpoint(ctx context.Context, table string, d gapsync.Direction) (gapsync.Checkpoint, bool, error) {
	var row CheckpointRow
	err := db.bun.NewSelect().Model(&row).Where("table_name = ?", table).Where("direction = ?", string(d)).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return gapsync.Checkpoint{}, false, nil
	}
	if err != nil {
		return gapsync.Checkpoint{}, false, fmt.Errorf("storage: read the checkpoint of %s %s: %w", d, table, err)
	}
	cp := row.checkpoint()
	if cp.Table != table || cp.Direction != d {
		return cp, true, fmt.Errorf("%w: checkpoint row of %q %q read for %s %s", gapsync.ErrMalformed, cp.Table, cp.Direction, d, table)
	}
	return cp, true, cp.Validate()
}

// SaveCheckpoint stores cp, replacing the checkpoint of its table and
// direction; it is durable when it returns.
func (db *DB) SaveCheckpoint(ctx context.Context, cp gapsync.Checkpoint) error {
	if err := cp.Validate(); err != nil {
		return err
	}
	now := time.Now().UTC()
	if cp.StartedAt.IsZero() {
		cp.StartedAt = now
	}
	row := &CheckpointRow{TableName: cp.Table, Direction: string(cp.Direction), WindowFrom: cp.Window.From, WindowTo: cp.Window.To,
		Config: cp.Config, Position: cp.After, Batches: cp.Batches, Rows: cp.Rows, Left: cp.Left, RunID: cp.RunID,
		StartedAt: cp.StartedAt.UTC(), UpdatedAt: now}
	q := db.onConflict(db.bun.NewInsert().Model(row), []string{"table_name", "direction"},
		[]string{"window_from", "window_to", "config", "position", "batches", "rows_done", "rows_left", "run_id", "started_at", "updated_at"})
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: save the checkpoint of %s %s: %w", cp.Direction, cp.Table, err)
	}
	return nil
}

// DropCheckpoint deletes the checkpoint of table in direction d, if any
// (every direction when d is "").
func (db *DB) DropCheckpoint(ctx context.Context, table string, d gapsync.Direction) error {
	q := db.bun.NewDelete().Model((*CheckpointRow)(nil)).Where("table_name = ?", table)
	if d != "" {
		q = q.Where("direction = ?", string(d))
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: drop the checkpoint of %s %s: %w", d, table, err)
	}
	return nil
}

// Remaining counts the rows of t in w that follow the position after (a
// position from ReadPage; nil: the whole window), up to PendingCap: an
// estimate of what a window in progress still has to read. It leaves out
// deletions, and counts rows that arrived by sync, which a page leaves
// out. A malformed position is refused with gapsync.ErrMalformed.
func (db *DB) Remaining(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte) (int64, error) {
	_, kind, err := db.shape(ctx, t)
	if err != nil {
		return -1, err
	}
	rw, delFrom := w, w.From
	if kind == kindInteger {
		rw, delFrom = w.Rows(), w.Deletions().From
		for _, v := range []string{rw.From, rw.To} {
			if v != "" && !gapsync.IsIntegerBound(v) {
				return -1, fmt.Errorf("%w: window bound %q of table %s, whose cursor is an integer", gapsync.ErrMalformed, v, t.Name)
			}
		}
	}
	phase, keyset, err := decodePosition(after, t, rw.From, delFrom)
	if err != nil {
		return -1, err
	}
	if phase == phaseTombstones { // the rows are all still to come
		keyset = nil
	}
	pq := pageQuery{table: t.Name, cursor: t.Cursor, key: t.Key, from: rw.From, to: rw.To, after: keyset, limit: PendingCap, num: kind == kindInteger}
	pq.cols = pq.orderBy()
	pq.types = db.typesOf(ctx, t.Name, pq.cols)
	q := selectPage(db.d, pq)
	var n int64
	if err := db.sql.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+q.SQL+") AS rows_left", q.Args...).Scan(&n); err != nil {
		return -1, fmt.Errorf("storage: count the rows left of %s: %w", t.Name, err)
	}
	return n, nil
}
