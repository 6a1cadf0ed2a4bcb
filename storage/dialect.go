package storage

import (
	"strconv"
	"strings"
)

// Query is one SQL statement with its arguments. SQL building is pure: a
// dialect turns names and sizes into a Query without touching a database,
// so the generated text is unit-tested per dialect (dialect_test.go).
type Query struct {
	SQL  string
	Args []any
}

// dialect holds what differs between MySQL/MariaDB and SQLite. Every
// identifier passed in has already been checked by gapsync.ValidIdentifier;
// quoting is a second line of defence, not the first.
type dialect interface {
	Name() string
	Quote(ident string) string
	// SelectExpr is how a column is read so that its value comes back
	// exactly as stored (SQLite: without the driver's time parsing).
	SelectExpr(col string) string
	// Upsert inserts rows or updates them by primary key.
	Upsert(table string, cols, key []string, rows int) string
	// Columns lists a table's columns: name, type and whether each is in
	// the primary key. Its single argument is the table name.
	Columns() string
	// placeholderLimit is the most bound parameters one statement may carry.
	placeholderLimit() int
	// lockRows ends a SELECT inside a transaction so that the rows it
	// reads stay as read until the commit ("" where the transaction holds
	// the whole database already).
	lockRows() string
}

type mysqlDialect struct{}

func (mysqlDialect) Name() string { return "mysql" }

func (mysqlDialect) Quote(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

func (d mysqlDialect) SelectExpr(col string) string { return d.Quote(col) }

func (d mysqlDialect) Upsert(table string, cols, key []string, rows int) string {
	var b strings.Builder
	insertValues(&b, d, table, cols, rows)
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	n := 0
	for _, c := range cols {
		if contains(key, c) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		q := d.Quote(c)
		b.WriteString(q + "=VALUES(" + q + ")")
		n++
	}
	if n == 0 { // every column is in the key: nothing to update
		q := d.Quote(key[0])
		b.WriteString(q + "=" + q)
	}
	return b.String()
}

func (mysqlDialect) Columns() string {
	return "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY = 'PRI' FROM information_schema.COLUMNS " +
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
}

func (mysqlDialect) placeholderLimit() int { return 65535 }

func (mysqlDialect) lockRows() string { return " FOR UPDATE" }

type sqliteDialect struct{}

func (sqliteDialect) Name() string { return "sqlite" }

func (sqliteDialect) Quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// SelectExpr uses unary plus, which SQLite defines as a no-op on every
// value (integers, reals, text, blobs, NULL). It hides the declared type
// from the driver, which would otherwise turn DATE/DATETIME text into
// time.Time and lose the stored form.
func (d sqliteDialect) SelectExpr(col string) string {
	q := d.Quote(col)
	return "+" + q + " AS " + q
}

func (d sqliteDialect) Upsert(table string, cols, key []string, rows int) string {
	var b strings.Builder
	insertValues(&b, d, table, cols, rows)
	b.WriteString(" ON CONFLICT (")
	for i, k := range key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(k))
	}
	b.WriteString(") DO ")
	n := 0
	for _, c := range cols {
		if contains(key, c) {
			continue
		}
		if n == 0 {
			b.WriteString("UPDATE SET ")
		} else {
			b.WriteByte(',')
		}
		q := d.Quote(c)
		b.WriteString(q + "=excluded." + q)
		n++
	}
	if n == 0 {
		b.WriteString("NOTHING")
	}
	return b.String()
}

func (sqliteDialect) Columns() string {
	return "SELECT name, type, pk > 0 FROM pragma_table_info(?) ORDER BY cid"
}

func (sqliteDialect) placeholderLimit() int { return 32766 }

// lockRows: write transactions begin IMMEDIATE (OpenSQLite), so no other
// writer runs until the commit.
func (sqliteDialect) lockRows() string { return "" }

func insertValues(b *strings.Builder, d dialect, table string, cols []string, rows int) {
	b.WriteString("INSERT INTO ")
	b.WriteString(d.Quote(table))
	b.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(c))
	}
	b.WriteString(") VALUES ")
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
	table    string
	cols     []string // selected columns
	cursor   string
	key      []string
	from, to string
	after    []any // order values of the previous page's last row; nil for the first page
	limit    int
	extra    string // an additional condition, ANDed (already quoted)
	num      bool   // the bounds are integers: bind them as numbers
}

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
		b.WriteString(d.SelectExpr(c))
	}
	b.WriteString(" FROM ")
	b.WriteString(d.Quote(p.table))
	qc := d.Quote(p.cursor)
	order := p.orderBy()
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
		b.WriteString(" WHERE (" + qc + " < ? OR " + qc + " IS NULL)")
		args = append(args, bound(p.to))
	default:
		b.WriteString(" WHERE " + qc + " >= ? AND " + qc + " < ?")
		args = append(args, bound(p.from), bound(p.to))
	}
	if p.extra != "" {
		b.WriteString(" AND " + p.extra)
	}
	if p.after != nil {
		b.WriteString(" AND ")
		args = appendKeyset(&b, d, order, p.after, args)
	}
	b.WriteString(" ORDER BY ")
	for i, c := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.Quote(c))
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
	b.WriteByte('(')
	for i, c := range cols {
		q := d.Quote(c)
		if i == len(cols)-1 {
			b.WriteString(q + " > ?")
			args = append(args, vals[i])
			break
		}
		b.WriteString(q + " > ? OR (" + q + " = ? AND (")
		args = append(args, vals[i], vals[i])
	}
	for i := 0; i < len(cols)-1; i++ {
		b.WriteString("))")
	}
	b.WriteByte(')')
	return args
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
