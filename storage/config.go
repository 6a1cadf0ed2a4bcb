package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

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
	if err := db.checkSelection(ctx, t); err != nil {
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
		IncludeColumns:   strings.Join(t.Columns, ","),
		ExcludeColumns:   strings.Join(t.Exclude, ","),
		RowFilter:        t.Filter,
		FilterAs:         t.FilterAs,
		RemoteName:       t.RemoteName,
		RemoteColumns:    gapsync.FormatColumnMap(t.RemoteColumns),
		Enabled:          t.Enabled,
		UpdatedAt:        time.Now().UTC(),
	}
	q := db.bun.NewInsert().Model(row)
	q = db.onConflict(q, []string{"table_name"}, []string{"direction", "key_columns", "cursor_column", "soft_delete_column",
		"soft_delete_as", "file_columns", "file_pattern", "include_columns", "exclude_columns", "row_filter", "filter_as", "remote_name", "remote_columns", "enabled", "updated_at"})
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: configure %s: %w", t.Name, err)
	}
	db.meta.Clear()
	return nil
}

// Tables returns the tables enabled for direction d in sync_config (every
// enabled table when d is ""), a pattern row standing for the tables of
// this database it matches (see patterns.go). A row that does not
// validate (a bad identifier typed by an operator) is an error, not
// silently skipped; a table a pattern matches whose name is no
// identifier gapsync can quote is left out with a log line (the setup
// check names it).
//
// sync_config is read on every call, not cached: a table enabled or
// disabled a moment ago (by this process or another) counts at once.
func (db *DB) Tables(ctx context.Context, d gapsync.Direction) ([]gapsync.Table, error) {
	cfg, err := db.Config(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg {
		if t.Enabled && (d == "" || t.Allows(d)) {
			if err := t.Validate(); err != nil {
				return nil, fmt.Errorf("storage: sync_config row %q: %w", t.Name, err)
			}
		}
	}
	all, _, err := db.expand(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var out []gapsync.Table
	for _, t := range all {
		if !t.Enabled || (d != "" && !t.Allows(d)) {
			continue
		}
		if err := t.Validate(); err != nil {
			db.opts.Logger.Warn("a table a pattern matches is left out", "table", t.Name, "err", err)
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// Table returns the configuration of one table enabled for d, or an error
// wrapping gapsync.ErrUnknownTable. It reads the table's sync_config row
// on every call (one lookup by primary key, and when no row names it the
// pattern rows, see patterns.go), so the gateway sees a change at its
// next request; a refusal is therefore never stale.
func (db *DB) Table(ctx context.Context, name string, d gapsync.Direction) (gapsync.Table, error) {
	if err := gapsync.ValidIdentifier(name); err != nil {
		return gapsync.Table{}, err
	}
	var rows []ConfigRow
	if err := db.bun.NewSelect().Model(&rows).Where("table_name = ?", name).Scan(ctx); err != nil {
		return gapsync.Table{}, fmt.Errorf("storage: read sync_config: %w", err)
	}
	var t gapsync.Table
	if len(rows) > 0 {
		t = rows[0].table()
	} else if p, ok, err := db.patternFor(ctx, name); err != nil {
		return gapsync.Table{}, err
	} else if ok {
		t = p
	} else {
		return gapsync.Table{}, fmt.Errorf("%w: %q is not in this side's sync_config", gapsync.ErrUnknownTable, name)
	}
	if !t.Allows(d) {
		state := "disabled"
		if t.Enabled {
			state = "enabled for " + string(t.Direction) + " only"
		}
		return gapsync.Table{}, fmt.Errorf("%w: %q is %s in this side's sync_config, not enabled for %s", gapsync.ErrUnknownTable, name, state, d)
	}
	if err := t.Validate(); err != nil {
		return gapsync.Table{}, fmt.Errorf("storage: sync_config row %q: %w", name, err)
	}
	return t, nil
}

// Config returns every sync_config row, enabled or not, by name.
func (db *DB) Config(ctx context.Context) ([]gapsync.Table, error) {
	var rows []ConfigRow
	if err := db.bun.NewSelect().Model(&rows).Order("table_name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_config: %w", err)
	}
	out := make([]gapsync.Table, len(rows))
	for i, r := range rows {
		out[i] = r.table()
	}
	return out, nil
}

// Disable sets enabled = 0 in table's sync_config row, so that it is no
// longer synced from this side (a mistyped -table, or a table retired).
// The row stays, for the record; Remove deletes it. It returns an error
// wrapping gapsync.ErrUnknownTable when there is no such row.
func (db *DB) Disable(ctx context.Context, table string) error {
	r, err := db.bun.NewUpdate().Model((*ConfigRow)(nil)).Set("enabled = ?", false).Set("updated_at = ?", time.Now().UTC()).
		Where("table_name = ?", table).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: disable %s: %w", table, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q is not in sync_config", gapsync.ErrUnknownTable, table)
	}
	db.meta.Clear()
	return nil
}

// Remove deletes table's sync_config row (and its parking, if any). The
// table itself, its sync_log and its ledgers are left alone. It returns an
// error wrapping gapsync.ErrUnknownTable when there is no such row.
func (db *DB) Remove(ctx context.Context, table string) error {
	r, err := db.bun.NewDelete().Model((*ConfigRow)(nil)).Where("table_name = ?", table).Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: remove %s: %w", table, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q is not in sync_config", gapsync.ErrUnknownTable, table)
	}
	if _, err := db.Resume(ctx, table); err != nil {
		return err
	}
	db.meta.Clear()
	return nil
}

