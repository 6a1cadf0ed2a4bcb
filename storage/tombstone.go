package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
)

// TombstoneTable names the table that records hard deletes of table:
// "gst_" + table. Tables longer than 56 characters cannot have one (the
// trigger names must fit in 64).
func TombstoneTable(table string) string { return "gst_" + table }

const tombstoneAt = "deleted_at"

// tombstoneCursor is the column of a tombstone of a table with an integer
// cursor that keeps the deleted row's last cursor value.
const tombstoneCursor = "deleted_cursor"

// tombstoneMark is appended to the trigger body; tests change it to make
// a reinstall find a different definition.
var tombstoneMark = ""

// Trigger flavours: what an install may do without a moment with no
// trigger.
const (
	flavorMariaDB = "mariadb"  // CREATE OR REPLACE TRIGGER
	flavorMySQL   = "mysql"    // several triggers per event: create the new one, then drop the old
	flavorSQLite  = "sqlite"   // DDL is transactional
	flavorPG      = "postgres" // DDL is transactional; a trigger calls a function
)

// tombstoneDialect is what differs by engine in the tombstone tables and
// their triggers.
type tombstoneDialect interface {
	// tombstoneSQL builds the tombstone table statements and the trigger
	// definition for t.
	tombstoneSQL(t gapsync.Table, cols []column, kind cursorKind) ([]string, triggerDef)
	// flavorQuery reads the server's version, for flavor; "" when the
	// dialect has one flavour only.
	flavorQuery() string
	// flavor is the trigger flavour of a server with this version.
	flavor(version string) string
	// triggers reads the stored form of a table's triggers (arguments:
	// table, two trigger names): name and stored form.
	triggers() string
	dropTrigger(name, table string) string
	// maxIdentifier is the longest name the engine keeps whole, in bytes.
	maxIdentifier() int
}

// tombstonePlan is what an install runs: setup (the tombstone table,
// idempotent) and the trigger statements, which on SQLite run in one
// transaction.
type tombstonePlan struct {
	setup   []string
	trigger []string
	inTx    bool
	begin   string // how a transaction starts, for TombstoneDDL
}

// triggerDef is the trigger a table should have: names (the one to use
// and its alternate, for engines that replace by creating a second one)
// and, per name, the full CREATE statement, plus the stored form an
// existing trigger is compared with (the body on MySQL, whose
// information_schema keeps the statement after FOR EACH ROW; the whole
// statement on SQLite).
type triggerDef struct {
	table  string // the table the triggers are on
	fn     string // PostgreSQL: the trigger function, without CREATE OR REPLACE
	names  [2]string
	create [2]string
	stored [2]string
}

// TombstoneDDL returns the statements that let hard deletes of t travel:
// a tombstone table holding t's key columns and the deletion time, and an
// AFTER DELETE trigger on t that fills it. They are what InstallTombstones
// would run now: when t already has the same trigger, only the idempotent
// table statements. Review them, then run them yourself, in order, or
// through InstallTombstones, on every side where rows of t are deleted.
// A changed trigger is replaced without a moment when deletes go
// unrecorded: CREATE OR REPLACE TRIGGER on MariaDB, a second trigger
// created before the first is dropped on MySQL (both record a delete in
// between; the tombstone is an upsert), one transaction on SQLite (the
// statements are wrapped in BEGIN IMMEDIATE … COMMIT).
//
// The deletion time is taken from the same clock as the window bound of
// t's cursor column, so a deletion falls into the window of its moment.
//
// For a table with an integer cursor the deletions have a window of their
// own, by time: the tombstone's deletion time is the database's UTC clock
// (DATETIME(6) on MySQL/MariaDB), and its bound is taken like a time
// cursor's (the lag, and the open-writer guard), independent of the
// integer window of the live rows (see gapsync.Window). The tombstone
// also keeps the deleted row's last cursor value (column deleted_cursor),
// which is the deletion's cursor when it travels: the version ledger
// hashes it, and newest-wins compares it with the other side's cursor. So
// a delete loses to a change the deleting side had not seen (a greater
// cursor; the row comes back on both sides, nothing is lost) and wins
// over an older one, exactly as two changes of the row would settle.
func (db *DB) TombstoneDDL(ctx context.Context, t gapsync.Table) ([]string, error) {
	p, err := db.tombstonePlan(ctx, t)
	if err != nil {
		return nil, err
	}
	out := append([]string{}, p.setup...)
	if len(p.trigger) > 0 && p.inTx {
		out = append(out, p.begin)
		out = append(out, p.trigger...)
		return append(out, "COMMIT"), nil
	}
	return append(out, p.trigger...), nil
}

