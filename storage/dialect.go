package storage

import (
	"strconv"
	"strings"
	"time"
)

// Query is one SQL statement with its arguments. SQL building is pure: a
// dialect turns names and sizes into a Query without touching a database,
// so the generated text is unit-tested per dialect (dialect_test.go).
type Query struct {
	SQL  string
	Args []any
}

// dialect is everything that differs between engines: identifier quoting,
// how a value is read back exactly, the upsert and conflict clauses, the
// catalogue and clock queries, and the tombstone triggers. Each engine has
// its own file (dialect_mysql.go, dialect_sqlite.go, dialect_postgres.go)
// and every method is pure: it builds text and touches no database, so the
// generated SQL is unit-tested per dialect without a server. Every
// identifier passed in has already been checked by gapsync.ValidIdentifier;
// quoting is a second line of defence, not the first.
//
// Statements use ? for their parameters on every engine; a PostgreSQL
// connection numbers them ($1, $2, …) on its way to the server (pgconn.go).
type dialect interface {
	Name() string
	Quote(ident string) string
	// SelectExpr is how column col, of declared type typ ("" when not
	// known), is read so that its value comes back exactly as stored.
	SelectExpr(col, typ string) string
	// Upsert inserts rows or updates them by primary key.
	Upsert(table string, cols, key []string, rows int) string
	// insertValuesWord is what stands between an INSERT's column list and
	// its rows: "VALUES", or PostgreSQL's "OVERRIDING SYSTEM VALUE VALUES",
	// which lets the key of a GENERATED ALWAYS AS IDENTITY column arrive
	// as it is on the other side.
	insertValuesWord() string
	// onConflict ends an INSERT: on a duplicate of key, set each column of
	// update to the value the INSERT carried; with no update columns a
	// duplicate inserts nothing and is no error. It starts with "ON ".
	onConflict(key, update []string) string
	// Columns lists a table's columns: name, type, whether each is in
	// the primary key, and whether it is generated (its value computed
	// from other columns, so never written). Its single argument is the
	// table name.
	Columns() string
	// liveColumns reads the names of table's columns as they are now,
	// cheaply: from the result columns of a query that returns no row
	// (byRows false), or as the rows of a catalogue query (byRows true,
	// where a cached prepared "SELECT *" would fail once after an ALTER:
	// PostgreSQL's "cached plan must not change result type").
	liveColumns(table string) (q Query, byRows bool)
	// placeholderLimit is the most bound parameters one statement may carry.
	placeholderLimit() int
	// lockRows ends a SELECT inside a transaction so that the rows it
	// reads stay as read until the commit ("" where the transaction holds
	// the whole database already).
	lockRows() string
	// rowValueList opens the list of a multi-column IN: "" or "VALUES ".
	rowValueList() string
	// createIndex creates an index unless it exists (or a duplicate-name
	// error tells that it does, see isDuplicateIndex).
	createIndex(name, table, cols string) string
	// tableDDL adapts the CREATE TABLE bun writes for a metadata model
	// (whose column types are MySQL's) to this engine.
	tableDDL(create string) string
	// cursorKind tells a cursor's kind from its declared type; false when
	// the type cannot be a cursor.
	cursorKind(typ string) (cursorKind, bool)
	// clock reads the database clock as "2006-01-02 15:04:05.000000": in
	// UTC when utc is set, else in the zone the cursor column's type
	// (cursorType) is written in.
	clock(cursorType string, utc bool) string
	// openWriters returns one row of two columns: the age in
	// microseconds of the oldest open transaction that has written rows
	// in this database (-1 for none, -2 when other sessions'
	// transactions are hidden from this role), and whether the view it
	// read is known to be newer than the transaction it runs in (true
	// where the view is live); its one argument is the oldest age, in
	// seconds, to count. "" when the engine cannot tell (the window then
	// rests on the lag alone).
	openWriters() string
	// writersCached returns, where openWriters reads a cache that a read
	// refreshes only after it went unread for a while (InnoDB's
	// INNODB_TRX), the statement that puts the querying transaction into
	// the view (a read of a table), so that openWriters can look for it;
	// "" where the view is live.
	writersCached() string
	// writerReport returns a statement whose first row's last column is
	// the engine's own report of its open transactions (parseWriters
	// reads it), and one that lists the ids of the connections that may
	// write this database's tables, this one left out; "" where the
	// engine has none. Used in place of openWriters where the isolation
	// device passes it.
	writerReport() (report, conns string)
	// parseWriters reads writerReport's report; errReportCut when it
	// does not list every transaction.
	parseWriters(report string) ([]openTrx, error)
	// param is the placeholder for a value compared with a column of
	// declared type typ ("" when not known): "?", or an expression that
	// reads the value in the form SelectExpr gives it (PostgreSQL: a
	// timestamptz as UTC wall time).
	param(typ string) string
	// analyze refreshes the planner's statistics of table ("" where the
	// engine needs no help; see analyze.go).
	analyze(table string) string
	// running counts the statements running on the server now, this one
	// included, as one row of two columns: what is counted and the count.
	// "" where the engine cannot tell (the load is then latency only).
	running() string
	// writerSlack is added to an open writer's age: the resolution of
	// the start time openWriters reads.
	writerSlack() time.Duration
	// clockInWriteTx: read the clock for deletions inside a write
	// transaction, which waits for every other writer (SQLite).
	clockInWriteTx() bool
	// effects returns one row of three counts for table: INSERT or UPDATE
	// triggers other than own, columns with an ON UPDATE clause, and
	// generated columns.
	effects(table string, own []string) Query
	// acquireLease takes or renews the lease row (arguments: name,
	// holder) for ttl, on the database clock, unless another holder's
	// lease is live.
	acquireLease(ttl time.Duration) string
	// widenLog returns a query for the width of sync_log's window columns
	// and the statement that widens them to 63; "" where the engine does
	// not enforce a VARCHAR's length or never had the narrow form.
	widenLog() (read, alter string)
	// writeValue returns v, a value read by any engine, in the form this
	// engine writes into a column of spec s; an error when no exact form
	// exists. v is not nil.
	writeValue(s colSpec, v any) (any, error)
	// valueClass is which Go values a column of declared type typ (lower
	// case) gives back as they were written (see readBackPlan).
	valueClass(typ string) valueClass
	// defaultDecimalScale is the scale of a DECIMAL declared without one
	// (-1: any scale is kept).
	defaultDecimalScale() int
	// defaultTimePrecision is the fraction digits of a time type declared
	// without a precision.
	defaultTimePrecision() int
	// verifyClass is the rules class (rules.ClassTime, …) of a column of
	// declared type typ, as the dialect reports it: what a verification's
	// canonical form of its values needs to know ("" for none).
	verifyClass(typ string) string
	tombstoneDialect
	shapeDialect
	boundsDialect
}

