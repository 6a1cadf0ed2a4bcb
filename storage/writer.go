package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// Apply writes a batch into its table, idempotently: the rows are upserted
// (or deleted) by primary key and the batch id is recorded in the
// sync_applied ledger in the same transaction. A batch whose id is already
// in the ledger is not applied again; its first result comes back with
// Duplicate set.
//
// The rules (idempotence, references, and for a table configured here for
// both directions the version ledger, conflicts and tombstones) are
// rules.Apply's; this adapter gives it the checks and the
// transaction-scoped statements (applier and applyTx below). An incoming
// row whose key has a local change that has not travelled yet is a
// conflict: it is left as it is, and its local version comes back in
// Result.Conflicts for the coordinator to settle; a batch flagged
// batch.FlagForce is applied without that check.
//
// Before anything is written, Apply refuses (with the matching gapsync
// sentinel) a table not enabled in this side's sync_config for the batch's
// direction, identifiers that are not valid, columns the table does not
// have, a batch that lacks or mislabels the configured key, rows whose
// values do not match the columns, and a row larger than
// Options.MaxStatementBytes. The statements are plain multi-row
// INSERT … ON DUPLICATE KEY UPDATE (MySQL) or INSERT … ON CONFLICT DO
// UPDATE (PostgreSQL, SQLite), sized by Options.MaxStatementRows and MaxStatementBytes,
// through server-side prepared statements, and DELETE by key for deletes;
// PostgreSQL upserts a page in one statement of column arrays, and copies
// the new rows of a first load's page in (applyTx.InsertNew).
func (db *DB) Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error) {
	res, err := rules.Apply(ctx, applier{db}, b)
	// A value the table cannot store fails again on every retry: it is
	// marked gapsync.ErrRejected (storage/errors.go).
	return res, classify(err)
}

// applier is the DB as rules.Apply consumes it.
type applier struct{ db *DB }

var _ rules.Applier = applier{}

func (a applier) Check(ctx context.Context, b *batch.Batch) (rules.Plan, error) {
	t, names, missing, err := a.db.checkBatch(ctx, b)
	return rules.Plan{Table: t, Names: names, Missing: missing}, err
}

func (a applier) Applied(ctx context.Context, id string) (gapsync.Result, bool, error) {
	return a.db.applied(ctx, id)
}

func (a applier) MapForeign(ctx context.Context, refs []string) (map[string]string, error) {
	return a.db.MapForeign(ctx, refs)
}

func (a applier) Ready(ctx context.Context, p *rules.Plan, b *batch.Batch) error {
	db, t := a.db, p.Table
	if err := db.checkBatchAge(ctx, b.ID); err != nil {
		return err
	}
	// Values in this engine's form, and refused here when a column
	// cannot hold them exactly (values.go).
	if err := db.adaptValues(ctx, t, p.Names, b); err != nil {
		return err
	}
	if t.Direction != gapsync.Both {
		return nil
	}
	if err := db.freshColumns(ctx, t.Name); err != nil {
		return err
	}
	var err error
	if p.Tombstones, err = db.hasTombstones(ctx, t.Name); err != nil {
		return err
	}
	if p.ReadBack, err = db.needsReadBack(ctx, t.Name, p.Names, b); err != nil {
		return err
	}
	if p.Sent, err = db.sentNames(ctx, t); err != nil {
		return err
	}
	_, kind, err := db.shape(ctx, t)
	p.IntegerCursor = kind == kindInteger
	return err
}

// BeginApply: a page of a first load runs on a connection of its own
// where the rows may be copied in (see InsertNew).
func (a applier) BeginApply(ctx context.Context, p rules.Plan) (rules.ApplyTx, error) {
	x := &applyTx{db: a.db}
	var err error
	if p.Load && a.db.copies() {
		if x.conn, err = a.db.sql.Conn(ctx); err != nil {
			return nil, err
		}
		if x.tx, err = x.conn.BeginTx(ctx, nil); err != nil {
			x.conn.Close()
			return nil, err
		}
		return x, nil
	}
	if x.tx, err = a.db.sql.BeginTx(ctx, nil); err != nil {
		return nil, err
	}
	return x, nil
}

// applyTx is one batch's transaction on this database.
type applyTx struct {
	db       *DB
	tx       *sql.Tx
	conn     *sql.Conn // the transaction's connection, held for COPY; nil: not held
	versions int       // ledger entries written, reported once committed
	origins  int
}

var (
	_ rules.ApplyTx        = (*applyTx)(nil)
	_ rules.NewRowInserter = (*applyTx)(nil)
)

