package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
)

// Configure adds or replaces t in sync_config. The table itself must exist.
// A cursor column whose type cannot carry every change (neither
// DATETIME/TIMESTAMP nor an integer) is refused with an error wrapping
// gapsync.ErrUnsupportedCursor that says which types work.
func (db *DB) Configure(ctx context.Context, t gapsync.Table) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if err := db.checkCursor(ctx, t); err != nil {
		return err
	}
	row := &ConfigRow{
		TableName:        t.Name,
		Direction:        string(t.Direction),
		KeyColumns:       strings.Join(t.Key, ","),
		CursorColumn:     t.Cursor,
		SoftDeleteColumn: t.SoftDelete,
		SoftDeleteAs:     t.SoftDeleteAs,
		FileColumns:      strings.Join(t.FileColumns, ","),
		FilePattern:      t.FilePattern,
		Enabled:          t.Enabled,
		UpdatedAt:        time.Now().UTC(),
	}
	q := db.bun.NewInsert().Model(row)
	set := "direction = EXCLUDED.direction, key_columns = EXCLUDED.key_columns, cursor_column = EXCLUDED.cursor_column, " +
		"soft_delete_column = EXCLUDED.soft_delete_column, soft_delete_as = EXCLUDED.soft_delete_as, file_columns = EXCLUDED.file_columns, file_pattern = EXCLUDED.file_pattern, enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at"
	if db.d.Name() == "mysql" {
		q = q.On("DUPLICATE KEY UPDATE").
			Set("direction = VALUES(direction), key_columns = VALUES(key_columns), cursor_column = VALUES(cursor_column)").
			Set("soft_delete_column = VALUES(soft_delete_column), soft_delete_as = VALUES(soft_delete_as), file_columns = VALUES(file_columns), file_pattern = VALUES(file_pattern)").
			Set("enabled = VALUES(enabled), updated_at = VALUES(updated_at)")
	} else {
		q = q.On("CONFLICT (table_name) DO UPDATE").Set(set)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: configure %s: %w", t.Name, err)
	}
	db.meta.Clear()
	return nil
}

// Tables returns the tables enabled for direction d in sync_config (every
// enabled table when d is ""). A row
// that does not validate (a bad identifier typed by an operator) is an
// error, not silently skipped.
func (db *DB) Tables(ctx context.Context, d gapsync.Direction) ([]gapsync.Table, error) {
	var rows []ConfigRow
	if v, ok := db.meta.Load("sync_config"); ok && time.Since(v.(metaEntry).at) < metaTTL {
		rows = v.(metaEntry).tables
	} else {
		if err := db.bun.NewSelect().Model(&rows).Where("enabled = ?", true).Order("table_name").Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read sync_config: %w", err)
		}
		db.meta.Store("sync_config", metaEntry{at: time.Now(), tables: rows})
	}
	var out []gapsync.Table
	for _, r := range rows {
		t := r.table()
		if d != "" && !t.Allows(d) {
			continue
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("storage: sync_config row %q: %w", r.TableName, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Table returns the configuration of one table enabled for d, or an error
// wrapping gapsync.ErrUnknownTable.
func (db *DB) Table(ctx context.Context, name string, d gapsync.Direction) (gapsync.Table, error) {
	if err := gapsync.ValidIdentifier(name); err != nil {
		return gapsync.Table{}, err
	}
	ts, err := db.Tables(ctx, d)
	if err != nil {
		return gapsync.Table{}, err
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return gapsync.Table{}, fmt.Errorf("%w: %q for %s", gapsync.ErrUnknownTable, name, d)
}

func (r ConfigRow) table() gapsync.Table {
	return gapsync.Table{
		Name:         r.TableName,
		Direction:    gapsync.Direction(r.Direction),
		Key:          gapsync.SplitList(r.KeyColumns),
		Cursor:       r.CursorColumn,
		SoftDelete:   r.SoftDeleteColumn,
		SoftDeleteAs: r.SoftDeleteAs,
		FileColumns:  gapsync.SplitList(r.FileColumns),
		FilePattern:  r.FilePattern,
		Enabled:      r.Enabled,
	}
}

// checkCursor refuses a cursor column of an unsupported type. A table or
// column that does not exist yet is left to the reads, which name it.
func (db *DB) checkCursor(ctx context.Context, t gapsync.Table) error {
	cols, err := db.readColumns(ctx, t.Name)
	if errors.Is(err, gapsync.ErrUnknownTable) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, ok := findColumn(cols, t.Cursor)
	if !ok {
		return nil
	}
	if _, err := cursorKindOf(db.d.Name(), cur.Type); err != nil {
		return fmt.Errorf("storage: configure %s: cursor %s: %w", t.Name, t.Cursor, err)
	}
	return nil
}