// upsert is a multi-row INSERT ending in the dialect's conflict clause
// that updates every column but the key.
func upsert(d dialect, table string, cols, key []string, rows int) string {
	var b strings.Builder
	insertValues(&b, d, table, cols, rows, d.insertValuesWord())
	b.WriteByte(' ')
	b.WriteString(d.onConflict(key, nonKey(cols, key)))
	return b.String()
}

// quotedList is cols quoted, comma-separated.
func quotedList(d dialect, cols []string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(c))
	}
	return b.String()
}

func insertValues(b *strings.Builder, d dialect, table string, cols []string, rows int, values string) {
	b.WriteString("INSERT INTO ")
	b.WriteString(d.Quote(table))
	b.WriteString(" (" + quotedList(d, cols) + ") " + values + " ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
}

// pageQuery describes one page of a change scan.
type pageQuery struct {
	table     string
	cols      []string // selected columns
	types     []string // their declared types, where known (see dialect.SelectExpr)
	cursor    string
	key       []string
	from, to  string
	after     []any // order values of the previous page's last row; nil for the first page
	limit     int
	extra     string // an additional condition, ANDed (already quoted)
	extraArgs []any  // the arguments of extra
	num       bool   // the bounds are integers: bind them as numbers
	// flag, when set, is a condition (already rendered and quoted) read
	// as one more column after cols: 1 where a row meets it, else 0.
	flag string
}

// bareTexter is an engine whose driver sends a query without arguments
// in another form than one with them (MySQL's text protocol against its
// binary one), which reads some values less exactly: bareReadsAsText
// reports whether readPage must prepare such a query.
type bareTexter interface{ bareReadsAsText() bool }

// selectPage builds one page of a change scan: the rows of table whose
// cursor lies in the window, in keyset order, after the last row of the
// previous page.
//
// The initial load (from == "") walks the primary key, which is the
// clustered order in InnoDB, and also takes rows whose cursor is NULL.
// Later windows walk (cursor, key), which an index on the cursor column
// serves without a sort: InnoDB secondary indexes carry the primary key.
func selectPage(d dialect, p pageQuery) Query {
	var b strings.Builder
	var args []any
	b.WriteString("SELECT ")
	for i, c := range p.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		typ := ""
		if i < len(p.types) {
			typ = p.types[i]
		}
		b.WriteString(d.SelectExpr(c, typ))
	}
	if p.flag != "" {
		b.WriteString(",CASE WHEN (" + p.flag + ") THEN 1 ELSE 0 END")
	}
	b.WriteString(" FROM ")
	b.WriteString(d.Quote(p.table))
	qc := d.Quote(p.cursor)
	order := p.orderBy()
	typeOf := func(col string) string {
		for i, c := range p.cols {
			if c == col && i < len(p.types) {
				return p.types[i]
			}
		}
		return ""
	}
	pc := d.param(typeOf(p.cursor))
	bound := func(s string) any {
		if p.num {
			return intArg(s)
		}
		return s
	}
	switch {
	case p.from == "" && p.to == "": // every row
		b.WriteString(" WHERE 1 = 1")
	case p.from == "":
		b.WriteString(" WHERE (" + qc + " < " + pc + " OR " + qc + " IS NULL)")
		args = append(args, bound(p.to))
	default:
		b.WriteString(" WHERE " + qc + " >= " + pc + " AND " + qc + " < " + pc)
		args = append(args, bound(p.from), bound(p.to))
	}
	if p.extra != "" {
		b.WriteString(" AND " + p.extra)
		args = append(args, p.extraArgs...)
	}
	if p.after != nil {
		b.WriteString(" AND ")
		ph := make([]string, len(order))
		for i, c := range order {
			ph[i] = d.param(typeOf(c))
		}
		args = appendKeysetCmpTyped(&b, d, order, ph, p.after, args, " > ", " > ")
	}
	// ORDER BY names the table's columns, qualified: an engine that reads
	// a value through a cast (PostgreSQL) names the output column like
	// the table's, and an unqualified name would sort by its text.
	b.WriteString(" ORDER BY ")
	qt := d.Quote(p.table)
	for i, c := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(qt + "." + d.Quote(c))
	}
	b.WriteString(" LIMIT " + strconv.Itoa(p.limit))
	return Query{SQL: b.String(), Args: args}
}