func (x *applyTx) Rows(ctx context.Context, table string, names, key []string, keys [][]any, lock bool) (map[string][]any, error) {
	suffix := ""
	if lock {
		suffix = x.db.d.lockRows()
	}
	return x.db.lookupLocked(ctx, x.tx, table, names, key, keys, suffix)
}

func (x *applyTx) Tombstones(ctx context.Context, t gapsync.Table, keys [][]any) (map[string][]any, error) {
	return x.db.lookup(ctx, x.tx, TombstoneTable(t.Name), x.db.tombstoneCols(ctx, t), t.Key, keys)
}

func (x *applyTx) WriteTombstones(ctx context.Context, t gapsync.Table, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := append(append([]string{}, t.Key...), tombstoneAt)
	if len(rows[0]) > len(cols) {
		cols = append(cols, tombstoneCursor)
	}
	for start := 0; start < len(rows); start += 500 {
		end := min(start+500, len(rows))
		var args []any
		for _, r := range rows[start:end] {
			if len(r) != len(cols) {
				return fmt.Errorf("%w: a tombstone of %s has %d values for %d columns", gapsync.ErrMalformed, t.Name, len(r), len(cols))
			}
			args = append(args, r...)
		}
		if _, err := x.tx.ExecContext(ctx, x.db.d.Upsert(TombstoneTable(t.Name), cols, t.Key, end-start), args...); err != nil {
			return err
		}
	}
	return nil
}

func (x *applyTx) Versions(ctx context.Context, table string, khs []string) (map[string]string, error) {
	return x.db.versions(ctx, x.tx, table, khs)
}

func (x *applyTx) RecordVersions(ctx context.Context, table string, khs, hashes []string) error {
	x.versions += len(khs)
	return x.db.recordVersions(ctx, x.tx, table, khs, hashes)
}

func (x *applyTx) Upsert(ctx context.Context, table string, names, key []string, rows []batch.Row) (int64, error) {
	if _, ok := x.db.d.(arrayUpserter); ok {
		// One statement a page, cut by bytes alone: the arrays take no
		// parameter a value.
		chunks, err := x.db.chunkBy(rows, len(rows))
		if err != nil {
			return 0, err
		}
		wnames, wchunks := x.db.writable(ctx, table, names, chunks)
		return x.db.arrayUpserts(ctx, x.tx, table, wnames, key, wchunks)
	}
	chunks, err := x.db.chunk(rows)
	if err != nil {
		return 0, err
	}
	wnames, wchunks := x.db.writable(ctx, table, names, chunks)
	return x.db.upsert(ctx, x.tx, table, wnames, key, wchunks)
}

// newRowsSavepoint guards InsertNew's COPY: a row that is there after all
// undoes the COPY alone, and the rows are upserted instead.
const newRowsSavepoint = "gapsync_new_rows"

// InsertNew copies rows into table where the database and the device
// between take COPY (PostgreSQL behind a device that passes everything):
// one COPY in a savepoint, and where it fails (a key that has a row after
// all, or a value the table refuses) back to the savepoint and the rows
// through Upsert, which writes them or refuses them as it always does.
// Elsewhere it is Upsert.
func (x *applyTx) InsertNew(ctx context.Context, table string, names, key []string, rows []batch.Row) (int64, error) {
	cp, ok := x.db.d.(copier)
	if !ok || x.conn == nil {
		return x.Upsert(ctx, table, names, key, rows)
	}
	chunks, err := x.db.chunkBy(rows, len(rows)) // a row over the statement cap is refused here too
	if err != nil {
		return 0, err
	}
	wnames, wchunks := x.db.writable(ctx, table, names, chunks)
	var buf []byte
	if p, _ := copyBufs.Get().(*[]byte); p != nil {
		buf = (*p)[:0]
	}
	defer func() {
		if cap(buf) <= maxPooledCopy {
			b := buf[:0]
			copyBufs.Put(&b)
		}
	}()
	for i, c := range wchunks {
		for j, r := range c {
			if buf, ok = cp.copyRow(buf, r.Values); !ok {
				return x.Upsert(ctx, table, names, key, rows)
			}
			if want := min(len(buf)*len(rows)*3/2, maxPooledCopy); i == 0 && j == 0 && cap(buf) < want {
				// Room for the page at the first row's size and a half.
				buf = append(make([]byte, 0, want), buf...)
			}
		}
	}
	if _, err := x.tx.ExecContext(ctx, "SAVEPOINT "+newRowsSavepoint); err != nil {
		return 0, err
	}
	n, err := pgCopyFrom(ctx, x.conn, cp.copyIn(table, wnames), bytes.NewReader(buf))
	if testHookCopied != nil {
		testHookCopied(table, n, err)
	}
	if err != nil {
		if _, rerr := x.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+newRowsSavepoint); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
		x.db.opts.Logger.Debug("rows of a first load copied in part; they are upserted", "table", table, "rows", len(rows), "why", err)
		return x.Upsert(ctx, table, names, key, rows)
	}
	_, err = x.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+newRowsSavepoint)
	return n, err
}

