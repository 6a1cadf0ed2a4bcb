package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// timeLayout is how window bounds are written: the text form both MySQL
// DATETIME(6) and SQLite's strftime('%Y-%m-%d %H:%M:%f') compare correctly.
const timeLayout = "2006-01-02 15:04:05.000000"

type column struct {
	Name string
	Type string
	Key  bool
	Gen  bool // generated from other columns: read, never written
}

// columns introspects table. It returns gapsync.ErrUnknownTable when the
// table does not exist.
func (db *DB) columns(ctx context.Context, table string) ([]column, error) {
	if v, ok := db.meta.Load("columns\x00" + table); ok {
		if e := v.(metaEntry); time.Since(e.at) < metaTTL {
			return e.cols, e.err
		}
	}
	cols, err := db.readColumns(ctx, table)
	if err == nil || errors.Is(err, gapsync.ErrUnknownTable) {
		db.meta.Store("columns\x00"+table, metaEntry{at: time.Now(), cols: cols, err: err})
	}
	return cols, err
}

// metaTTL is how long table shapes and sync_config stay cached: they are
// read for every page and batch, and change rarely. Configure clears the
// cache; changes made by another process show within metaTTL.
const metaTTL = 2 * time.Second

type metaEntry struct {
	at   time.Time
	cols []column
	eff  writeEffects
	err  error
}

// writeEffects is what a table may do to a row beyond storing the values
// an upsert or UPDATE writes: then what is stored must be read back
// before it is hashed (see needsReadBack).
type writeEffects struct {
	triggers  bool // an INSERT or UPDATE trigger that is not gapsync's own
	onUpdate  bool // a column with an ON UPDATE clause (MySQL/MariaDB)
	generated bool // a generated (virtual or stored) column
}

// effects returns table's writeEffects, cached like its columns (and
// cleared with them by Configure and InstallTombstones).
func (db *DB) effects(ctx context.Context, table string) (writeEffects, error) {
	if v, ok := db.meta.Load("effects\x00" + table); ok {
		if e := v.(metaEntry); time.Since(e.at) < metaTTL {
			return e.eff, nil
		}
	}
	eff, err := db.readEffects(ctx, table)
	if err != nil {
		return eff, fmt.Errorf("storage: triggers and column clauses of %s: %w", table, err)
	}
	db.meta.Store("effects\x00"+table, metaEntry{at: time.Now(), eff: eff})
	return eff, nil
}

func (db *DB) readEffects(ctx context.Context, table string) (writeEffects, error) {
	var eff writeEffects
	tt := TombstoneTable(table)
	var trig, onUpd, gen int64
	// gapsync's own triggers fire on DELETE only; any other INSERT or
	// UPDATE trigger may change what is stored.
	q := db.d.effects(table, []string{tt, tt + "_ad", tt + "_ad2"})
	if err := db.sql.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&trig, &onUpd, &gen); err != nil {
		return eff, err
	}
	eff.triggers, eff.onUpdate, eff.generated = trig > 0, onUpd > 0, gen > 0
	return eff, nil
}