// orderBy is the keyset order: the key for the initial load, else the
// cursor then the key.
func (p pageQuery) orderBy() []string {
	if p.from == "" {
		return p.key
	}
	return windowOrder(p.cursor, p.key)
}

// windowOrder is the cursor then the key columns; a cursor that is itself
// a key column (an AUTO_INCREMENT id) is not repeated.
func windowOrder(cursor string, key []string) []string {
	out := []string{cursor}
	for _, k := range key {
		if k != cursor {
			out = append(out, k)
		}
	}
	return out
}

// keyMatch writes (k1 = ? AND k2 = ?) OR (…) for n keys, the form every
// engine resolves by primary-key lookups, and returns the key values as
// arguments.
func keyMatch(d dialect, prefix string, key []string, keys [][]any) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(keys)*len(key))
	for i, kv := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for j, k := range key {
			if j > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(prefix + d.Quote(k) + " = ?")
			args = append(args, kv[j])
		}
		b.WriteByte(')')
	}
	return b.String(), args
}

// appendKeyset writes (c1, c2, …) > (v1, v2, …) in the expanded form
// c1 > ? OR (c1 = ? AND (c2 > ? OR (…))), which every range optimiser
// understands, and returns args with the values appended.
func appendKeyset(b *strings.Builder, d dialect, cols []string, vals []any, args []any) []any {
	return appendKeysetCmp(b, d, cols, vals, args, " > ", " > ")
}

// appendKeysetUpTo writes (c1, c2, …) <= (v1, v2, …) in the expanded
// form c1 < ? OR (c1 = ? AND (c2 <= ?)), like appendKeyset.
func appendKeysetUpTo(b *strings.Builder, d dialect, cols []string, vals []any, args []any) []any {
	return appendKeysetCmp(b, d, cols, vals, args, " < ", " <= ")
}

// appendKeysetCmp is the expanded row comparison: op before the last
// column, last on it.
func appendKeysetCmp(b *strings.Builder, d dialect, cols []string, vals []any, args []any, op, last string) []any {
	return appendKeysetCmpTyped(b, d, cols, nil, vals, args, op, last)
}

// appendKeysetCmpTyped is appendKeysetCmp with a placeholder per column
// (dialect.param); nil: "?" for each.
func appendKeysetCmpTyped(b *strings.Builder, d dialect, cols, ph []string, vals []any, args []any, op, last string) []any {
	b.WriteByte('(')
	for i, c := range cols {
		q := d.Quote(c)
		p := "?"
		if ph != nil {
			p = ph[i]
		}
		if i == len(cols)-1 {
			b.WriteString(q + last + p)
			args = append(args, vals[i])
			break
		}
		b.WriteString(q + op + p + " OR (" + q + " = " + p + " AND (")
		args = append(args, vals[i], vals[i])
	}
	for i := 0; i < len(cols)-1; i++ {
		b.WriteString("))")
	}
	b.WriteByte(')')
	return args
}

// nonKey is cols without the key columns.
func nonKey(cols, key []string) []string {
	var out []string
	for _, c := range cols {
		if !contains(key, c) {
			out = append(out, c)
		}
	}
	return out
}

// marks is n placeholders, comma separated.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func strAnys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
