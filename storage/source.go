package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// timeLayout is how window bounds are written: the text form both MySQL
// DATETIME(6) and SQLite's strftime('%Y-%m-%d %H:%M:%f') compare correctly.
const timeLayout = "2006-01-02 15:04:05.000000"

type column struct {
	Name string
	Type string
	Key  bool
}

// columns introspects table. It returns gapsync.ErrUnknownTable when the
// table does not exist.
func (db *DB) columns(ctx context.Context, table string) ([]column, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.Columns(), table)
	if err != nil {
		return nil, fmt.Errorf("storage: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.Name, &c.Type, &c.Key); err != nil {
			return nil, fmt.Errorf("storage: columns of %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: table %q does not exist", gapsync.ErrUnknownTable, table)
	}
	return cols, nil
}

func findColumn(cols []column, name string) (column, bool) {
	for _, c := range cols {
		if c.Name == name {
			return c, true
		}
	}
	return column{}, false
}

// checkTable verifies that the configured key and cursor columns exist.
func checkTable(t gapsync.Table, cols []column) error {
	for _, k := range append(append([]string{}, t.Key...), t.Cursor) {
		if _, ok := findColumn(cols, k); !ok {
			return fmt.Errorf("%w: %s.%s (named in sync_config)", gapsync.ErrUnknownColumn, t.Name, k)
		}
	}
	return nil
}

// Bound returns the upper bound of the next window for table t, from the
// database's own clock: now minus Options.Lag, and on MySQL/MariaDB also
// before the start of any open transaction that has written rows and is
// younger than Options.MaxTxAge. A TIMESTAMP cursor is compared in the
// session zone (UTC); a DATETIME cursor holds wall-clock values written by
// the application, so its bound is the server's wall clock.
func (db *DB) Bound(ctx context.Context, t gapsync.Table) (string, error) {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return "", err
	}
	if err := checkTable(t, cols); err != nil {
		return "", err
	}
	cur, _ := findColumn(cols, t.Cursor)
	var now time.Time
	hold := db.opts.Lag
	switch db.d.Name() {
	case "mysql":
		expr := "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)"
		if strings.HasPrefix(strings.ToLower(cur.Type), "timestamp") {
			expr = "UTC_TIMESTAMP(6)"
		}
		var s string
		if err := db.sql.QueryRowContext(ctx, "SELECT DATE_FORMAT("+expr+", '%Y-%m-%d %H:%i:%s.%f')").Scan(&s); err != nil {
			return "", fmt.Errorf("storage: read database clock: %w", err)
		}
		if now, err = time.Parse(timeLayout, s); err != nil {
			return "", fmt.Errorf("storage: parse database clock %q: %w", s, err)
		}
		if age, ok := db.oldestWriter(ctx); ok && age+time.Second > hold {
			hold = age + time.Second // trx_started has whole seconds only
		}
	default:
		var s string
		if err := db.sql.QueryRowContext(ctx, "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").Scan(&s); err != nil {
			return "", fmt.Errorf("storage: read database clock: %w", err)
		}
		if now, err = time.Parse("2006-01-02 15:04:05.000", s); err != nil {
			return "", fmt.Errorf("storage: parse database clock %q: %w", s, err)
		}
	}
	return now.Add(-hold).Format(timeLayout), nil
}

// oldestWriter returns the age of the oldest open InnoDB transaction that
// has modified rows, ignoring this connection, transactions older than
// MaxTxAge, and connections whose default database is another one (a
// writer there that names our tables with a database prefix is not seen).
// Without the PROCESS privilege it logs once and reports none.
func (db *DB) oldestWriter(ctx context.Context) (time.Duration, bool) {
	const q = "SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, trx_started, " +
		"CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', 'SYSTEM'))), -1) FROM information_schema.INNODB_TRX " +
		"WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0 AND " +
		"trx_mysql_thread_id IN (SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() OR DB IS NULL) AND " +
		"trx_started > CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', 'SYSTEM') - INTERVAL ? SECOND"
	var us int64
	if err := db.sql.QueryRowContext(ctx, q, int64(db.opts.MaxTxAge/time.Second)).Scan(&us); err != nil {
		db.warnOnce.Do(func() {
			db.opts.Logger.Warn("cannot read open transactions; window bound uses the lag only", "err", err)
		})
		return 0, false
	}
	if us < 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

// Changes reads the rows of t whose cursor lies in w, page by page in
// keyset order, and calls fn with each page as a batch. Only one page is
// in memory at a time, and no query is open while fn runs, so fn may take
// as long as it needs (a send over a slow gateway). The batch passed to fn
// has Table, Columns, Rows, WindowFrom, WindowTo and Seq set; fn sets ID.
// An error from fn stops the scan and is returned as is.
func (db *DB) Changes(ctx context.Context, t gapsync.Table, w gapsync.Window, p gapsync.Page, fn func(*batch.Batch) error) error {
	if p.Rows <= 0 {
		p.Rows = 1000
	}
	if p.Bytes <= 0 {
		p.Bytes = 4 << 20
	}
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return err
	}
	if err := checkTable(t, cols); err != nil {
		return err
	}
	names := make([]string, len(cols))
	bcols := make([]batch.Column, len(cols))
	for i, c := range cols {
		if err := gapsync.ValidIdentifier(c.Name); err != nil {
			return fmt.Errorf("storage: table %s: %w", t.Name, err)
		}
		names[i] = c.Name
		bcols[i] = batch.Column{Name: c.Name, Type: c.Type, Key: contains(t.Key, c.Name)}
	}
	// Positions of the keyset columns among the selected ones.
	order := t.Key
	if w.From != "" {
		order = append([]string{t.Cursor}, t.Key...)
	}
	pos := make([]int, len(order))
	for i, o := range order {
		for j, n := range names {
			if n == o {
				pos[i] = j
			}
		}
	}
	var after []any
	for seq := uint64(0); ; seq++ {
		q := selectPage(db.d, t.Name, names, t.Cursor, t.Key, w.From, w.To, after, p.Rows)
		b := &batch.Batch{Table: t.Name, WindowFrom: w.From, WindowTo: w.To, Seq: seq, Columns: bcols}
		full, err := db.readPage(ctx, q, len(cols), p, b)
		if err != nil {
			return fmt.Errorf("storage: read changes of %s: %w", t.Name, err)
		}
		if len(b.Rows) == 0 {
			return nil
		}
		last := b.Rows[len(b.Rows)-1].Values
		after = make([]any, len(pos))
		for i, j := range pos {
			after[i] = last[j]
		}
		if err := fn(b); err != nil {
			return err
		}
		if !full {
			return nil
		}
	}
}

// readPage runs q and appends its rows to b until the page is full by rows
// or bytes. full reports whether more rows may follow.
func (db *DB) readPage(ctx context.Context, q Query, ncols int, p gapsync.Page, b *batch.Batch) (full bool, err error) {
	rows, err := db.sql.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	size := 0
	ptrs := make([]any, ncols)
	for rows.Next() {
		vals := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		for i, v := range vals {
			// A driver may return an empty BLOB as a nil []byte inside a
			// non-nil interface; NULL is the nil interface. Make the empty
			// value non-nil so that no later layer mistakes it for NULL.
			if b, ok := v.([]byte); ok && b == nil {
				vals[i] = []byte{}
			}
		}
		r := batch.Row{Op: batch.OpUpsert, Values: vals}
		b.Rows = append(b.Rows, r)
		size += batch.RowSize(r)
		if size >= p.Bytes {
			return true, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	return len(b.Rows) == p.Rows, nil
}
