package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
)

// LastWindow returns the upper bound of the newest successful run of table
// in direction d, and false when the table has never synced successfully.
// After a Reload it returns "" (and true): the next run reads every row.
func (db *DB) LastWindow(ctx context.Context, table string, d gapsync.Direction) (string, bool, error) {
	var to string
	err := db.bun.NewSelect().Model((*LogRow)(nil)).Column("window_to").
		Where("table_name = ?", table).Where("direction = ?", string(d)).Where("status IN (?)", bun.List([]string{StatusOK, StatusReload})).
		OrderExpr("id DESC").Limit(1).Scan(ctx, &to)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("storage: read sync_log for %s: %w", table, err)
	}
	return to, true, nil
}

// Record appends one entry to sync_log.
func (db *DB) Record(ctx context.Context, e gapsync.LogEntry) error {
	if _, err := db.bun.NewInsert().Model(logRow(e)).Exec(ctx); err != nil {
		return fmt.Errorf("storage: write sync_log for %s: %w", e.Table, err)
	}
	return nil
}

// logRow is the sync_log row of e.
func logRow(e gapsync.LogEntry) *LogRow {
	row := &LogRow{
		RunID: e.RunID, TableName: e.Table, Direction: string(e.Direction),
		WindowFrom: e.Window.From, WindowTo: e.Window.To,
		Batches: e.Batches, Rows: e.Rows, Written: e.Written, Duplicates: e.Duplicates, Conflicts: e.Conflicts, Bytes: e.Bytes,
		Status: StatusOK, StartedAt: e.StartedAt.UTC(), FinishedAt: e.FinishedAt.UTC(),
	}
	if e.Err != nil {
		row.Status, row.Error = StatusFailed, e.Err.Error()
	}
	return row
}

// Log returns sync_log entries, newest first, at most limit of them
// (all when limit <= 0), optionally for one table.
func (db *DB) Log(ctx context.Context, table string, limit int) ([]LogRow, error) {
	var rows []LogRow
	q := db.bun.NewSelect().Model(&rows).OrderExpr("id DESC")
	if table != "" {
		q = q.Where("table_name = ?", table)
	}
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_log: %w", err)
	}
	return rows, nil
}

// PruneLog deletes at most max entries of sync_log that finished before
// before and are no longer needed: each has a newer successful (or
// reload) entry of the same table and direction. So the newest good
// window of every table and direction stays whatever its age (LastWindow
// reads it), and so does every failure after it (Status shows the last
// error). The oldest entries go first, and only those before the first
// entry that finished at or after before are looked at (the log is
// appended in time order; after a clock stepped back, an old entry past
// a young one waits). It returns how many it deleted; call it again
// while that is max.
func (db *DB) PruneLog(ctx context.Context, before time.Time, max int) (int64, error) {
	if max <= 0 {
		return 0, nil
	}
	limit, err := db.firstYoung(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("storage: prune sync_log: %w", err)
	}
	// The derived table, with its LIMIT, is read before the delete:
	// MySQL/MariaDB refuse a DELETE whose own subquery reads its table.
	res, err := db.bun.ExecContext(ctx, "DELETE FROM sync_log WHERE id IN (SELECT id FROM ("+
		"SELECT r.id FROM sync_log r WHERE r.id < ? AND r.finished_at < ? AND EXISTS ("+
		"SELECT 1 FROM sync_log n WHERE n.table_name = r.table_name AND n.direction = r.direction "+
		"AND n.status IN (?) AND n.id > r.id) ORDER BY r.id LIMIT ?) doomed)",
		limit, before.UTC(), bun.List([]string{StatusOK, StatusReload}), max)
	if err != nil {
		return 0, fmt.Errorf("storage: prune sync_log: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: prune sync_log: %w", err)
	}
	return n, nil
}

// firstYoung returns the id below which every sync_log entry finished
// before before, math.MaxInt64 when all did: the scans of PruneLog stop
// there, not at the end of a log that holds nothing old. Entries are
// appended in time order, so it halves the ids, a primary-key lookup
// each (about 30 for a billion entries; finished_at has no index, and a
// scan for the first young entry reads every old one).
func (db *DB) firstYoung(ctx context.Context, before time.Time) (int64, error) {
	var lo, hi sql.NullInt64
	if err := db.bun.NewSelect().Model((*LogRow)(nil)).ColumnExpr("MIN(id), MAX(id)").Scan(ctx, &lo, &hi); err != nil {
		return 0, err
	}
	if !lo.Valid {
		return math.MaxInt64, nil
	}
	// young(m): the first entry at or after id m finished at or after
	// before (or there is none). False at lo unless nothing is old; the
	// smallest m where it holds is the answer.
	young := func(m int64) (bool, error) {
		var y int
		err := db.bun.NewSelect().Model((*LogRow)(nil)).ColumnExpr("CASE WHEN finished_at >= ? THEN 1 ELSE 0 END", before.UTC()).
			Where("id >= ?", m).OrderExpr("id").Limit(1).Scan(ctx, &y)
		if errors.Is(err, sql.ErrNoRows) {
			return true, nil
		}
		return y == 1, err
	}
	l, h := lo.Int64, hi.Int64+1
	for l < h {
		m := l + (h-l)/2
		ok, err := young(m)
		if err != nil {
			return 0, err
		}
		if ok {
			h = m
		} else {
			l = m + 1
		}
	}
	if l > hi.Int64 {
		return math.MaxInt64, nil
	}
	return l, nil
}