func (db *DB) readColumns(ctx context.Context, table string) ([]column, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.Columns(), table)
	if err != nil {
		return nil, fmt.Errorf("storage: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.Name, &c.Type, &c.Key, &c.Gen); err != nil {
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

// checkTable verifies that every column sync_config names exists.
func checkTable(t gapsync.Table, cols []column) error {
	named := append(append([]string{}, t.Key...), t.Cursor)
	if t.SoftDelete != "" {
		named = append(named, t.SoftDelete)
	}
	for _, k := range append(named, t.FileColumns...) {
		if _, ok := findColumn(cols, k); !ok {
			return fmt.Errorf("%w: %s.%s (named in sync_config)", gapsync.ErrUnknownColumn, t.Name, k)
		}
	}
	return nil
}

// cursorKind is how a cursor column orders changes, from its type.
type cursorKind int

const (
	kindTime    cursorKind = iota + 1 // DATETIME/TIMESTAMP: bounds from the database clock
	kindInteger                       // an integer version or id: bounds from MAX(cursor)
)

// cursorKindOf tells a cursor's kind from its column type as the dialect
// reports it (information_schema COLUMN_TYPE on MySQL, the declared type
// on SQLite), or refuses the type with the fix.
func cursorKindOf(d dialect, typ string) (cursorKind, error) {
	if k, ok := d.cursorKind(typ); ok {
		return k, nil
	}
	t := strings.ToLower(strings.TrimSpace(typ))
	if t == "" {
		t = "(no declared type)"
	}
	return 0, fmt.Errorf("%w: the cursor column's type is %s; a cursor must be DATETIME or TIMESTAMP "+
		"(set to the time of every change, for example DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) "+
		"or an integer type (TINYINT to BIGINT, signed or unsigned: a version that every change raises above "+
		"every value before it, or the AUTO_INCREMENT id of an append-only table); change the column's type "+
		"or name another column as the cursor", gapsync.ErrUnsupportedCursor, t)
}

// shape reads t's columns, checks what sync_config names, and returns
// the cursor's kind: the check that runs before every read.
func (db *DB) shape(ctx context.Context, t gapsync.Table) ([]column, cursorKind, error) {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return nil, 0, err
	}
	if err := checkTable(t, cols); err != nil {
		return nil, 0, err
	}
	cur, _ := findColumn(cols, t.Cursor)
	kind, err := cursorKindOf(db.d, cur.Type)
	if err != nil {
		return nil, 0, fmt.Errorf("table %s cursor %s: %w", t.Name, t.Cursor, err)
	}
	return cols, kind, nil
}

// Bound returns the upper bound of the next window for table t.
//
// For a time cursor it comes from the database's own clock: now minus
// Options.Lag, and on MySQL/MariaDB also before the start of any open
// transaction that has written rows and is younger than Options.MaxTxAge.
// A TIMESTAMP cursor is compared in the session zone (UTC); a DATETIME
// cursor holds wall-clock values written by the application, so its bound
// is the server's wall clock.
//
// For an integer cursor it is one past MAX(cursor), less
// Options.CursorMargin; on MySQL/MariaDB, while a transaction that has
// written rows is open (and younger than MaxTxAge), it is held at what
// MAX(cursor) was before that transaction began, as seen by an earlier
// call (or not advanced at all when there was none): such a transaction
// may still commit values below today's maximum.
func (db *DB) Bound(ctx context.Context, t gapsync.Table) (string, error) {
	cols, kind, err := db.shape(ctx, t)
	if err != nil {
		return "", err
	}
	if kind == kindInteger {
		return db.intBounds(ctx, t)
	}
	cur, _ := findColumn(cols, t.Cursor)
	now, err := db.clock(ctx, cur.Type, false)
	if err != nil {
		return "", err
	}
	return now.Add(-db.timeHold(db.openWriters(ctx))).Format(timeLayout), nil
}

// intBounds is Bound for an integer cursor: the integer bound, joined
// (gapsync.JoinBound) with the bound of the deletions' own time window
// when t has a tombstone table. The deletions' clock is read before
// MAX(cursor), so a deletion stamped after it waits for the next window
// whatever the counter did meanwhile, and one look at the open writers
// after both serves the two.
func (db *DB) intBounds(ctx context.Context, t gapsync.Table) (string, error) {
	ok, err := db.hasTombstones(ctx, t.Name)
	if err != nil {
		return "", err
	}
	var delNow time.Time
	if ok {
		if delNow, err = db.deletionClock(ctx); err != nil {
			return "", err
		}
	}
	top, err := db.intTop(ctx, t)
	if err != nil {
		return "", err
	}
	seen := time.Now()
	w := db.openWriters(ctx)
	rows, err := db.intBoundAt(t, top, seen, w)
	if err != nil {
		return "", err
	}
	var del string
	if ok {
		del = db.deletionBoundAt(delNow, w)
	}
	return gapsync.JoinBound(rows, del), nil
}

// deletionClock reads the clock for the deletions' window of a table
// with an integer cursor, whose tombstones the trigger stamps with the
// database's UTC clock. On SQLite it is read inside a write transaction:
// while it holds the write lock no other writer is open, so every
// deletion stamped before it is committed (a writer that holds the lock
// longer than the busy timeout fails this run, and the next one tries
// again).
func (db *DB) deletionClock(ctx context.Context) (time.Time, error) {
	if !db.d.clockInWriteTx() {
		return db.clock(ctx, "", true)
	}
	tx, err := db.sql.BeginTx(ctx, nil) // BEGIN IMMEDIATE (OpenSQLite)
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: wait for open writers: %w", err)
	}
	defer tx.Rollback()
	return db.clock(ctx, "", true)
}

