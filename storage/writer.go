package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// For a table configured here for both directions, Apply also keeps the
// row-version ledger (so that what arrived is not sent back) and settles
// nothing by itself: an incoming row whose key has a local change that has
// not travelled yet (a local row or deletion that differs, that sync did
// not write, and whose cursor is at or after b.Since) is a conflict. It is
// left as it is, and its local version comes back in Result.Conflicts for
// the coordinator to settle; a batch flagged batch.FlagForce is applied
// without that check.
//
// Before anything is written, Apply refuses (with the matching gapsync
// sentinel) a table not enabled in this side's sync_config for the batch's
// direction, identifiers that are not valid, columns the table does not
// have, a batch that lacks or mislabels the configured key, rows whose
// values do not match the columns, and a row larger than
// Options.MaxStatementBytes. The statements are plain multi-row
// INSERT … ON DUPLICATE KEY UPDATE (MySQL) or INSERT … ON CONFLICT DO
// UPDATE (PostgreSQL, SQLite), sized by Options.MaxStatementRows and MaxStatementBytes,
// through server-side prepared statements, and DELETE by key for deletes.
func (db *DB) Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error) {
	res := gapsync.Result{BatchID: b.ID, Table: b.Table, Rows: len(b.Rows), Bytes: b.Bytes()}
	t, names, missing, err := db.checkBatch(ctx, b)
	if err != nil {
		return res, err
	}
	res.Missing = missing
	if prev, ok, err := db.applied(ctx, b.ID); err != nil {
		return res, err
	} else if ok {
		prev.Missing = missing
		return prev, nil
	}
	if err := db.checkBatchAge(ctx, b.ID); err != nil {
		return res, fmt.Errorf("apply %s batch: %w", b.Table, err)
	}
	fail := func(err error) (gapsync.Result, error) {
		// A value the table cannot store fails again on every retry:
		// it is marked gapsync.ErrRejected (storage/errors.go).
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, classify(err))
	}
	// Values in this engine's form, and refused here when a column
	// cannot hold them exactly (values.go).
	if err := db.adaptValues(ctx, t, names, b); err != nil {
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
	}
	// The references as they arrived: the other side's (recordOrigins).
	arrived := arrivingRefs(t, names, b)
	// References to the other side's files that are published here
	// become this side's addresses before anything is hashed or written.
	if err := db.localizeRefs(ctx, t, b); err != nil {
		return fail(err)
	}
	var upserts []batch.Row
	var deletes [][]any
	keyPos := rules.Positions(names, t.Key)
	for _, r := range b.Rows {
		if r.Op == batch.OpDelete {
			deletes = append(deletes, rules.Pick(r.Values, keyPos))
		} else {
			upserts = append(upserts, r)
		}
	}
	chunks, err := db.chunk(upserts)
	if err != nil {
		return fail(err)
	}
	// Everything read outside the transaction is read before it begins:
	// on SQLite a transaction that waits for a second pooled connection
	// can deadlock with writers queued behind it.
	tombs, readBack := false, false
	if t.Direction == gapsync.Both {
		if err := db.freshColumns(ctx, t.Name); err != nil {
			return fail(err)
		}
		if tombs, err = db.hasTombstones(ctx, t.Name); err != nil {
			return fail(err)
		}
		if readBack, err = db.needsReadBack(ctx, t.Name, names, b); err != nil {
			return fail(err)
		}
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	rows := b.Rows
	var local map[string][]any // the rows here before the batch (two-way tables)
	if t.Direction == gapsync.Both {
		var conflicts []batch.Row
		if rows, conflicts, local, err = db.settle(ctx, tx, t, names, b, tombs); err != nil {
			return fail(err)
		}
		if len(conflicts) > 0 {
			cb := &batch.Batch{ID: b.ID, Table: b.Table, Columns: b.Columns, Rows: conflicts}
			if res.Conflicts, err = cb.MarshalBinary(); err != nil {
				return fail(err)
			}
			upserts, deletes = upserts[:0], deletes[:0]
			for _, r := range rows {
				if r.Op == batch.OpDelete {
					deletes = append(deletes, rules.Pick(r.Values, keyPos))
				} else {
					upserts = append(upserts, r)
				}
			}
			if chunks, err = db.chunk(upserts); err != nil {
				return fail(err)
			}
		}
	}
	wnames, wchunks := db.writable(ctx, t.Name, names, chunks)
	n, err := db.upsert(ctx, tx, b.Table, wnames, t.Key, wchunks)
	if err != nil {
		return fail(err)
	}
	res.Written += n
	if n, err = db.delete(ctx, tx, b.Table, t.Key, deletes); err != nil {
		return fail(err)
	}
	res.Written += n
	if err := db.recordOrigins(ctx, tx, t, names, rows, arrived, local); err != nil {
		return fail(err)
	}
	if t.Direction == gapsync.Both {
		curPos := rules.Positions(names, []string{t.Cursor})[0]
		// The ledger holds the rows as stored. Where the table may change
		// what was written (a trigger, an ON UPDATE clause, a generated
		// column, a default for a column the batch lacks) they are read
		// back in this transaction, as the next scan will see them;
		// elsewhere what was written is what is stored.
		var stored map[string][]any
		hashed := names
		if readBack {
			if hashed, err = db.sentNames(ctx, t); err != nil {
				return fail(err)
			}
			if stored, err = db.storedRows(ctx, tx, t.Name, hashed, t.Key, rows, keyPos); err != nil {
				return fail(err)
			}
		}
		khs, hs := make([]string, len(rows)), make([]string, len(rows))
		var stamps [][]any
		for i, r := range rows {
			khs[i] = rules.KeyHash(rules.Pick(r.Values, keyPos))
			hs[i] = rules.StateHash(r.Op, names, r.Values, keyPos, curPos)
			if vals, ok := stored[khs[i]]; ok && r.Op == batch.OpUpsert {
				hs[i] = rules.RowHash(hashed, vals)
			}
			if r.Op == batch.OpDelete && tombs {
				stamps = append(stamps, append(rules.Pick(r.Values, keyPos), r.Values[curPos]))
			}
		}
		if err := db.recordVersions(ctx, tx, t.Name, khs, hs); err != nil {
			return fail(err)
		}
		// The local trigger stamped its tombstones with this side's clock;
		// restamp them with the deletion's own time, so that the ledger
		// recognises them as the deletion that arrived.
		if err := db.stampTombstones(ctx, tx, t, keyPos, stamps); err != nil {
			return fail(err)
		}
	}
	now := time.Now().UTC()
	led := "INSERT INTO sync_applied (batch_id, table_name, direction, rows_in, rows_written, bytes, conflicts, applied_at) VALUES (?,?,?,?,?,?,?,?) " +
		db.onDuplicateNothing("batch_id")
	r, err := tx.ExecContext(ctx, led, b.ID, b.Table, b.Direction, res.Rows, res.Written, res.Bytes, res.Conflicts, now.Format(timeLayout))
	if err != nil {
		return fail(fmt.Errorf("ledger: %w", err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		// A concurrent delivery of the same batch committed first.
		tx.Rollback()
		prev, _, err := db.applied(ctx, b.ID)
		return prev, err
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	if t.Direction == gapsync.Both {
		db.noteLedger(ctx, "sync_row_version", len(rows))
	}
	if len(arrived) > 0 {
		db.noteLedger(ctx, "sync_ref_origin", len(arrived))
	}
	res.AppliedAt = now.Format(timeLayout)
	return res, nil
}

// arrayUpserter is a dialect that can upsert many rows with one array
// parameter a column (PostgreSQL); false: write a VALUES list instead.
type arrayUpserter interface {
	arrayUpsert(table string, cols, types, key []string, rows []batch.Row) (Query, bool)
}

// upsert runs the multi-row upserts, preparing the full-size statement
// once and reusing it, or, where the dialect takes them, one statement of
// column arrays a chunk.
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
	au, arrays := db.d.(arrayUpserter)
	var types []string
	if arrays {
		types = db.typesOf(ctx, table, names)
	}
	for _, rows := range chunks {
		if arrays {
			if q, ok := au.arrayUpsert(table, names, types, key, rows); ok {
				r, err := tx.ExecContext(ctx, q.SQL, q.Args...)
				if err != nil {
					return written, err
				}
				n, _ := r.RowsAffected()
				written += n
				continue
			}
		}
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

// settle splits the incoming rows of a two-way table into those to apply
// and the local versions of those in conflict (see Apply).
func (db *DB) settle(ctx context.Context, tx *sql.Tx, t gapsync.Table, names []string, b *batch.Batch, hasTombs bool) (apply, conflicts []batch.Row, local map[string][]any, err error) {
	keyPos := rules.Positions(names, t.Key)
	curPos := rules.Positions(names, []string{t.Cursor})[0]
	keys := make([][]any, len(b.Rows))
	khs := make([]string, len(b.Rows))
	for i, r := range b.Rows {
		keys[i] = rules.Pick(r.Values, keyPos)
		khs[i] = rules.KeyHash(keys[i])
	}
	led, err := db.versions(ctx, tx, t.Name, khs)
	if err != nil {
		return nil, nil, nil, err
	}
	// The ledger holds rows in the form this side reads them for
	// sending: every column of the table (see sentNames), which may be
	// more than the batch names (a column added here only).
	all, err := db.sentNames(ctx, t)
	if err != nil {
		return nil, nil, nil, err
	}
	wide := !sameNames(all, names)
	look := names
	if wide {
		look = all
	}
	local, err = db.lookup(ctx, tx, t.Name, look, t.Key, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	namePos := rules.Positions(look, names)
	tombs := map[string][]any{}
	if hasTombs {
		if tombs, err = db.lookup(ctx, tx, TombstoneTable(t.Name), db.tombstoneCols(ctx, t), t.Key, keys); err != nil {
			return nil, nil, nil, err
		}
	}
	force := b.Flags&batch.FlagForce != 0
	for i, r := range b.Rows {
		in := rules.StateHash(r.Op, names, r.Values, keyPos, curPos)
		var (
			mine   string
			cursor any
			found  bool
			lv     batch.Row
		)
		var stored string
		if vals, ok := local[khs[i]]; ok {
			if wide {
				stored = rules.RowHash(all, vals)
				vals = rules.Pick(vals, namePos)
				local[khs[i]] = vals
			}
			mine, cursor, found = rules.RowHash(names, vals), vals[curPos], true
			lv = batch.Row{Op: batch.OpUpsert, Values: vals}
		} else if tv, ok := tombs[khs[i]]; ok {
			// Whether it travelled is told by its time; its cursor is
			// the last one of the deletions' columns (the time, or the
			// deleted row's last integer cursor).
			cursor, found = tv[len(t.Key)], true
			vals := make([]any, len(names))
			for j, kp := range keyPos {
				vals[kp] = tv[j]
			}
			vals[curPos] = tv[len(tv)-1]
			lv = batch.Row{Op: batch.OpDelete, Values: vals}
			mine = rules.StateHash(batch.OpDelete, names, vals, keyPos, curPos)
		}
		if rules.Conflicts(in, rules.Local{Found: found, State: mine, Stored: stored, Cursor: cursor}, led[khs[i]], b.Since, force) {
			conflicts = append(conflicts, lv)
			continue
		}
		apply = append(apply, r)
	}
	return apply, conflicts, local, nil
}

// stampTombstones writes the tombstones of applied deletions (key values
// followed by the deletion's cursor); t must have a tombstone table. For
// a time cursor that cursor is the deletion time. For an integer cursor
// it is the deleted row's last cursor value, and the deletion time stays
// this side's own (the deletions' window here runs by this clock): the
// tombstones the trigger just wrote are read back and get the cursor;
// a key with none (nothing was deleted here) needs none.
func (db *DB) stampTombstones(ctx context.Context, tx *sql.Tx, t gapsync.Table, keyPos []int, tombs [][]any) error {
	if len(tombs) == 0 {
		return nil
	}
	cols := append(append([]string{}, t.Key...), tombstoneAt)
	if tc := db.tombstoneCols(ctx, t); len(tc) > len(cols) {
		keys := make([][]any, len(tombs))
		for i, r := range tombs {
			keys[i] = r[:len(t.Key)]
		}
		local, err := db.lookup(ctx, tx, TombstoneTable(t.Name), tc, t.Key, keys)
		if err != nil {
			return fmt.Errorf("stamp tombstones: %w", err)
		}
		stamped := tombs[:0:0]
		for _, r := range tombs {
			if lv, ok := local[rules.KeyHash(r[:len(t.Key)])]; ok {
				stamped = append(stamped, append(append([]any{}, lv[:len(t.Key)+1]...), r[len(t.Key)]))
			}
		}
		tombs, cols = stamped, tc
		if len(tombs) == 0 {
			return nil
		}
	}
	for start := 0; start < len(tombs); start += 500 {
		end := min(start+500, len(tombs))
		var args []any
		for _, r := range tombs[start:end] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, db.d.Upsert(TombstoneTable(t.Name), cols, t.Key, end-start), args...); err != nil {
			return fmt.Errorf("stamp tombstones: %w", err)
		}
	}
	return nil
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

// storedRows reads back, locked, the columns names of the rows that the
// upserts among rows (whose keys are at keyPos) left in table, keyed by
// keyHash.
func (db *DB) storedRows(ctx context.Context, tx *sql.Tx, table string, names, key []string, rows []batch.Row, keyPos []int) (map[string][]any, error) {
	var keys [][]any
	for _, r := range rows {
		if r.Op == batch.OpUpsert {
			keys = append(keys, rules.Pick(r.Values, keyPos))
		}
	}
	return db.lookupLocked(ctx, tx, table, names, key, keys, db.d.lockRows())
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

// sameNames reports whether a and b hold the same names, in any order.
func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
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
	var out [][]batch.Row
	start, size := 0, 0
	for i, r := range rows {
		s := batch.RowSize(r)
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
