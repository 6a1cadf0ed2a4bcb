package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
)

// TombstoneTable names the table that records hard deletes of table:
// "gst_" + table. Tables longer than 60 characters cannot have one.
func TombstoneTable(table string) string { return "gst_" + table }

const tombstoneAt = "deleted_at"

// TombstoneDDL returns the statements that let hard deletes of t travel:
// a tombstone table holding t's key columns and the deletion time, and an
// AFTER DELETE trigger on t that fills it. They are idempotent: run them
// again after changing t's key. Review them, then run them yourself or
// through InstallTombstones, on every side where rows of t are deleted.
//
// The deletion time is taken from the same clock as the window bound of
// t's cursor column, so a deletion falls into the window of its moment.
func (db *DB) TombstoneDDL(ctx context.Context, t gapsync.Table) ([]string, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	tt := TombstoneTable(t.Name)
	if err := gapsync.ValidIdentifier(tt); err != nil {
		return nil, fmt.Errorf("storage: table %s is too long for a tombstone table: %w", t.Name, err)
	}
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	if err := checkTable(t, cols); err != nil {
		return nil, err
	}
	d := db.d
	var defs, keys, olds []string
	for _, k := range t.Key {
		c, _ := findColumn(cols, k)
		defs = append(defs, d.Quote(k)+" "+c.Type+" NOT NULL")
		keys = append(keys, d.Quote(k))
		olds = append(olds, "OLD."+d.Quote(k))
	}
	keyList := strings.Join(keys, ", ")
	trig := d.Quote(tt + "_ad")
	at := d.Quote(tombstoneAt)
	if d.Name() == "mysql" {
		cur, _ := findColumn(cols, t.Cursor)
		atType, now := "DATETIME(6)", "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)"
		if strings.HasPrefix(strings.ToLower(cur.Type), "timestamp") {
			atType, now = "TIMESTAMP(6)", "NOW(6)"
		}
		return []string{
			"CREATE TABLE IF NOT EXISTS " + d.Quote(tt) + " (" + strings.Join(defs, ", ") + ", " + at + " " + atType +
				" NOT NULL, PRIMARY KEY (" + keyList + "), KEY " + d.Quote(tt+"_at") + " (" + at + ")) ENGINE=InnoDB",
			"DROP TRIGGER IF EXISTS " + trig,
			"CREATE TRIGGER " + trig + " AFTER DELETE ON " + d.Quote(t.Name) + " FOR EACH ROW INSERT INTO " + d.Quote(tt) +
				" (" + keyList + ", " + at + ") VALUES (" + strings.Join(olds, ", ") + ", " + now + ") ON DUPLICATE KEY UPDATE " +
				at + " = VALUES(" + at + ")",
		}, nil
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + d.Quote(tt) + " (" + strings.Join(defs, ", ") + ", " + at + " TEXT NOT NULL, PRIMARY KEY (" + keyList + "))",
		"CREATE INDEX IF NOT EXISTS " + d.Quote(tt+"_at") + " ON " + d.Quote(tt) + " (" + at + ")",
		"DROP TRIGGER IF EXISTS " + trig,
		"CREATE TRIGGER " + trig + " AFTER DELETE ON " + d.Quote(t.Name) + " BEGIN INSERT INTO " + d.Quote(tt) +
			" (" + keyList + ", " + at + ") VALUES (" + strings.Join(olds, ", ") + ", strftime('%Y-%m-%d %H:%M:%f', 'now')) ON CONFLICT (" +
			keyList + ") DO UPDATE SET " + at + " = excluded." + at + "; END",
	}, nil
}

// InstallTombstones runs TombstoneDDL for t. It needs the TRIGGER
// privilege on MySQL/MariaDB (and SUPER, or log_bin_trust_function_creators,
// where binary logging is on).
func (db *DB) InstallTombstones(ctx context.Context, t gapsync.Table) error {
	stmts, err := db.TombstoneDDL(ctx, t)
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := db.sql.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storage: install tombstones for %s: %w", t.Name, err)
		}
	}
	db.meta.Clear()
	return nil
}

// hasTombstones reports whether t has a tombstone table.
func (db *DB) hasTombstones(ctx context.Context, table string) (bool, error) {
	_, err := db.columns(ctx, TombstoneTable(table))
	if errors.Is(err, gapsync.ErrUnknownTable) {
		return false, nil
	}
	return err == nil, err
}