// deletionBoundAt is the deletions' bound from their clock (read before
// the look w at the open writers): now less Options.Lag, held like a
// time cursor's bound before the oldest open writer (not on SQLite,
// whose clock was read with no writer open).
func (db *DB) deletionBoundAt(now time.Time, w writers) string {
	if db.d.clockInWriteTx() {
		return now.Add(-db.opts.Lag).Format(timeLayout)
	}
	return now.Add(-db.timeHold(w)).Format(timeLayout)
}

// intFloor is the bound of an integer cursor that has no history yet:
// below every value a BIGINT can hold.
var intFloor = big.NewInt(math.MinInt64)

// intTop reads MAX(cursor) of t.
func (db *DB) intTop(ctx context.Context, t gapsync.Table) (sql.NullString, error) {
	var top sql.NullString
	q := "SELECT MAX(" + db.d.Quote(t.Cursor) + ") FROM " + db.d.Quote(t.Name)
	if err := db.sql.QueryRowContext(ctx, q).Scan(&top); err != nil {
		return top, fmt.Errorf("storage: read the top of cursor %s.%s: %w", t.Name, t.Cursor, err)
	}
	return top, nil
}

// intBoundAt is the integer bound once MAX(cursor) was read (top, at
// seen) and the open writers were looked at after (w); it records the
// sample for later bounds. While a writer is open the bound is held at
// the top seen before it began; when the look was blind, at the top seen
// Options.Lag ago (the honest lag of a time cursor).
func (db *DB) intBoundAt(t gapsync.Table, top sql.NullString, seen time.Time, w writers) (string, error) {
	next := new(big.Int).Set(intFloor)
	if top.Valid {
		if _, ok := next.SetString(strings.TrimSpace(top.String), 10); !ok {
			return "", fmt.Errorf("%w: cursor %s.%s holds %q, not an integer", gapsync.ErrUnsupportedCursor, t.Name, t.Cursor, top.String)
		}
		next.Add(next, big.NewInt(1))
	}
	bound := new(big.Int).Set(next)
	if w.open || w.blind {
		started := w.at.Add(-db.opts.Lag)
		if w.open {
			started = w.at.Add(-w.age - db.d.writerSlack())
		}
		held, found := db.intSeen.before(t.Name, started)
		if !found {
			held = intFloor
		}
		if held.Cmp(bound) < 0 {
			bound.Set(held)
		}
	}
	db.intSeen.add(t.Name, seen, next, db.opts.MaxTxAge+time.Minute)
	bound.Sub(bound, big.NewInt(db.opts.CursorMargin))
	if bound.Cmp(intFloor) < 0 {
		bound.Set(intFloor)
	}
	return bound.String(), nil
}

// intHistory remembers, per table, what one past MAX(cursor) was at each
// recent Bound, so that a bound can be held at its value from before an
// open transaction began.
type intHistory struct {
	mu sync.Mutex
	m  map[string][]intSample
}

