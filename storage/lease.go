package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
)

// Acquire takes or renews the lease name for holder for ttl, by the
// database's clock: it succeeds when the lease is free, expired, or
// already holder's. It returns an error wrapping gapsync.ErrLeaseHeld
// when another holder has it. A holder that dies loses the lease when
// ttl runs out.
func (db *DB) Acquire(ctx context.Context, name, holder string, ttl time.Duration) error {
	q := db.d.acquireLease(ttl)
	if _, err := db.sql.ExecContext(ctx, q, name, holder); err != nil {
		return fmt.Errorf("storage: acquire lease %s: %w", name, err)
	}
	var got string
	err := db.sql.QueryRowContext(ctx, "SELECT holder FROM sync_lease WHERE name = ?", name).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && got != holder) {
		return fmt.Errorf("%w: %s is held by %s", gapsync.ErrLeaseHeld, name, got)
	}
	if err != nil {
		return fmt.Errorf("storage: read lease %s: %w", name, err)
	}
	return nil
}

// Release gives the lease up if holder has it.
func (db *DB) Release(ctx context.Context, name, holder string) error {
	if _, err := db.sql.ExecContext(ctx, "UPDATE sync_lease SET expires_at = '' WHERE name = ? AND holder = ?", name, holder); err != nil {
		return fmt.Errorf("storage: release lease %s: %w", name, err)
	}
	return nil
}

// RecordConflict appends a settled conflict to sync_conflict.
func (db *DB) RecordConflict(ctx context.Context, c gapsync.ConflictRecord) error {
	row := &ConflictRow{RunID: c.RunID, TableName: c.Table, KeyText: c.Key, Policy: c.Policy, Winner: string(c.Winner),
		Internet: c.Internet, Intranet: c.Intranet, DetectedAt: c.DetectedAt.UTC()}
	if _, err := db.bun.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("storage: record conflict on %s: %w", c.Table, err)
	}
	return nil
}

// Conflicts returns recorded conflicts, oldest first, optionally for one table.
func (db *DB) Conflicts(ctx context.Context, table string) ([]gapsync.ConflictRecord, error) {
	var rows []ConflictRow
	q := db.bun.NewSelect().Model(&rows).OrderExpr("id")
	if table != "" {
		q = q.Where("table_name = ?", table)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read conflicts: %w", err)
	}
	out := make([]gapsync.ConflictRecord, len(rows))
	for i, r := range rows {
		out[i] = gapsync.ConflictRecord{RunID: r.RunID, Table: r.TableName, Key: r.KeyText, Policy: r.Policy,
			Winner: gapsync.Side(r.Winner), Internet: r.Internet, Intranet: r.Intranet, DetectedAt: r.DetectedAt}
	}
	return out, nil
}