func (x *applyTx) Delete(ctx context.Context, table string, key []string, keys [][]any) (int64, error) {
	return x.db.delete(ctx, x.tx, table, key, keys)
}

func (x *applyTx) RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error) {
	return x.db.foreignRefs(ctx, x.tx, table, khs)
}

func (x *applyTx) ChangeRefOrigins(ctx context.Context, table string, drop [][2]string, add []rules.RefOrigin) error {
	x.origins += len(add)
	return x.db.changeOrigins(ctx, x.tx, table, drop, add)
}

func (x *applyTx) MarkApplied(ctx context.Context, b *batch.Batch, res gapsync.Result) (string, bool, error) {
	now := time.Now().UTC().Format(timeLayout)
	led := "INSERT INTO sync_applied (batch_id, table_name, direction, rows_in, rows_written, bytes, conflicts, applied_at) VALUES (?,?,?,?,?,?,?,?) " +
		x.db.onDuplicateNothing("batch_id")
	r, err := x.tx.ExecContext(ctx, led, b.ID, b.Table, b.Direction, res.Rows, res.Written, res.Bytes, res.Conflicts, now)
	if err != nil {
		return "", false, err
	}
	n, _ := r.RowsAffected()
	return now, n > 0, nil
}

func (x *applyTx) Commit() error {
	err := x.tx.Commit()
	x.release()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if x.versions > 0 {
		x.db.noteLedger(ctx, "sync_row_version", x.versions)
	}
	if x.origins > 0 {
		x.db.noteLedger(ctx, "sync_ref_origin", x.origins)
	}
	return nil
}

func (x *applyTx) Rollback() error {
	err := x.tx.Rollback()
	x.release()
	return err
}

// release gives a held connection back to the pool.
func (x *applyTx) release() {
	if x.conn != nil {
		x.conn.Close()
		x.conn = nil
	}
}

// copyBufs holds InsertNew's buffers between pages (a *[]byte each), so
// that a first load does not allocate and clear one of some megabytes a
// page.
var copyBufs sync.Pool

// maxPooledCopy is the largest buffer copyBufs keeps, and the most
// InsertNew sizes one at first.
const maxPooledCopy = 64 << 20

// testHookCopied, when set by a test, sees every COPY of InsertNew.
var testHookCopied func(table string, rows int64, err error)

// copier is a dialect that can load rows with COPY (PostgreSQL).
type copier interface {
	copyIn(table string, cols []string) string
	copyRow(dst []byte, vals []any) ([]byte, bool)
}

// copies reports whether InsertNew may COPY here: the dialect can, and the
// isolation device passes everything (COPY is no plain statement, and
// its rows are not sized against a packet limit).
func (db *DB) copies() bool {
	_, ok := db.d.(copier)
	p := db.opts.Device
	return ok && !p.TextOnly && p.MaxPacket == 0 && len(p.Statements) == 0
}

// arrayUpserter is a dialect that can upsert many rows with one array
// parameter a column (PostgreSQL); false: write a VALUES list instead.
type arrayUpserter interface {
	arrayUpsert(table string, cols, types, key []string, rows []batch.Row) (Query, bool)
}

