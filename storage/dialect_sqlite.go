package storage

import (
	"strconv"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/rules"
)

// sqliteDialect is SQLite, the embedded default. Write transactions begin
// IMMEDIATE (OpenSQLite), so a transaction that writes holds the whole
// database until it commits.
type sqliteDialect struct{}

var _ dialect = sqliteDialect{}

func (sqliteDialect) Name() string { return "sqlite" }

func (sqliteDialect) Quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// SelectExpr uses unary plus, which SQLite defines as a no-op on every
// value (integers, reals, text, blobs, NULL). It hides the declared type
// from the driver, which would otherwise turn DATE/DATETIME text into
// time.Time and lose the stored form.
func (d sqliteDialect) SelectExpr(col, _ string) string {
	q := d.Quote(col)
	return "+" + q + " AS " + q
}

func (d sqliteDialect) Upsert(table string, cols, key []string, rows int) string {
	return upsert(d, table, cols, key, rows)
}

func (d sqliteDialect) onConflict(key, update []string) string {
	return excludedConflict(d, key, update)
}

// excludedConflict is the ON CONFLICT clause of SQLite and PostgreSQL.
func excludedConflict(d dialect, key, update []string) string {
	var b strings.Builder
	b.WriteString("ON CONFLICT (")
	for i, k := range key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(k))
	}
	b.WriteString(") DO ")
	if len(update) == 0 {
		b.WriteString("NOTHING")
		return b.String()
	}
	b.WriteString("UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteByte(',')
		}
		q := d.Quote(c)
		b.WriteString(q + "=excluded." + q)
	}
	return b.String()
}

func (sqliteDialect) Columns() string {
	return "SELECT name, type, pk > 0, 0 FROM pragma_table_info(?) ORDER BY cid" // generated columns are hidden from table_info
}

func (sqliteDialect) placeholderLimit() int { return 32766 }

// lockRows: write transactions begin IMMEDIATE (OpenSQLite), so no other
// writer runs until the commit.
func (sqliteDialect) lockRows() string { return "" }

// rowValueList: SQLite wants a row-value IN's list as a subquery.
func (sqliteDialect) rowValueList() string { return "VALUES " }

func (d sqliteDialect) createIndex(name, table, cols string) string {
	return "CREATE INDEX IF NOT EXISTS " + d.Quote(name) + " ON " + d.Quote(table) + " (" + cols + ")"
}

// tableDDL: SQLite takes MySQL's type names as they are (its type
// affinity rules read DATETIME(6) as NUMERIC, LONGBLOB as BLOB).
func (sqliteDialect) tableDDL(create string) string { return create }

// cursorKind: SQLite's own rule for integer affinity, and the declared
// names of the time form gapsync writes.
func (sqliteDialect) cursorKind(typ string) (cursorKind, bool) {
	t := strings.ToLower(strings.TrimSpace(typ))
	switch {
	case strings.Contains(t, "int"):
		return kindInteger, true
	case strings.Contains(t, "datetime"), strings.Contains(t, "timestamp"):
		return kindTime, true
	}
	return 0, false
}

// clock: SQLite's clock is UTC, in milliseconds.
func (sqliteDialect) clock(string, bool) string {
	return "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
}

func (sqliteDialect) openWriters() string { return "" }

func (sqliteDialect) writersCached() string { return "" }

func (sqliteDialect) writerReport() (string, string) { return "", "" }

func (sqliteDialect) parseWriters(string) ([]openTrx, error) { return nil, nil }

func (sqliteDialect) clockInWriteTx() bool { return true }

// effects: a trigger of any event but gapsync's own (an AFTER trigger may
// update the row it fired for), and the hidden columns pragma_table_xinfo
// marks generated (2 virtual, 3 stored).
func (sqliteDialect) effects(table string, own []string) Query {
	return Query{SQL: "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name NOT IN (" + marks(len(own)) + ")), 0, " +
		"(SELECT COUNT(*) FROM pragma_table_xinfo(?) WHERE hidden IN (2,3))",
		Args: append(append([]any{table}, strAnys(own)...), table)}
}

func (sqliteDialect) acquireLease(ttl time.Duration) string {
	secs := strconv.FormatFloat(ttl.Seconds(), 'f', 6, 64)
	return "INSERT INTO sync_lease (name, holder, expires_at) VALUES (?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now', '+" + secs + " seconds')) " +
		"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at " +
		"WHERE sync_lease.expires_at < strftime('%Y-%m-%d %H:%M:%f', 'now') OR sync_lease.holder = excluded.holder"
}

// widenLog: SQLite does not enforce a VARCHAR's length.
func (sqliteDialect) widenLog() (read, alter string) { return "", "" }

func (sqliteDialect) flavorQuery() string { return "" }

func (sqliteDialect) flavor(string) string { return flavorSQLite }

func (sqliteDialect) triggers() string {
	return "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name IN (?, ?)"
}

func (d sqliteDialect) dropTrigger(name, _ string) string {
	return "DROP TRIGGER IF EXISTS " + d.Quote(name)
}

