package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Apply writes a batch into its table, idempotently: the rows are upserted
// by primary key and the batch id is recorded in the sync_applied ledger in
// the same transaction. A batch whose id is already in the ledger is not
// applied again; its first result comes back with Duplicate set.
//
// Before anything is written, Apply refuses (with the matching gapsync
// sentinel) a table not enabled in this side's sync_config for the batch's
// direction, identifiers that are not valid, columns the table does not
// have, a batch that lacks or mislabels the configured key, rows whose
// values do not match the columns, and a row larger than
// Options.MaxStatementBytes. The statements are plain multi-row
// INSERT … ON DUPLICATE KEY UPDATE (MySQL) or INSERT … ON CONFLICT DO
// UPDATE (SQLite), sized by Options.MaxStatementRows and MaxStatementBytes,
// through server-side prepared statements.
func (db *DB) Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error) {
	res := gapsync.Result{BatchID: b.ID, Table: b.Table, Rows: len(b.Rows), Bytes: b.Bytes()}
	names, key, err := db.checkBatch(ctx, b)
	if err != nil {
		return res, err
	}
	if prev, ok, err := db.applied(ctx, b.ID); err != nil {
		return res, err
	} else if ok {
		return prev, nil
	}
	chunks, err := db.chunk(b.Rows)
	if err != nil {
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("apply %s batch %s: begin: %w", b.Table, b.ID, err)
	}
	defer tx.Rollback()
	var (
		stmt     *sql.Stmt
		stmtRows int
		args     []any
	)
	for _, rows := range chunks {
		args = args[:0]
		for _, r := range rows {
			args = append(args, r.Values...)
		}
		q := db.d.Upsert(b.Table, names, key, len(rows))
		var r sql.Result
		if len(rows) == stmtRows {
			r, err = stmt.ExecContext(ctx, args...)
		} else if len(chunks) > 1 && stmt == nil {
			// Prepare the full-size statement once and reuse it.
			if stmt, err = tx.PrepareContext(ctx, q); err == nil {
				stmtRows = len(rows)
				defer stmt.Close()
				r, err = stmt.ExecContext(ctx, args...)
			}
		} else {
			r, err = tx.ExecContext(ctx, q, args...)
		}
		if err != nil {
			return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
		}
		n, _ := r.RowsAffected()
		res.Written += n
	}
	now := time.Now().UTC()
	led := "INSERT INTO sync_applied (batch_id, table_name, direction, rows_in, rows_written, bytes, applied_at) VALUES (?,?,?,?,?,?,?) "
	if db.d.Name() == "mysql" {
		led += "ON DUPLICATE KEY UPDATE batch_id = batch_id"
	} else {
		led += "ON CONFLICT (batch_id) DO NOTHING"
	}
	r, err := tx.ExecContext(ctx, led, b.ID, b.Table, b.Direction, res.Rows, res.Written, res.Bytes, now.Format(timeLayout))
	if err != nil {
		return res, fmt.Errorf("apply %s batch %s: ledger: %w", b.Table, b.ID, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		// A concurrent delivery of the same batch committed first.
		tx.Rollback()
		prev, _, err := db.applied(ctx, b.ID)
		return prev, err
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("apply %s batch %s: commit: %w", b.Table, b.ID, err)
	}
	res.AppliedAt = now.Format(timeLayout)
	return res, nil
}

// checkBatch validates b against this side's configuration and the target
// table, and returns the column names and the configured key.
func (db *DB) checkBatch(ctx context.Context, b *batch.Batch) (names, key []string, err error) {
	if b.ID == "" {
		return nil, nil, fmt.Errorf("%w: batch has no id", gapsync.ErrMalformed)
	}
	d := gapsync.Direction(b.Direction)
	if d != gapsync.Push && d != gapsync.Pull {
		return nil, nil, fmt.Errorf("%w: batch direction %q", gapsync.ErrMalformed, b.Direction)
	}
	t, err := db.Table(ctx, b.Table, d)
	if err != nil {
		return nil, nil, err
	}
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return nil, nil, err
	}
	names = make([]string, len(b.Columns))
	for i, c := range b.Columns {
		if err := gapsync.ValidIdentifier(c.Name); err != nil {
			return nil, nil, fmt.Errorf("batch %s column: %w", b.ID, err)
		}
		if _, ok := findColumn(cols, c.Name); !ok {
			return nil, nil, fmt.Errorf("%w: %s.%s", gapsync.ErrUnknownColumn, t.Name, c.Name)
		}
		if c.Key != contains(t.Key, c.Name) {
			return nil, nil, fmt.Errorf("%w: %s.%s key flag disagrees with sync_config", gapsync.ErrMalformed, t.Name, c.Name)
		}
		names[i] = c.Name
	}
	for _, k := range t.Key {
		if !contains(names, k) {
			return nil, nil, fmt.Errorf("%w: batch %s lacks key column %s.%s", gapsync.ErrUnknownColumn, b.ID, t.Name, k)
		}
	}
	for i, r := range b.Rows {
		if r.Op != batch.OpUpsert {
			return nil, nil, fmt.Errorf("%w: row %d: op %d not supported", gapsync.ErrMalformed, i, r.Op)
		}
		if len(r.Values) != len(names) {
			return nil, nil, fmt.Errorf("%w: row %d has %d values for %d columns", gapsync.ErrMalformed, i, len(r.Values), len(names))
		}
	}
	return names, t.Key, nil
}

// chunk splits rows into statements that respect the row, byte and
// placeholder limits.
func (db *DB) chunk(rows []batch.Row) ([][]batch.Row, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	maxRows := db.opts.MaxStatementRows
	if n := db.d.placeholderLimit() / len(rows[0].Values); n < maxRows {
		maxRows = n
	}
	var out [][]batch.Row
	start, size := 0, 0
	for i, r := range rows {
		s := batch.RowSize(r)
		if s > db.opts.MaxStatementBytes {
			return nil, fmt.Errorf("%w: row %d is %d bytes, over the %d-byte statement cap", gapsync.ErrTooLarge, i, s, db.opts.MaxStatementBytes)
		}
		if i > start && (i-start == maxRows || size+s > db.opts.MaxStatementBytes) {
			out = append(out, rows[start:i])
			start, size = i, 0
		}
		size += s
	}
	return append(out, rows[start:]), nil
}

// applied returns the ledger entry for a batch id.
func (db *DB) applied(ctx context.Context, id string) (gapsync.Result, bool, error) {
	var a AppliedRow
	err := db.bun.NewSelect().Model(&a).Where("batch_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return gapsync.Result{}, false, nil
	}
	if err != nil {
		return gapsync.Result{}, false, fmt.Errorf("storage: read ledger: %w", err)
	}
	return gapsync.Result{
		BatchID: a.BatchID, Table: a.TableName, Rows: a.Rows, Written: a.Written, Bytes: a.Bytes,
		Duplicate: true, AppliedAt: a.AppliedAt.UTC().Format(timeLayout),
	}, true, nil
}