// arrayUpserts runs one statement of column arrays a chunk (chunks cut
// by bytes alone); a chunk the dialect cannot write so goes as VALUES
// lists, cut to their limits.
func (db *DB) arrayUpserts(ctx context.Context, tx *sql.Tx, table string, names, key []string, chunks [][]batch.Row) (int64, error) {
	au := db.d.(arrayUpserter)
	types := db.typesOf(ctx, table, names)
	var written int64
	for _, rows := range chunks {
		if q, ok := au.arrayUpsert(table, names, types, key, rows); ok {
			r, err := tx.ExecContext(ctx, q.SQL, q.Args...)
			if err != nil {
				return written, err
			}
			n, _ := r.RowsAffected()
			written += n
			continue
		}
		lists, err := db.chunk(rows)
		if err != nil {
			return written, err
		}
		n, err := db.upsert(ctx, tx, table, names, key, lists)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// upsert runs the multi-row upserts as VALUES lists, preparing the
// full-size statement once and reusing it.
func (db *DB) upsert(ctx context.Context, tx *sql.Tx, table string, names, key []string, chunks [][]batch.Row) (int64, error) {
	var (
		stmt     *sql.Stmt
		stmtRows int
		args     []any
		written  int64
	)
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	for _, rows := range chunks {
		args = args[:0]
		for _, r := range rows {
			args = append(args, r.Values...)
		}
		var (
			r   sql.Result
			err error
		)
		switch {
		case stmt != nil && len(rows) == stmtRows:
			r, err = stmt.ExecContext(ctx, args...)
		case stmt == nil && len(chunks) > 1:
			if stmt, err = tx.PrepareContext(ctx, db.d.Upsert(table, names, key, len(rows))); err == nil {
				stmtRows = len(rows)
				r, err = stmt.ExecContext(ctx, args...)
			}
		default:
			r, err = tx.ExecContext(ctx, db.d.Upsert(table, names, key, len(rows)), args...)
		}
		if err != nil {
			return written, err
		}
		n, _ := r.RowsAffected()
		written += n
	}
	return written, nil
}

// writable leaves out of chunks the columns of names that are generated
// here (PostgreSQL and MySQL refuse a value for one; the database computes
// it), returning the column names to write and the projected rows.
func (db *DB) writable(ctx context.Context, table string, names []string, chunks [][]batch.Row) ([]string, [][]batch.Row) {
	cols, err := db.columns(ctx, table)
	if err != nil {
		return names, chunks
	}
	var keep []int
	var kept []string
	for i, n := range names {
		if c, ok := findColumn(cols, n); !ok || !c.Gen {
			keep, kept = append(keep, i), append(kept, n)
		}
	}
	if len(keep) == len(names) {
		return names, chunks
	}
	out := make([][]batch.Row, len(chunks))
	for i, rows := range chunks {
		out[i] = make([]batch.Row, len(rows))
		for j, r := range rows {
			out[i][j] = batch.Row{Op: r.Op, Values: rules.Pick(r.Values, keep)}
		}
	}
	return kept, out
}

// delete removes rows by key, in statements of at most 500 keys.
func (db *DB) delete(ctx context.Context, tx *sql.Tx, table string, key []string, keys [][]any) (int64, error) {
	var written int64
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		where, args := keyMatch(db.d, "", key, keys[start:end])
		r, err := tx.ExecContext(ctx, "DELETE FROM "+db.d.Quote(table)+" WHERE "+where, args...)
		if err != nil {
			return written, err
		}
		n, _ := r.RowsAffected()
		written += n
	}
	return written, nil
}

// tombstoneCols are the columns of t's tombstones: the key, the deletion
// time and, for an integer cursor, the deleted row's last cursor.
func (db *DB) tombstoneCols(ctx context.Context, t gapsync.Table) []string {
	out := append(append([]string{}, t.Key...), tombstoneAt)
	if _, kind, err := db.shape(ctx, t); err == nil && kind == kindInteger {
		out = append(out, tombstoneCursor)
	}
	return out
}

// needsReadBack reports whether the rows written to table with the
// columns names must be read back before they are hashed: see
// readBackPlan. The table's part comes from the cached table shape.
func (db *DB) needsReadBack(ctx context.Context, table string, names []string, b *batch.Batch) (bool, error) {
	cols, err := db.columns(ctx, table)
	if err != nil {
		return false, err
	}
	eff, err := db.effects(ctx, table)
	if err != nil {
		return false, err
	}
	rb := readBackPlan(db.d, eff, cols, names, b.Rows) || typesDiffer(cols, b.Columns)
	if testHookReadBack != nil {
		testHookReadBack(table, rb)
	}
	return rb, nil
}

// typesDiffer reports whether a column of the batch was declared with
// another type where it was read (another engine, or DATETIME(0) there
// and DATETIME(6) here): its values then come in a form this table may
// not store as is. An empty type (a peer that did not say) counts as
// the same.
func typesDiffer(cols []column, bcols []batch.Column) bool {
	for _, bc := range bcols {
		if bc.Type == "" {
			continue
		}
		if c, ok := findColumn(cols, bc.Name); ok && !strings.EqualFold(strings.TrimSpace(c.Type), strings.TrimSpace(bc.Type)) {
			return true
		}
	}
	return false
}

// testHookReadBack, when set by a test, sees every read-back decision.
var testHookReadBack func(table string, readBack bool)

// readBackPlan is needsReadBack's decision. What is stored may differ from
// what an upsert writes when the table has a trigger that may change the
// row, an ON UPDATE clause or a generated column; when the write omits one
// of its columns (which takes its default); or when a value is not in the
// form this database gives back for its column (text from SQLite into a
// MariaDB column, a number into an SQLite TEXT column): the hash must be
// of the stored form, the one the next scan sees.
func readBackPlan(d dialect, eff writeEffects, cols []column, names []string, rows []batch.Row) bool {
	if eff.triggers || eff.onUpdate || eff.generated || len(names) != len(cols) {
		return true
	}
	types := make([]string, len(names))
	for i, n := range names {
		c, ok := findColumn(cols, n)
		if !ok {
			return true
		}
		types[i] = strings.ToLower(c.Type)
	}
	classes := make([]valueClass, len(names))
	for i, t := range types {
		classes[i] = d.valueClass(t)
	}
	for _, r := range rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		for i, v := range r.Values {
			if !classes[i].native(v) {
				return true
			}
		}
	}
	return false
}