// InstallTombstones brings t's tombstone table and trigger to the current
// definition (see TombstoneDDL). It leaves a trigger that is already
// current alone, so it is cheap and safe to run at every start while
// rows are being deleted. It needs the TRIGGER privilege on MySQL/MariaDB
// (and SUPER, or log_bin_trust_function_creators, where binary logging is
// on).
func (db *DB) InstallTombstones(ctx context.Context, t gapsync.Table) error {
	p, err := db.tombstonePlan(ctx, t)
	if err != nil {
		return err
	}
	defer db.meta.Clear()
	for _, q := range p.setup {
		if _, err := db.sql.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storage: install tombstones for %s: %w", t.Name, err)
		}
	}
	if len(p.trigger) == 0 {
		return nil
	}
	if !p.inTx {
		for _, q := range p.trigger {
			if _, err := db.sql.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("storage: install tombstone trigger for %s: %w", t.Name, err)
			}
		}
		return nil
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: install tombstone trigger for %s: %w", t.Name, err)
	}
	defer tx.Rollback()
	for _, q := range p.trigger {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storage: install tombstone trigger for %s: %w", t.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage: install tombstone trigger for %s: %w", t.Name, err)
	}
	return nil
}

// tombstonePlan reads t's shape and its current triggers and returns
// what must run.
func (db *DB) tombstonePlan(ctx context.Context, t gapsync.Table) (tombstonePlan, error) {
	if err := t.Validate(); err != nil {
		return tombstonePlan{}, err
	}
	tt := TombstoneTable(t.Name)
	for _, n := range []string{tt, tt + "_ad2"} {
		if err := gapsync.ValidIdentifier(n); err != nil {
			return tombstonePlan{}, fmt.Errorf("storage: table %s is too long for a tombstone table and trigger: %w", t.Name, err)
		}
		if len(n) > db.d.maxIdentifier() {
			return tombstonePlan{}, fmt.Errorf("%w: table %s is too long for a tombstone table and trigger on %s: %s has %d bytes, the most is %d",
				gapsync.ErrMalformed, t.Name, db.d.Name(), n, len(n), db.d.maxIdentifier())
		}
	}
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return tombstonePlan{}, err
	}
	if err := checkTable(t, cols); err != nil {
		return tombstonePlan{}, err
	}
	cur, _ := findColumn(cols, t.Cursor)
	kind, err := cursorKindOf(db.d, cur.Type)
	if err != nil {
		return tombstonePlan{}, fmt.Errorf("storage: table %s: %w", t.Name, err)
	}
	setup, def := db.d.tombstoneSQL(t, cols, kind)
	if kind == kindInteger {
		// A tombstone table made while the cursor had another type lacks
		// the last cursor column: add it before the trigger names it.
		if tcols, err := db.readColumns(ctx, tt); err == nil {
			if _, ok := findColumn(tcols, tombstoneCursor); !ok {
				setup = append(setup, "ALTER TABLE "+db.d.Quote(tt)+" ADD COLUMN "+db.d.Quote(tombstoneCursor)+" "+cur.Type+" NULL")
			}
		} else if !errors.Is(err, gapsync.ErrUnknownTable) {
			return tombstonePlan{}, err
		}
	}
	flavor := db.d.flavor("")
	if q := db.d.flavorQuery(); q != "" {
		var v string
		if err := db.sql.QueryRowContext(ctx, q).Scan(&v); err != nil {
			return tombstonePlan{}, fmt.Errorf("storage: read server version: %w", err)
		}
		flavor = db.d.flavor(v)
	}
	existing, err := db.triggers(ctx, t.Name, def.names)
	if err != nil {
		return tombstonePlan{}, err
	}
	p := tombstonePlan{setup: setup, trigger: triggerSteps(db.d, flavor, def, existing)}
	switch flavor {
	case flavorSQLite:
		p.inTx, p.begin = true, "BEGIN IMMEDIATE"
	case flavorPG:
		p.inTx, p.begin = true, "BEGIN"
	}
	return p, nil
}

// tombParts are the pieces of a tombstone table and trigger that every
// dialect's tombstoneSQL shares.
type tombParts struct {
	tt       string // the tombstone table, unquoted
	qtt      string // and quoted
	cur      column // the cursor column
	defs     []string
	keyList  string // the quoted key columns, comma separated
	olds     []string
	at       string // the quoted deletion-time column
	dc       string // the quoted last-cursor column, for an integer cursor; else ""
	extraDef string // its definition, with a leading comma, or ""
	def      triggerDef
}

