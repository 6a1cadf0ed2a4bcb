package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