// valueClass is which Go values a column gives back as they were written.
type valueClass int

const (
	classBytes   valueClass = iota // MySQL: []byte (text, decimals, times, blobs)
	classMyInt                     // MySQL integer types: int64 or uint64
	classInt                       // SQLite INTEGER or NUMERIC affinity
	classFloat32                   // MySQL FLOAT
	classFloat64                   // MySQL DOUBLE
	classText                      // SQLite TEXT affinity
	classReal                      // SQLite REAL affinity
	classAny                       // SQLite BLOB affinity: stored as given
	classPGText                    // PostgreSQL, read as text: string
	classPGBytes                   // PostgreSQL bytea: []byte
)

// native reports whether v comes back from a column of class c exactly
// as written (same Go type, same value).
func (c valueClass) native(v any) bool {
	if v == nil {
		return true
	}
	switch c {
	case classBytes, classPGBytes:
		_, ok := v.([]byte)
		return ok
	case classPGText:
		_, ok := v.(string)
		return ok
	case classMyInt:
		switch v.(type) {
		case int64, uint64:
			return true
		}
	case classInt:
		switch x := v.(type) {
		case int64, uint64, []byte:
			return true
		case string:
			return !numeric(x) // SQLite would store numeric text as a number
		}
	case classFloat32:
		_, ok := v.(float32)
		return ok
	case classFloat64:
		_, ok := v.(float64)
		return ok
	case classText:
		switch v.(type) {
		case string, []byte:
			return true
		}
	case classReal:
		switch x := v.(type) {
		case float64, []byte:
			return true
		case string:
			return !numeric(x)
		}
	case classAny:
		return true
	}
	return false
}

// numeric reports whether SQLite might take s for a number (it converts
// text that is a well-formed integer or real literal, spaces around it
// allowed); ParseFloat accepts a little more, which only costs a read-back.
func numeric(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

// keyIn matches the rows whose key is one of keys: k IN (?,…) for a
// single-column key, (k1,k2) IN ((?,?),…) otherwise (IN (VALUES …) on
// SQLite); one short
// condition the optimiser turns into key lookups.
func keyIn(d dialect, key []string, keys [][]any) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(keys)*len(key))
	if len(key) == 1 {
		b.WriteString(d.Quote(key[0]) + " IN (")
	} else {
		b.WriteByte('(')
		for j, k := range key {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d.Quote(k))
		}
		b.WriteString(") IN (")
		b.WriteString(d.rowValueList())
	}
	for i, kv := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if len(key) > 1 {
			b.WriteByte('(')
		}
		for j := range key {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args = append(args, kv[j])
		}
		if len(key) > 1 {
			b.WriteByte(')')
		}
	}
	b.WriteByte(')')
	return b.String(), args
}

// keysPerStatement is how many keys one keyIn statement carries: at most
// 1,000, and within the dialect's placeholder limit.
func keysPerStatement(d dialect, key []string) int {
	return max(1, min(1000, d.placeholderLimit()/max(1, len(key))))
}

// typesOf returns the declared types of table's columns names, from the
// cached shape; "" for a column not found there.
func (db *DB) typesOf(ctx context.Context, table string, names []string) []string {
	out := make([]string, len(names))
	cols, err := db.columns(ctx, table)
	if err != nil {
		return out
	}
	for i, n := range names {
		if c, ok := findColumn(cols, n); ok {
			out[i] = c.Type
		}
	}
	return out
}

// lookup reads the rows of table with the given keys, keyed by keyHash.
func (db *DB) lookup(ctx context.Context, q sqlQueryer, table string, names, key []string, keys [][]any) (map[string][]any, error) {
	return db.lookupLocked(ctx, q, table, names, key, keys, "")
}