func tombstoneParts(d dialect, t gapsync.Table, cols []column, kind cursorKind) tombParts {
	s := tombParts{tt: TombstoneTable(t.Name), at: d.Quote(tombstoneAt)}
	s.qtt = d.Quote(s.tt)
	var keys []string
	for _, k := range t.Key {
		c, _ := findColumn(cols, k)
		s.defs = append(s.defs, d.Quote(k)+" "+c.Type+" NOT NULL")
		keys = append(keys, d.Quote(k))
		s.olds = append(s.olds, "OLD."+d.Quote(k))
	}
	s.keyList = strings.Join(keys, ", ")
	s.cur, _ = findColumn(cols, t.Cursor)
	// With an integer cursor the tombstone keeps the row's last cursor.
	if kind == kindInteger {
		s.dc = d.Quote(tombstoneCursor)
		s.extraDef = ", " + s.dc + " " + s.cur.Type + " NULL"
		s.olds = append(s.olds, "OLD."+d.Quote(t.Cursor))
	}
	s.def = triggerDef{table: t.Name, names: [2]string{s.tt + "_ad", s.tt + "_ad2"}}
	return s
}

// insert is the trigger's INSERT of the deleted row's key, the deletion
// time now, and for an integer cursor the row's last cursor value.
func (s tombParts) insert(now string) string {
	cols, vals := s.keyList+", "+s.at, strings.Join(s.olds[:len(s.defs)], ", ")+", "+now
	if s.dc != "" {
		cols += ", " + s.dc
		vals += ", " + s.olds[len(s.olds)-1]
	}
	return "INSERT INTO " + s.qtt + " (" + cols + ") VALUES (" + vals + ")"
}

// excludedSet is the ON CONFLICT … DO UPDATE SET list of SQLite and
// PostgreSQL.
func (s tombParts) excludedSet() string {
	set := s.at + " = excluded." + s.at
	if s.dc != "" {
		set += ", " + s.dc + " = excluded." + s.dc
	}
	return set
}

// triggerSteps returns the statements that take a table from its existing
// tombstone triggers (name → stored form) to def, with a trigger in place
// at every moment; none when it is current. It is pure.
func triggerSteps(d dialect, flavor string, def triggerDef, existing map[string]string) []string {
	n0, n1 := def.names[0], def.names[1]
	b0, has0 := existing[n0]
	b1, has1 := existing[n1]
	drop := func(n string) string { return d.dropTrigger(n, def.table) }
	switch flavor {
	case flavorMariaDB:
		if has0 && b0 == def.stored[0] && !has1 {
			return nil
		}
		out := []string{"CREATE OR REPLACE " + def.create[0]}
		if has1 {
			out = append(out, drop(n1))
		}
		return out
	case flavorMySQL:
		switch {
		case has0 && b0 == def.stored[0]:
			if has1 {
				return []string{drop(n1)}
			}
			return nil
		case has1 && b1 == def.stored[1]:
			if has0 {
				return []string{drop(n0)}
			}
			return nil
		case has0 && has1: // both stale: n0 records deletes while n1 is redone
			return []string{drop(n1), "CREATE " + def.create[1], drop(n0)}
		case has0:
			return []string{"CREATE " + def.create[1], drop(n0)}
		case has1:
			return []string{"CREATE " + def.create[0], drop(n1)}
		}
		return []string{"CREATE " + def.create[0]}
	case flavorPG: // in one transaction: the function, then the trigger that calls it
		if has0 && b0 == def.stored[0] && !has1 {
			return nil
		}
		// DROP and CREATE in the one transaction: no other session sees
		// the table without its trigger, and no CREATE OR REPLACE TRIGGER
		// (PostgreSQL 14) is needed.
		out := []string{"CREATE OR REPLACE " + def.fn, drop(n0), "CREATE " + def.create[0]}
		if has1 {
			out = append(out, drop(n1))
		}
		return out
	default: // SQLite, in one transaction
		if has0 && b0 == def.stored[0] && !has1 {
			return nil
		}
		return []string{drop(n0), drop(n1), "CREATE " + def.create[0]}
	}
}

// triggers returns the stored form of t's triggers named in names.
func (db *DB) triggers(ctx context.Context, table string, names [2]string) (map[string]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.triggers(), table, names[0], names[1])
	if err != nil {
		return nil, fmt.Errorf("storage: read triggers of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n string
		var body sql.NullString
		if err := rows.Scan(&n, &body); err != nil {
			return nil, fmt.Errorf("storage: read triggers of %s: %w", table, err)
		}
		out[n] = strings.TrimSpace(body.String)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: read triggers of %s: %w", table, err)
	}
	return out, nil
}

// hasTombstones reports whether t has a tombstone table.
func (db *DB) hasTombstones(ctx context.Context, table string) (bool, error) {
	_, err := db.columns(ctx, TombstoneTable(table))
	if errors.Is(err, gapsync.ErrUnknownTable) {
		return false, nil
	}
	return err == nil, err
}