type intSample struct {
	at   time.Time
	next *big.Int
}

// before returns the newest sample of table taken at or before t.
func (h *intHistory) before(table string, t time.Time) (*big.Int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.m[table]
	for i := len(s) - 1; i >= 0; i-- {
		if !s[i].at.After(t) {
			return s[i].next, true
		}
	}
	return nil, false
}

// add records a sample and forgets those older than keep, except the
// newest of them.
func (h *intHistory) add(table string, at time.Time, next *big.Int, keep time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string][]intSample{}
	}
	s := append(h.m[table], intSample{at: at, next: new(big.Int).Set(next)})
	drop := 0
	for drop < len(s)-1 && at.Sub(s[drop+1].at) > keep {
		drop++
	}
	if len(s)-drop > 1024 {
		drop = len(s) - 1024
	}
	h.m[table] = append(s[:0:0], s[drop:]...)
}

// intArg turns an integer bound into a query argument, so that the
// database compares numbers, not text.
func intArg(s string) any {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v
	}
	return s
}

// clock reads the database clock (see dialect.clock).
func (db *DB) clock(ctx context.Context, cursorType string, utc bool) (time.Time, error) {
	var s string
	if err := db.sql.QueryRowContext(ctx, db.d.clock(cursorType, utc)).Scan(&s); err != nil {
		return time.Time{}, fmt.Errorf("storage: read database clock: %w", err)
	}
	now, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: parse database clock %q: %w", s, err)
	}
	return now, nil
}