// lookupLocked is lookup with a suffix (a dialect's lockRows) after each
// SELECT.
func (db *DB) lookupLocked(ctx context.Context, q sqlQueryer, table string, names, key []string, keys [][]any, suffix string) (map[string][]any, error) {
	out := make(map[string][]any, len(keys))
	keyPos := rules.Positions(names, key)
	sel := make([]string, len(names))
	types := db.typesOf(ctx, table, names)
	for i, n := range names {
		sel[i] = db.d.SelectExpr(n, types[i])
	}
	per := keysPerStatement(db.d, key)
	for start := 0; start < len(keys); start += per {
		end := min(start+per, len(keys))
		where, args := keyIn(db.d, key, keys[start:end])
		rows, err := q.QueryContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+db.d.Quote(table)+" WHERE "+where+suffix, args...)
		if err != nil {
			return nil, fmt.Errorf("storage: look up %s: %w", table, err)
		}
		found, err := scanAll(rows, len(names))
		if err != nil {
			return nil, err
		}
		for _, vals := range found {
			out[rules.KeyHash(rules.Pick(vals, keyPos))] = vals
		}
	}
	return out, nil
}

// checkBatch validates b against this side's configuration and the target
// table, and returns the column names and the configured key. Columns of
// the batch that the table lacks (added on the sending side only) are
// taken out of b and returned as missing: the shared columns are written
// and the sender learns which were not (gapsync.Result.Missing). A key
// column, or the cursor of a two-way table, cannot be missing.
func (db *DB) checkBatch(ctx context.Context, b *batch.Batch) (t gapsync.Table, names, missing []string, err error) {
	if b.ID == "" {
		return t, nil, nil, fmt.Errorf("%w: batch has no id", gapsync.ErrMalformed)
	}
	d := gapsync.Direction(b.Direction)
	if d != gapsync.Push && d != gapsync.Pull {
		return t, nil, nil, fmt.Errorf("%w: batch direction %q", gapsync.ErrMalformed, b.Direction)
	}
	t, err = db.Table(ctx, b.Table, d)
	if err != nil {
		return t, nil, nil, err
	}
	want := make([]string, len(b.Columns))
	seen := make(map[string]bool, len(b.Columns))
	for i, c := range b.Columns {
		if err := gapsync.ValidIdentifier(c.Name); err != nil {
			return t, nil, nil, fmt.Errorf("batch %s column: %w", b.ID, err)
		}
		if seen[strings.ToLower(c.Name)] {
			return t, nil, nil, fmt.Errorf("%w: batch %s names column %s twice", gapsync.ErrMalformed, b.ID, c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		want[i] = c.Name
	}
	for i, r := range b.Rows {
		if len(r.Values) != len(b.Columns) {
			return t, nil, nil, fmt.Errorf("%w: row %d has %d values for %d columns", gapsync.ErrMalformed, i, len(r.Values), len(b.Columns))
		}
	}
	cols, err := db.columnsHaving(ctx, t.Name, want)
	if err != nil {
		return t, nil, nil, err
	}
	var keep []int
	for i, c := range b.Columns {
		if c.Key != contains(t.Key, c.Name) {
			return t, nil, nil, fmt.Errorf("%w: %s.%s key flag disagrees with sync_config", gapsync.ErrMalformed, t.Name, c.Name)
		}
		if _, ok := findColumn(cols, c.Name); !ok {
			if c.Key || (t.Direction == gapsync.Both && c.Name == t.Cursor) {
				return t, nil, nil, fmt.Errorf("%w: %s.%s", gapsync.ErrUnknownColumn, t.Name, c.Name)
			}
			missing = append(missing, c.Name)
			continue
		}
		keep = append(keep, i)
	}
	if len(missing) > 0 {
		dropColumns(b, keep)
	}
	names = make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	for _, k := range t.Key {
		if !contains(names, k) {
			return t, nil, nil, fmt.Errorf("%w: batch %s lacks key column %s.%s", gapsync.ErrUnknownColumn, b.ID, t.Name, k)
		}
	}
	if t.Direction == gapsync.Both && !contains(names, t.Cursor) {
		return t, nil, nil, fmt.Errorf("%w: batch %s lacks cursor column %s.%s", gapsync.ErrUnknownColumn, b.ID, t.Name, t.Cursor)
	}
	return t, names, missing, nil
}

// sentNames are the columns this side reads of t for sending, the form
// its page reader hashes rows in for echo suppression.
func (db *DB) sentNames(ctx context.Context, t gapsync.Table) ([]string, error) {
	cols, _, err := db.shape(ctx, t)
	if err != nil {
		return nil, err
	}
	cols = sentColumns(t, cols)
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out, nil
}

// dropColumns keeps only the columns of b at the positions keep (in
// order), in the column list and in every row.
func dropColumns(b *batch.Batch, keep []int) {
	cols := make([]batch.Column, len(keep))
	for j, i := range keep {
		cols[j] = b.Columns[i]
	}
	b.Columns = cols
	for r := range b.Rows {
		vals := make([]any, len(keep))
		for j, i := range keep {
			vals[j] = b.Rows[r].Values[i]
		}
		b.Rows[r].Values = vals
	}
}

// chunk splits rows into statements that respect the row, byte and
// placeholder limits.
func (db *DB) chunk(rows []batch.Row) ([][]batch.Row, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	maxRows := db.opts.MaxStatementRows
	if n := db.d.placeholderLimit() / len(rows[0].Values); n < maxRows {
		maxRows = n
	}
	return db.chunkBy(rows, maxRows)
}

// chunkBy splits rows into statements of at most maxRows rows and
// MaxStatementBytes, refusing a row larger than that cap.
func (db *DB) chunkBy(rows []batch.Row, maxRows int) ([][]batch.Row, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	var out [][]batch.Row
	start, size := 0, 0
	for i, r := range rows {
		s := db.stmtSize(r)
		if s > db.opts.MaxStatementBytes {
			return nil, fmt.Errorf("%w: row %d is %d bytes, over the %d-byte statement cap", gapsync.ErrTooLarge, i, s, db.opts.MaxStatementBytes)
		}
		if i > start && (i-start == maxRows || size+s > db.opts.MaxStatementBytes) {
			out = append(out, rows[start:i])
			start, size = i, 0
		}
		size += s
	}
	return append(out, rows[start:]), nil
}

// applied returns the ledger entry for a batch id.
func (db *DB) applied(ctx context.Context, id string) (gapsync.Result, bool, error) {
	var a AppliedRow
	err := db.bun.NewSelect().Model(&a).Where("batch_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return gapsync.Result{}, false, nil
	}
	if err != nil {
		return gapsync.Result{}, false, fmt.Errorf("storage: read ledger: %w", err)
	}
	return gapsync.Result{
		BatchID: a.BatchID, Table: a.TableName, Rows: a.Rows, Written: a.Written, Bytes: a.Bytes,
		Duplicate: true, Conflicts: a.Conflicts, AppliedAt: a.AppliedAt.UTC().Format(timeLayout),
	}, true, nil
}

// A batch's values are in the form of the engine that read them: MySQL
// gives bytes and numbers, PostgreSQL text and bytes, SQLite its storage
// classes. Before a batch is applied, adaptValues puts each value into the
// form this engine takes for its column (dialect.writeValue) and refuses,
// naming the table, key and column, a value the column cannot hold as it
// is: a MySQL zero date in PostgreSQL, or more fraction digits than a
// time or decimal column keeps (which an engine would round in silence).
// The mapping between engines is the README's type table.

// colSpec is what adaptValues needs of a column's declared type.
type colSpec struct {
	typ   string // lower case
	frac  int    // fraction digits a time or decimal column keeps; -1: not such a column
	time  bool   // a date, time or timestamp column
	bytes bool   // a binary column (bytea, BLOB, BINARY, BIT)
}

var (
	precisionRe = regexp.MustCompile(`\((\d+)\)`)
	scaleRe     = regexp.MustCompile(`^(?:decimal|numeric|dec|fixed)\s*\(\s*\d+\s*,\s*(\d+)\s*\)`)
)

// specOf reads a declared type as the dialect reports it.
func specOf(d dialect, typ string) colSpec {
	t := strings.ToLower(strings.TrimSpace(typ))
	s := colSpec{typ: t, frac: -1}
	if strings.HasSuffix(t, "[]") {
		return s
	}
	switch {
	case strings.HasPrefix(t, "datetime"), strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "time"):
		s.time = true
		s.frac = d.defaultTimePrecision()
		if m := precisionRe.FindStringSubmatch(t); m != nil {
			s.frac, _ = strconv.Atoi(m[1])
		}
	case t == "date":
		s.time = true
	case strings.HasPrefix(t, "decimal"), strings.HasPrefix(t, "numeric"), strings.HasPrefix(t, "dec("), strings.HasPrefix(t, "fixed"):
		if m := scaleRe.FindStringSubmatch(t); m != nil {
			s.frac, _ = strconv.Atoi(m[1])
		} else if !strings.Contains(t, "(") {
			s.frac = d.defaultDecimalScale()
		} else if m := precisionRe.FindStringSubmatch(t); m != nil {
			s.frac = 0 // DECIMAL(p): no fraction
		}
	}
	s.bytes = t == "bytea" || strings.Contains(t, "blob") || strings.Contains(t, "binary") || strings.HasPrefix(t, "bit")
	return s
}

// adaptValues gives b's rows their values in this engine's form (see
// above), in new slices.
func (db *DB) adaptValues(ctx context.Context, t gapsync.Table, names []string, b *batch.Batch) error {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return err
	}
	specs := make([]colSpec, len(names))
	for i, n := range names {
		c, _ := findColumn(cols, n)
		specs[i] = specOf(db.d, c.Type)
	}
	keyPos := rules.Positions(names, t.Key)
	var slab []any
	for k, r := range b.Rows {
		// Each row gets values of its own: the caller's may be shared
		// (several batches built from one set of rows, applied at once).
		// They are cut from one slice for the batch, each capped at its
		// length.
		n := len(r.Values)
		if len(slab) < n {
			slab = make([]any, max(n*(len(b.Rows)-k), n))
		}
		out := slab[:n:n]
		slab = slab[n:]
		for i, v := range r.Values {
			if v == nil {
				continue
			}
			nv, err := fitValue(db.d, specs[i], v)
			if err != nil {
				return fmt.Errorf("%w: table %s, key %s, column %s (%s): %v", gapsync.ErrRejected, t.Name,
					keyString(rules.Pick(r.Values, keyPos)), names[i], specs[i].typ, err)
			}
			out[i] = nv
		}
		b.Rows[k].Values = out
	}
	return nil
}

