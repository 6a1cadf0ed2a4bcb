package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// writers is what one look at the open transactions found.
type writers struct {
	// open: a transaction that has written rows in this database (and is
	// younger than Options.MaxTxAge) is open; age is the oldest one's.
	open bool
	age  time.Duration
	// at is when the look began (the age is measured from about then).
	at time.Time
	// blind: the look could not be taken or trusted (no privilege, a
	// report cut short); bounds then rest on Options.Lag alone, an
	// integer cursor's too.
	blind bool
}

// openTrx is one transaction of an engine's report of its transactions
// (see dialect.writerReport).
type openTrx struct {
	conn    int64         // the connection (thread) id; 0 when not known
	age     time.Duration // how long it has been open, at the report's resolution
	written bool          // it has modified rows
}

// errReportCut is parseWriters' answer to a report that does not list
// every transaction.
var errReportCut = errors.New("the report of open transactions was cut short")

// openWriters looks at the open transactions, after the clock or
// MAX(cursor) a bound rests on was read: every transaction that had
// written rows by then and has not committed is in the answer.
//
// MySQL/MariaDB: SHOW ENGINE INNODB STATUS, which lists the transactions
// as they are. Only behind an isolation device that passes no SHOW,
// information_schema.INNODB_TRX: a cache that a read refreshes only once
// it went unread for 0.1 s (trx0i_s.cc), so that a monitor polling it
// faster keeps it as it was before a writer began; a look there counts
// only when the view shows the look's own transaction, and after
// freshFor of trying it is blind. PostgreSQL: pg_stat_activity, read
// afresh by each statement outside a transaction.
func (db *DB) openWriters(ctx context.Context) writers {
	at := time.Now()
	w, err := db.lookAtWriters(ctx)
	w.at = at
	if err != nil {
		db.warnOnce.Do(func() {
			db.opts.Logger.Warn("cannot see the open transactions; window bounds use the lag only "+
				"(grant PROCESS on MySQL/MariaDB or pg_read_all_stats on PostgreSQL, "+
				"or raise -lag past the longest write transaction)", "err", err)
		})
		return writers{blind: true, at: at}
	}
	return w
}

// lookAtWriters takes one look: by the dialect's report where it has one
// and the isolation device passes it (SHOW), else by its query.
func (db *DB) lookAtWriters(ctx context.Context) (writers, error) {
	if report, conns := db.d.writerReport(); report != "" && db.opts.Device.Allows(StatementKind(report)) {
		return db.reportedWriters(ctx, report, conns)
	}
	q := db.d.openWriters()
	if q == "" {
		return writers{}, nil
	}
	if until, _ := db.staleView.Load().(time.Time); time.Now().Before(until) {
		return writers{}, errStaleView
	}
	give := time.Now().Add(freshFor)
	for {
		us, fresh, err := db.queriedWriters(ctx, q)
		if err != nil {
			return writers{}, err
		}
		switch {
		case us == -2:
			return writers{}, errors.New("other roles' sessions are shown without their transactions")
		case !fresh:
			if time.Now().After(give) {
				db.staleView.Store(time.Now().Add(staleFor))
				return writers{}, errStaleView
			}
			t := time.NewTimer(cacheIdle)
			select {
			case <-ctx.Done():
				t.Stop()
				return writers{}, ctx.Err()
			case <-t.C:
			}
			continue
		case us < 0:
			return writers{}, nil
		}
		return writers{open: true, age: time.Duration(us) * time.Microsecond}, nil
	}
}

// cacheIdle is how long InnoDB's INNODB_TRX must go unread before a read
// refreshes it: 0.1 s in trx0i_s.cc (CACHE_MIN_IDLE_TIME), with a margin.
const cacheIdle = 120 * time.Millisecond

// errStaleView: the view of the transactions did not refresh.
var errStaleView = errors.New("information_schema.INNODB_TRX stayed unrefreshed (something reads it more often than every 0.1 s)")

// staleFor is how long, once the view stayed stale for freshFor, looks
// report blind at once before they try it again.
const staleFor = 10 * time.Second

// freshFor is how long a look keeps trying for a view of the
// transactions that is newer than its start, before it gives up.
const freshFor = 1500 * time.Millisecond

// queriedWriters runs the dialect's openWriters query once; where its
// view is a cache (dialect.writersCached) inside a transaction that has
// read a table first, which the query looks for in the view.
func (db *DB) queriedWriters(ctx context.Context, q string) (us int64, fresh bool, err error) {
	maxAge := int64(db.opts.MaxTxAge / time.Second)
	mark := db.d.writersCached()
	if mark == "" {
		err = db.sql.QueryRowContext(ctx, q, maxAge).Scan(&us, &fresh)
		return us, fresh, err
	}
	tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var one sql.NullInt64
	if err := tx.QueryRowContext(ctx, mark).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("open the marking transaction: %w", err)
	}
	err = tx.QueryRowContext(ctx, q, maxAge).Scan(&us, &fresh)
	return us, fresh, err
}

// reportedWriters takes a look by the engine's report of its
// transactions and the list of this database's connections.
func (db *DB) reportedWriters(ctx context.Context, report, conns string) (writers, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return writers{}, err
	}
	defer conn.Close()
	text, err := lastColumn(conn.QueryContext(ctx, report))
	if err != nil {
		return writers{}, fmt.Errorf("read the open transactions: %w", err)
	}
	trxs, err := db.d.parseWriters(text)
	if err != nil {
		return writers{}, err
	}
	ours := map[int64]bool{}
	rows, err := conn.QueryContext(ctx, conns)
	if err != nil {
		return writers{}, fmt.Errorf("list this database's connections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return writers{}, err
		}
		ours[id] = true
	}
	if err := rows.Err(); err != nil {
		return writers{}, err
	}
	var w writers
	for _, x := range trxs {
		if x.written && ours[x.conn] && x.age < db.opts.MaxTxAge && (!w.open || x.age > w.age) {
			w.open, w.age = true, x.age
		}
	}
	return w, nil
}

// lastColumn reads the last column of the first row as text.
func lastColumn(rows *sql.Rows, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", err
		}
		return "", sql.ErrNoRows
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	if len(vals) == 0 {
		return "", errors.New("no column")
	}
	text := string(vals[len(vals)-1])
	return text, rows.Close()
}

// timeHold is how far behind the clock a time bound stays: the lag, or
// past the start of the oldest open writer.
func (db *DB) timeHold(w writers) time.Duration {
	hold := db.opts.Lag
	if w.open && w.age+db.d.writerSlack() > hold {
		hold = w.age + db.d.writerSlack()
	}
	return hold
}