// Changes reads the rows of t whose cursor lies in w, page by page, and
// calls fn with each non-empty page as a batch. Only one page is in memory
// at a time, and no query is open while fn runs, so fn may take as long
// as it needs (a send over a slow gateway). The batch passed to fn has
// Table, Columns, Rows, WindowFrom, WindowTo and Seq set; fn sets ID.
// An error from fn stops the scan and is returned as is.
func (db *DB) Changes(ctx context.Context, t gapsync.Table, w gapsync.Window, p gapsync.Page, fn func(*batch.Batch) error) error {
	var after []byte
	seq := uint64(0)
	for {
		b, next, more, err := db.ReadPage(ctx, t, w, after, p)
		if err != nil {
			return err
		}
		if len(b.Rows) > 0 {
			b.Seq = seq
			seq++
			if err := fn(b); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = next
	}
}

// ReadPage reads one page of the changes of t in w, starting after the
// position next from the previous page (nil for the first). It returns
// the page, the position after it, and whether more pages may follow; a
// page may be empty while more is true. Deletions come first (from t's
// tombstone table, if installed), then changed rows; a soft-deleted row
// of a table configured with SoftDeleteAs "delete" travels as a delete.
// For a table synced both ways, rows that arrived by sync and have not
// changed since are left out: they are not sent back (no echo).
//
// The position is opaque and safe to hand to another process (the
// gateway serves pull requests with it); a malformed one is refused with
// gapsync.ErrMalformed.
func (db *DB) ReadPage(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte, p gapsync.Page) (*batch.Batch, []byte, bool, error) {
	return db.page(ctx, t, w, after, p, true)
}

// page is ReadPage; changes=false reads the table as it is instead (no
// deletions, no echo filter, soft-deleted rows as rows), for Checksum.
func (db *DB) page(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte, p gapsync.Page, changes bool) (*batch.Batch, []byte, bool, error) {
	if p.Rows <= 0 {
		p.Rows = 1000
	}
	if p.Bytes <= 0 {
		p.Bytes = 4 << 20
	}
	if after == nil {
		db.forgetColumns(t.Name) // a scan starts from the table's shape as it is now
	}
	cols, kind, err := db.shape(ctx, t)
	if err != nil {
		return nil, nil, false, err
	}
	cols = sentColumns(t, cols)
	// rw is the window of the live rows, dw that of the deletions: the
	// same for a time cursor; for an integer cursor the two parts of w
	// (gapsync.Window), dw.To empty when w has no deletions part.
	rw, dw := w, w
	if kind == kindInteger {
		if !changes { // Checksum: every row
			w = gapsync.Window{}
		}
		rw, dw = w.Rows(), w.Deletions()
		for _, v := range []string{rw.From, rw.To} {
			if v != "" && !gapsync.IsIntegerBound(v) {
				return nil, nil, false, fmt.Errorf("%w: window bound %q of table %s, whose cursor is an integer", gapsync.ErrMalformed, v, t.Name)
			}
		}
		for _, v := range []string{dw.From, dw.To} {
			if _, err := time.Parse(timeLayout, v); v != "" && err != nil {
				return nil, nil, false, fmt.Errorf("%w: deletions bound %q of table %s", gapsync.ErrMalformed, v, t.Name)
			}
		}
	}
	names := make([]string, len(cols))
	bcols := make([]batch.Column, len(cols))
	for i, c := range cols {
		if err := gapsync.ValidIdentifier(c.Name); err != nil {
			return nil, nil, false, fmt.Errorf("storage: table %s: %w", t.Name, err)
		}
		names[i] = c.Name
		bcols[i] = batch.Column{Name: c.Name, Type: c.Type, Key: contains(t.Key, c.Name)}
	}
	phase, keyset, err := decodePosition(after, t, rw.From, dw.From)
	if err != nil {
		return nil, nil, false, err
	}
	if phase == phaseTombstones && (!changes || (kind == kindInteger && dw.To == "")) {
		// A window without a deletions part (the tombstone table came
		// after its bound): the next window reads every tombstone.
		phase, keyset = phaseRows, nil
	}
	if phase == phaseTombstones {
		ok, err := db.hasTombstones(ctx, t.Name)
		if err != nil {
			return nil, nil, false, err
		}
		if !ok {
			phase, keyset = phaseRows, nil
		}
	}
	b := &batch.Batch{Table: t.Name, WindowFrom: w.From, WindowTo: w.To, Columns: bcols}
	pq := pageQuery{table: t.Name, cols: names, cursor: t.Cursor, key: t.Key, from: rw.From, to: rw.To, after: keyset, limit: p.Rows, num: kind == kindInteger}
	keyPos := rules.Positions(names, t.Key)
	curPos := rules.Positions(names, []string{t.Cursor})[0]
	// The row filter: rows outside it are not read, or with FilterAs
	// "delete" read with a flag and sent as deletions.
	filterDeletes := false
	if w := db.filterSQL(t); w != "" && changes && phase == phaseRows {
		if t.FilterAs == "delete" {
			pq.flag, filterDeletes = w, true
		} else {
			pq.extra = "(" + w + ")"
		}
	}
	if phase == phaseTombstones {
		tt := TombstoneTable(t.Name)
		pq.table, pq.cols, pq.cursor = tt, append(append([]string{}, t.Key...), tombstoneAt), tombstoneAt
		pq.from, pq.to, pq.num = dw.From, dw.To, false
		if kind == kindInteger {
			pq.cols = append(pq.cols, tombstoneCursor)
		}
		// A key deleted and then inserted again is alive: send the row, not the deletion.
		same := make([]string, len(t.Key))
		for i, k := range t.Key {
			same[i] = db.d.Quote(t.Name) + "." + db.d.Quote(k) + " = " + db.d.Quote(tt) + "." + db.d.Quote(k)
		}
		pq.extra = "NOT EXISTS (SELECT 1 FROM " + db.d.Quote(t.Name) + " WHERE " + strings.Join(same, " AND ") + ")"
	}
	pq.types = db.typesOf(ctx, pq.table, pq.cols)
	ncols := len(pq.cols)
	if filterDeletes {
		ncols++
	}
	read, full, err := db.readPage(ctx, selectPage(db.d, pq), ncols, p)
	if err != nil {
		return nil, nil, false, fmt.Errorf("storage: read changes of %s: %w", t.Name, err)
	}
	var outside []bool // with filterDeletes: the rows the filter leaves out
	if filterDeletes {
		outside = make([]bool, len(read))
		for i, r := range read {
			outside[i] = !flagSet(r[len(r)-1])
			read[i] = r[:len(r)-1]
		}
	}
	var next []byte
	more := full
	if len(read) > 0 {
		last := read[len(read)-1]
		if phase == phaseRows {
			next, err = encodePosition(phase, pq.orderBy(), rules.Pick(last, rules.Positions(names, pq.orderBy())))
		} else {
			next, err = encodePosition(phase, pq.orderBy(), rules.Pick(last, rules.Positions(pq.cols, pq.orderBy())))
		}
		if err != nil {
			return nil, nil, false, err
		}
	}
	if phase == phaseTombstones && !full {
		next, err = encodePosition(phaseRows, nil, nil)
		if err != nil {
			return nil, nil, false, err
		}
		more = true
	}
	for i, r := range read {
		switch {
		case phase == phaseTombstones:
			vals := make([]any, len(names))
			for i, kp := range keyPos {
				vals[kp] = r[i]
			}
			// The deletion's cursor: its time, or for an integer cursor
			// the deleted row's last cursor value (see TombstoneDDL).
			vals[curPos] = r[len(pq.cols)-1]
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpDelete, Values: vals})
		case outside != nil && outside[i]:
			vals := make([]any, len(names))
			for _, kp := range keyPos {
				vals[kp] = r[kp]
			}
			vals[curPos] = r[curPos]
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpDelete, Values: vals})
		default:
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: r})
		}
	}
	if changes {
		// Soft deletions as deletions where so configured, no echo, and
		// references as their origin's (the rules).
		if err := rules.Outgoing(ctx, sender{db}, t, b); err != nil {
			return nil, nil, false, err
		}
	}
	return b, next, more, nil
}