// fitValue checks that v fits s exactly and returns it in the dialect's
// write form.
func fitValue(d dialect, s colSpec, v any) (any, error) {
	if s.frac >= 0 || s.time {
		var text string
		switch x := v.(type) {
		case []byte:
			text = string(x)
		case string:
			text = x
		}
		if s.frac >= 0 {
			if n := fractionDigits(text, s.time); n > s.frac {
				return nil, fmt.Errorf("value %q has %d significant fraction digits and the column keeps %d: it would be rounded; widen the column", clip(text), n, s.frac)
			}
		}
	}
	return d.writeValue(s, v)
}

// fractionDigits counts the digits after the decimal point of a number or
// of a time's seconds, less trailing zeros.
func fractionDigits(s string, isTime bool) int {
	if isTime {
		// The seconds' fraction: after the last '.', up to a zone or era.
		i := strings.LastIndexByte(s, '.')
		if i < 0 || strings.IndexByte(s[:i], ':') < 0 {
			return 0
		}
		s = s[i+1:]
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		return len(strings.TrimRight(s[:end], "0"))
	}
	i := strings.IndexByte(s, '.')
	if i < 0 || strings.IndexByte(s, 'e') >= 0 || strings.IndexByte(s, 'E') >= 0 {
		return 0
	}
	return len(strings.TrimRight(s[i+1:], "0"))
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// keyString is a key's values as an operator reads them.
func keyString(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case []byte:
			parts[i] = strconv.Quote(string(x))
		case string:
			parts[i] = strconv.Quote(x)
		default:
			parts[i] = fmt.Sprint(x)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// textOf is v as text, the form every engine parses for every type.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// sqlQueryer is a *sql.DB or a *sql.Tx.
type sqlQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// versions reads the version ledger for keys of table.
func (db *DB) versions(ctx context.Context, q sqlQueryer, table string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		args := []any{table}
		for _, k := range keys[start:end] {
			args = append(args, k)
		}
		rows, err := q.QueryContext(ctx, "SELECT key_hash, row_hash FROM sync_row_version WHERE table_name = ? AND key_hash IN ("+
			strings.TrimSuffix(strings.Repeat("?,", end-start), ",")+")", args...)
		if err != nil {
			return nil, fmt.Errorf("storage: read version ledger: %w", err)
		}
		for rows.Next() {
			var k, h string
			if err := rows.Scan(&k, &h); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordVersions upserts the version ledger for applied rows.
func (db *DB) recordVersions(ctx context.Context, q sqlQueryer, table string, keys, hashes []string) error {
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		var sb strings.Builder
		sb.WriteString("INSERT INTO sync_row_version (table_name, key_hash, row_hash) VALUES ")
		args := make([]any, 0, 3*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?)")
			args = append(args, table, keys[i], hashes[i])
		}
		sb.WriteString(" " + db.d.onConflict([]string{"table_name", "key_hash"}, []string{"row_hash"}))
		if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("storage: write version ledger: %w", err)
		}
	}
	return nil
}

// scanAll reads every row of rows as n values each, NULL as nil and an
// empty BLOB as a non-nil empty []byte, and closes rows.
func scanAll(rows *sql.Rows, n int) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	ptrs := make([]any, n)
	for rows.Next() {
		vals := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = rules.Normalize(v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