// tombstoneSQL: the deletion time is TEXT in SQLite's UTC clock form; the
// stored form compared is the whole CREATE TRIGGER statement.
func (d sqliteDialect) tombstoneSQL(t gapsync.Table, cols []column, kind cursorKind) ([]string, triggerDef) {
	s := tombstoneParts(d, t, cols, kind)
	setup := []string{
		"CREATE TABLE IF NOT EXISTS " + s.qtt + " (" + strings.Join(s.defs, ", ") + ", " + s.at + " TEXT NOT NULL" + s.extraDef +
			", PRIMARY KEY (" + s.keyList + "))",
		"CREATE INDEX IF NOT EXISTS " + d.Quote(s.tt+"_at") + " ON " + s.qtt + " (" + s.at + ")",
	}
	for i, n := range s.def.names {
		s.def.create[i] = "TRIGGER " + d.Quote(n) + " AFTER DELETE ON " + d.Quote(t.Name) + " BEGIN " +
			s.insert("strftime('%Y-%m-%d %H:%M:%f', 'now')") + " ON CONFLICT (" + s.keyList + ") DO UPDATE SET " + s.excludedSet() + ";" + tombstoneMark + " END"
		s.def.stored[i] = "CREATE " + s.def.create[i]
	}
	return setup, s.def
}

func (sqliteDialect) maxIdentifier() int { return 1 << 10 }

// writeValue: SQLite stores what it is given (its affinity rules decide
// the storage class).
func (sqliteDialect) writeValue(_ colSpec, v any) (any, error) { return v, nil }

// defaultTimePrecision: SQLite keeps a time's text as written.
func (sqliteDialect) defaultTimePrecision() int { return 1 << 10 }

// valueClass follows SQLite's affinity rules, in their order.
func (sqliteDialect) valueClass(typ string) valueClass {
	switch {
	case strings.Contains(typ, "int"):
		return classInt
	case strings.Contains(typ, "char"), strings.Contains(typ, "clob"), strings.Contains(typ, "text"):
		return classText
	case typ == "" || strings.Contains(typ, "blob"):
		return classAny
	case strings.Contains(typ, "real"), strings.Contains(typ, "floa"), strings.Contains(typ, "doub"):
		return classReal
	}
	return classInt // NUMERIC affinity keeps what is not an integral number as given
}

func (sqliteDialect) writerSlack() time.Duration { return 0 }

// defaultDecimalScale: SQLite keeps a NUMERIC's text or number as given.
func (sqliteDialect) defaultDecimalScale() int { return -1 }

func (sqliteDialect) insertValuesWord() string { return "VALUES" }

// analyze: InnoDB and SQLite plan these lookups by the primary key without statistics.
func (sqliteDialect) analyze(string) string { return "" }

func (sqliteDialect) param(string) string { return "?" }

func (d sqliteDialect) liveColumns(table string) (Query, bool) {
	return Query{SQL: "SELECT * FROM " + d.Quote(table) + " WHERE 1 = 0"}, false
}

// verifyClass reads the declared type as SQLite's affinity rules would,
// for the two classes that matter: every floating type is eight bytes.
func (sqliteDialect) verifyClass(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.HasPrefix(t, "datetime"), strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "time"), t == "date":
		return rules.ClassTime
	case strings.Contains(t, "real"), strings.Contains(t, "floa"), strings.Contains(t, "doub"):
		return rules.ClassFloat64
	}
	return ""
}

// running: an embedded database has no server to ask; its load is the
// latency of a trivial statement alone.
func (sqliteDialect) running() string { return "" }

// The queries that describe a table for the setup check (shape.go).

func (sqliteDialect) identQuote() string { return `"` }

// alterType: SQLite cannot change a column's type in place.
func (sqliteDialect) alterType() string {
	return "ALTER TABLE %s ... (SQLite cannot retype a column: rebuild the table with %s as %s)"
}

func (sqliteDialect) shapeColumns(table string) Query {
	return Query{SQL: `SELECT name, type, '', "notnull" = 0 FROM pragma_table_info(?) ORDER BY cid`, Args: []any{table}}
}

func (sqliteDialect) shapeCollation(string) Query { return Query{} }

// The primary key comes from table_info (an INTEGER PRIMARY KEY is the
// rowid and has no index of its own); the automatic index SQLite makes
// for another primary key is left out as a duplicate of it.
func (sqliteDialect) shapeIndexes(table string) Query {
	return Query{SQL: `SELECT 'PRIMARY', 1, 1, name, pk FROM pragma_table_info(?) WHERE pk > 0 ` +
		`UNION ALL SELECT il.name, il."unique", 0, ii.name, ii.seqno FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii ` +
		`WHERE il.origin <> 'pk' ORDER BY 1, 5`, Args: []any{table, table}}
}

// columnsOf is Columns for n tables at once, the table's name first: the
// names compare without case, as pragma_table_info finds a table.
func (sqliteDialect) columnsOf(n int) string {
	return "SELECT m.name, p.name, p.type, p.pk > 0, 0 FROM sqlite_master AS m, pragma_table_info(m.name) AS p " +
		"WHERE m.type = 'table' AND m.name COLLATE NOCASE IN (" + placeholders(n) + ") ORDER BY m.name, p.cid"
}

func (sqliteDialect) listTables() string {
	return "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
}