// ParkedRow is a row of sync_parked (internet side): a table that the
// coordinator stopped syncing in one direction because its rows were
// refused for good, until an operator resumes it.
type ParkedRow struct {
	bun.BaseModel `bun:"table:sync_parked"`

	TableName string    `bun:"table_name,pk,type:varchar(64)"`
	Direction string    `bun:"direction,pk,type:varchar(8)"`
	Reason    string    `bun:"reason,type:text,notnull"`
	ParkedAt  time.Time `bun:"parked_at,type:datetime(6),notnull"`
}

// Park records that table is parked in direction d, with the reason. A
// table parked already keeps its first reason and time.
func (db *DB) Park(ctx context.Context, table string, d gapsync.Direction, reason string) error {
	if len(reason) > 4000 {
		reason = reason[:4000]
	}
	row := &ParkedRow{TableName: table, Direction: string(d), Reason: strings.ToValidUTF8(reason, "?"), ParkedAt: time.Now().UTC()}
	q := db.bun.NewInsert().Model(row)
	q = db.insertIgnore(q, "table_name", "direction")
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: park %s %s: %w", d, table, err)
	}
	return nil
}

// Parked lists the parked tables, by name and direction.
func (db *DB) Parked(ctx context.Context) ([]gapsync.Parked, error) {
	var rows []ParkedRow
	if err := db.bun.NewSelect().Model(&rows).Order("table_name", "direction").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_parked: %w", err)
	}
	out := make([]gapsync.Parked, len(rows))
	for i, r := range rows {
		out[i] = gapsync.Parked{Table: r.TableName, Direction: gapsync.Direction(r.Direction), Reason: r.Reason, Since: r.ParkedAt.UTC()}
	}
	return out, nil
}

// Resume un-parks table in every direction and reports how many
// directions were parked. The next cycle syncs it again from where its
// last successful run ended.
func (db *DB) Resume(ctx context.Context, table string) (int, error) {
	r, err := db.bun.NewDelete().Model((*ParkedRow)(nil)).Where("table_name = ?", table).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: resume %s: %w", table, err)
	}
	n, _ := r.RowsAffected()
	return int(n), nil
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
		Columns:      gapsync.SplitList(r.IncludeColumns),
		Exclude:      gapsync.SplitList(r.ExcludeColumns),
		Filter:       r.RowFilter,
		FilterAs:     r.FilterAs,
		RemoteName:   r.RemoteName,
		RemoteColumns: func() map[string]string {
			m, _ := gapsync.ParseColumnMap(r.RemoteColumns) // an edited row that does not parse maps nothing
			if len(m) == 0 {
				return nil
			}
			return m
		}(),
		Enabled: r.Enabled,
	}
}

// checkSelection refuses a column list or a row filter that names a
// column the table does not have, and a filter the database cannot run
// (tried once, reading no row). A table that does not exist yet is left
// to the reads.
func (db *DB) checkSelection(ctx context.Context, t gapsync.Table) error {
	if len(t.Columns) == 0 && len(t.Exclude) == 0 && t.Filter == "" {
		return nil
	}
	cols, err := db.readColumns(ctx, t.Name)
	if errors.Is(err, gapsync.ErrUnknownTable) {
		return nil
	}
	if err != nil {
		return err
	}
	named := append(append([]string{}, t.Columns...), t.Exclude...)
	if t.Filter != "" {
		f, err := gapsync.ParseFilter(t.Filter)
		if err != nil {
			return err
		}
		named = append(named, f.Columns()...)
	}
	for _, c := range named {
		if _, ok := findColumn(cols, c); !ok {
			return fmt.Errorf("%w: %s.%s (named in the column list or row filter)", gapsync.ErrUnknownColumn, t.Name, c)
		}
	}
	if w := db.filterSQL(t); w != "" {
		rows, err := db.sql.QueryContext(ctx, "SELECT 1 FROM "+db.d.Quote(t.Name)+" WHERE 1 = 0 AND ("+w+")")
		if err != nil {
			return fmt.Errorf("%w: table %s: the database refuses the row filter %q: %v", gapsync.ErrBadFilter, t.Name, t.Filter, err)
		}
		rows.Close()
	}
	return nil
}

// filterSQL is t's row filter for this database; "" when it has none (or
// one that does not parse, which Validate refuses before).
func (db *DB) filterSQL(t gapsync.Table) string {
	if t.Filter == "" {
		return ""
	}
	f, err := gapsync.ParseFilter(t.Filter)
	if err != nil {
		return ""
	}
	return f.SQL(db.d.Quote)
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
	if _, err := cursorKindOf(db.d, cur.Type); err != nil {
		return fmt.Errorf("storage: configure %s: cursor %s: %w", t.Name, t.Cursor, err)
	}
	return nil
}
