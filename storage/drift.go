package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
)

// DriftRow is a row of sync_drift (internet side), the schema drift the
// coordinator keeps track of per table and direction. Kind "missing" is a
// column the sending side has and the receiving side lacks: its values
// wait, and the table is read again from its start once the column
// exists there. Kind "seen" holds (in Detail, as JSON) the columns the
// sending side had at the last run, so that a column dropped there, or a
// type changed, is noticed.
type DriftRow struct {
	bun.BaseModel `bun:"table:sync_drift"`

	TableName string    `bun:"table_name,pk,type:varchar(64)"`
	Direction string    `bun:"direction,pk,type:varchar(8)"`
	Kind      string    `bun:"kind,pk,type:varchar(8)"`
	Column    string    `bun:"column_name,pk,type:varchar(64)"`
	Detail    string    `bun:"detail,type:text,notnull"`
	Since     time.Time `bun:"since,type:datetime(6),notnull"`
}

const (
	driftMissing = "missing"
	driftSeen    = "seen"
)

// NoteMissing records that the receiving side of table in direction d
// lacks the columns cols, each with alter, the statement that adds it
// there (informative). A column noted already keeps its first time.
func (db *DB) NoteMissing(ctx context.Context, table string, d gapsync.Direction, cols map[string]string) error {
	now := time.Now().UTC()
	for col, alter := range cols {
		row := &DriftRow{TableName: table, Direction: string(d), Kind: driftMissing, Column: col,
			Detail: strings.ToValidUTF8(truncate(alter, 4000), "?"), Since: now}
		if _, err := db.insertIgnore(db.bun.NewInsert().Model(row), "table_name", "direction", "kind", "column_name").Exec(ctx); err != nil {
			return fmt.Errorf("storage: note missing column %s.%s: %w", table, col, err)
		}
	}
	return nil
}

// MissingColumns lists the columns noted as missing on a receiving side.
func (db *DB) MissingColumns(ctx context.Context) ([]gapsync.MissingColumn, error) {
	var rows []DriftRow
	if err := db.bun.NewSelect().Model(&rows).Where("kind = ?", driftMissing).
		Order("table_name", "direction", "column_name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_drift: %w", err)
	}
	out := make([]gapsync.MissingColumn, len(rows))
	for i, r := range rows {
		out[i] = gapsync.MissingColumn{Table: r.TableName, Direction: gapsync.Direction(r.Direction), Column: r.Column,
			Alter: r.Detail, Since: r.Since.UTC()}
	}
	return out, nil
}

// ClearMissing forgets the missing columns cols of table in direction d:
// they exist on the receiving side now and every row went again.
func (db *DB) ClearMissing(ctx context.Context, table string, d gapsync.Direction, cols []string) error {
	if len(cols) == 0 {
		return nil
	}
	_, err := db.bun.NewDelete().Model((*DriftRow)(nil)).Where("table_name = ? AND direction = ? AND kind = ?", table, string(d), driftMissing).
		Where("column_name IN (?)", bun.In(cols)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: clear missing columns of %s: %w", table, err)
	}
	return nil
}

// SeenColumns returns the columns the sending side of table had at the
// last run in direction d, nil when none were recorded.
func (db *DB) SeenColumns(ctx context.Context, table string, d gapsync.Direction) ([]gapsync.ColumnShape, error) {
	var rows []DriftRow
	if err := db.bun.NewSelect().Model(&rows).Where("table_name = ? AND direction = ? AND kind = ?", table, string(d), driftSeen).
		Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_drift: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	var cols []gapsync.ColumnShape
	if err := json.Unmarshal([]byte(rows[0].Detail), &cols); err != nil {
		// Edited by hand into something else: forget it; the next run
		// records the columns as they are.
		return nil, nil
	}
	return cols, nil
}

// SetSeenColumns records the columns the sending side of table has now.
func (db *DB) SetSeenColumns(ctx context.Context, table string, d gapsync.Direction, cols []gapsync.ColumnShape) error {
	detail, err := json.Marshal(cols)
	if err != nil {
		return err
	}
	row := &DriftRow{TableName: table, Direction: string(d), Kind: driftSeen, Column: "", Detail: string(detail), Since: time.Now().UTC()}
	q := db.onConflict(db.bun.NewInsert().Model(row), []string{"table_name", "direction", "kind", "column_name"}, []string{"detail", "since"})
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: record the columns of %s: %w", table, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