// sentColumns are those of cols that this side sends of t (Table.Sends).
func sentColumns(t gapsync.Table, cols []column) []column {
	if len(t.Columns) == 0 && len(t.Exclude) == 0 {
		return cols
	}
	out := make([]column, 0, len(cols))
	for _, c := range cols {
		if t.Sends(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// flagSet reads the 0 or 1 of a filter flag as a driver returns it.
func flagSet(v any) bool {
	switch x := v.(type) {
	case int64:
		return x == 1
	case []byte:
		return string(x) == "1"
	case string:
		return x == "1"
	case bool:
		return x
	}
	return false
}

// sender is the DB as rules.Outgoing consumes it.
type sender struct{ db *DB }

var _ rules.Sender = sender{}

func (s sender) Versions(ctx context.Context, table string, khs []string) (map[string]string, error) {
	return s.db.versions(ctx, s.db.sql, table, khs)
}

func (s sender) MapLocal(ctx context.Context, refs []string) (map[string]string, error) {
	return s.db.MapLocal(ctx, refs)
}

// readPage runs q and returns its rows, stopping early once their size
// passes p.Bytes (at most the device's packet limit, devicePage). full
// reports whether more rows may follow.
func (db *DB) readPage(ctx context.Context, q Query, ncols int, p gapsync.Page) (out [][]any, full bool, err error) {
	p = db.devicePage(p)
	if rr, ok := db.d.(rawReader); ok {
		size := 0
		handled, err := rr.readRows(ctx, db.sql, q, ncols, func(vals []any) bool {
			out = append(out, vals)
			size += batch.RowSize(batch.Row{Values: vals})
			return size >= p.Bytes
		})
		switch {
		case handled && err != nil:
			return nil, false, err
		case handled:
			return out, size >= p.Bytes || len(out) == p.Rows, nil
		}
		out = nil
	}
	var rows *sql.Rows
	if bt, ok := db.d.(bareTexter); ok && len(q.Args) == 0 && bt.bareReadsAsText() {
		// Prepared, so that the values come back in the binary form every
		// read with arguments gets (see bareTexter).
		stmt, err := db.sql.PrepareContext(ctx, q.SQL)
		if err != nil {
			return nil, false, err
		}
		defer stmt.Close()
		rows, err = stmt.QueryContext(ctx)
	} else {
		rows, err = db.sql.QueryContext(ctx, q.SQL, q.Args...)
	}
	if err != nil {
		return nil, false, err
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
			return nil, false, err
		}
		for i, v := range vals {
			vals[i] = rules.Normalize(v)
		}
		out = append(out, vals)
		size += batch.RowSize(batch.Row{Values: vals})
		if size >= p.Bytes {
			return out, true, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return out, len(out) == p.Rows, nil
}

// rawReader is an engine that reads a page's rows from its own driver,
// past database/sql, as readPage's scan would give them (PostgreSQL:
// pgread.go). row gets each row's values and returns true to stop;
// handled false: nothing was read, read through database/sql.
type rawReader interface {
	readRows(ctx context.Context, db *sql.DB, q Query, ncols int, row func(vals []any) bool) (handled bool, err error)
}

// Scan phases: deletions first, then changed rows.
const (
	phaseTombstones = 0
	phaseRows       = 1
)

// encodePosition writes a scan position as a one-row batch: the phase and
// the order values of the last row read.
func encodePosition(phase int, order []string, vals []any) ([]byte, error) {
	b := &batch.Batch{ID: "position", Table: "position", Columns: []batch.Column{{Name: "phase"}}}
	row := []any{int64(phase)}
	for i, o := range order {
		b.Columns = append(b.Columns, batch.Column{Name: o})
		row = append(row, vals[i])
	}
	b.Rows = []batch.Row{{Op: batch.OpUpsert, Values: row}}
	return b.MarshalBinary()
}

// decodePosition reads a scan position of t; rowsFrom and delFrom are the
// lower bounds of the rows' and the deletions' windows, which decide the
// order of each phase.
func decodePosition(p []byte, t gapsync.Table, rowsFrom, delFrom string) (int, []any, error) {
	if len(p) == 0 {
		return phaseTombstones, nil, nil
	}
	b, err := batch.Decode(p, &batch.Limits{MaxColumns: 65, MaxRows: 1, MaxValue: 1 << 16})
	if err != nil {
		return 0, nil, fmt.Errorf("%w: scan position: %v", gapsync.ErrMalformed, err)
	}
	if len(b.Rows) != 1 || b.Columns[0].Name != "phase" {
		return 0, nil, fmt.Errorf("%w: scan position has no phase", gapsync.ErrMalformed)
	}
	phase, ok := b.Rows[0].Values[0].(int64)
	if !ok || (phase != phaseTombstones && phase != phaseRows) {
		return 0, nil, fmt.Errorf("%w: scan position phase", gapsync.ErrMalformed)
	}
	vals := b.Rows[0].Values[1:]
	if len(vals) == 0 {
		return int(phase), nil, nil
	}
	order := t.Key
	switch {
	case phase == phaseRows && rowsFrom != "":
		order = windowOrder(t.Cursor, t.Key)
	case phase == phaseTombstones && delFrom != "":
		order = windowOrder(tombstoneAt, t.Key)
	}
	if len(order) != len(vals) {
		return 0, nil, fmt.Errorf("%w: scan position does not fit table %s", gapsync.ErrMalformed, t.Name)
	}
	for i, o := range order {
		if b.Columns[i+1].Name != o {
			return 0, nil, fmt.Errorf("%w: scan position does not fit table %s", gapsync.ErrMalformed, t.Name)
		}
	}
	return int(phase), vals, nil
}
