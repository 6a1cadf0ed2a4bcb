package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// verifyPage is how many rows one SELECT of a verification scan reads.
const verifyPage = 1000

// VerifyColumns returns the names of t's columns, in declared order: what
// a verification hashes unless it names fewer.
func (db *DB) VerifyColumns(ctx context.Context, t gapsync.Table) ([]string, error) {
	db.forgetColumns(t.Name)
	cols, _, err := db.shape(ctx, t)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names, nil
}

// verifyColumns checks cols (which must hold t's key) against the table.
func (db *DB) verifyColumns(ctx context.Context, t gapsync.Table, cols []string) error {
	have, _, err := db.shape(ctx, t)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return fmt.Errorf("%w: a verification of %s names no column", gapsync.ErrMalformed, t.Name)
	}
	for _, c := range cols {
		if err := gapsync.ValidIdentifier(c); err != nil {
			return err
		}
		if _, ok := findColumn(have, c); !ok {
			return fmt.Errorf("%w: %s.%s", gapsync.ErrUnknownColumn, t.Name, c)
		}
	}
	for _, k := range t.Key {
		if !contains(cols, k) {
			return fmt.Errorf("%w: a verification of %s must hash its key column %s", gapsync.ErrMalformed, t.Name, k)
		}
	}
	return nil
}

// HashRanges splits the rows of t in r into consecutive ranges of per
// rows, in key order, and returns each range's last key, row count and
// hash, reading at most budget rows (at least one range). more reports
// that rows of r remain after the last range returned: ask again with Lo
// set to its Last. When more is false, r holds no row after the last
// range's Last.
//
// A range's hash is SHA-256 over salt and then, row by row in key order,
// rules.VerifyHash of the row's values in cols (columns in name order,
// each value in its canonical form, rules.Canonical, by its column's
// class), cut to 16 bytes. Rows are read exactly as the sync reads them
// (the dialect's SelectExpr), and file references are taken as their
// origin's (through the path mapping), so two databases that hold the
// same rows give the same hashes, of one engine or of two (MySQL's
// DECIMAL bytes and PostgreSQL's numeric text, a DATETIME(0) and a
// TIMESTAMP(0), a TINYINT(1) and a boolean agree). The hashing runs
// here, in Go, over the rows the page reader gives: a verification costs
// each database the reads of a sync of the table, not a server-side
// checksum.
// It issues SELECT only, and holds nothing open between its queries.
func (db *DB) HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	return db.HashRangesAs(ctx, t, cols, cols, r, per, budget, salt)
}

// HashRangesAs is HashRanges with each of cols hashed under the name of
// the same place in as: a table whose columns have other names on the
// other side (gapsync.Table.RemoteColumns) hashes here under the other
// side's names, so that both sides' hashes agree while each reads its
// own columns. as must be as long as cols, each name once.
func (db *DB) HashRangesAs(ctx context.Context, t gapsync.Table, cols, as []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	if len(as) != len(cols) {
		return nil, false, fmt.Errorf("%w: %d names to hash %d columns of %s under", gapsync.ErrMalformed, len(as), len(cols), t.Name)
	}
	if per <= 0 {
		per = 1000
	}
	if budget < per {
		budget = per
	}
	if err := db.verifyColumns(ctx, t, cols); err != nil {
		return nil, false, err
	}
	keyPos := rules.Positions(cols, t.Key)
	classes := db.verifyClasses(ctx, t.Name, cols)
	var (
		out   []gapsync.RangeHash
		h     hash.Hash
		n     int64
		read  int
		after = r.Lo
		last  []any
	)
	reset := func() {
		h = sha256.New()
		h.Write(salt)
		n = 0
	}
	reset()
	emit := func() {
		out = append(out, gapsync.RangeHash{Last: last, Rows: n, Hash: h.Sum(nil)[:16]})
		reset()
	}
	for {
		rows, full, err := db.verifyPage(ctx, t, cols, after, r.Hi, verifyPage)
		if err != nil {
			return nil, false, err
		}
		for _, vals := range rows {
			rh, _ := hex.DecodeString(rules.VerifyHash(as, classes, vals))
			h.Write(rh)
			n++
			read++
			last = rules.Pick(vals, keyPos)
			if n == int64(per) {
				emit()
				if read >= budget {
					return out, true, nil
				}
			}
		}
		if !full {
			if n > 0 {
				emit()
			}
			return out, false, nil
		}
		after = last
	}
}

// verifyClasses returns the rules class of each of cols of table (see
// rules.Canonical).
func (db *DB) verifyClasses(ctx context.Context, table string, cols []string) []string {
	out := db.typesOf(ctx, table, cols)
	for i, typ := range out {
		out[i] = db.d.verifyClass(typ)
	}
	return out
}

// verifyPage reads up to limit rows of t's cols after the key after (nil:
// from the first) and up to and including hi (nil: to the last), in key
// order, with file references as their origin's.
func (db *DB) verifyPage(ctx context.Context, t gapsync.Table, cols []string, after, hi []any, limit int) ([][]any, bool, error) {
	for _, k := range [][]any{after, hi} {
		if k != nil && len(k) != len(t.Key) {
			return nil, false, fmt.Errorf("%w: a key bound of %s has %d values, the key %d", gapsync.ErrMalformed, t.Name, len(k), len(t.Key))
		}
	}
	pq := pageQuery{table: t.Name, cols: cols, cursor: t.Cursor, key: t.Key, after: after, limit: limit}
	pq.types = db.typesOf(ctx, t.Name, cols)
	if hi != nil {
		var b strings.Builder
		pq.extraArgs = appendKeysetUpTo(&b, db.d, t.Key, hi, nil)
		pq.extra = b.String()
	}
	rows, full, err := db.readPage(ctx, selectPage(db.d, pq), len(cols), gapsync.Page{Rows: limit, Bytes: 1 << 62})
	if err != nil {
		return nil, false, fmt.Errorf("storage: verify %s: %w", t.Name, err)
	}
	if err := db.originRefs(ctx, t, cols, rows); err != nil {
		return nil, false, err
	}
	return rows, full, nil
}

// originRefs turns this side's copies of the other side's files, in rows
// of t read for a verification, back into the other side's references,
// so that both sides hash a reference as its origin wrote it.
func (db *DB) originRefs(ctx context.Context, t gapsync.Table, cols []string, rows [][]any) error {
	if len(t.FileColumns) == 0 || len(rows) == 0 {
		return nil
	}
	b := &batch.Batch{Table: t.Name, Columns: make([]batch.Column, len(cols))}
	for i, c := range cols {
		b.Columns[i] = batch.Column{Name: c, Key: contains(t.Key, c)}
	}
	for _, r := range rows {
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: r})
	}
	return rules.OriginRefs(ctx, sender{db}, t, b)
}

// RowsByKey returns the values in cols of the rows of t with the given
// keys, one per key in order, nil for a key with no row, read like
// HashRanges reads them.
func (db *DB) RowsByKey(ctx context.Context, t gapsync.Table, cols []string, keys [][]any) ([][]any, error) {
	if err := db.verifyColumns(ctx, t, cols); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if len(k) != len(t.Key) {
			return nil, fmt.Errorf("%w: a key of %s has %d values, the key %d", gapsync.ErrMalformed, t.Name, len(k), len(t.Key))
		}
	}
	found, err := db.lookup(ctx, db.sql, t.Name, cols, t.Key, keys)
	if err != nil {
		return nil, err
	}
	// Keys may come in another engine's form (a number as text): rows
	// match by the canonical form of their key.
	keyClasses := db.verifyClasses(ctx, t.Name, t.Key)
	keyPos := rules.Positions(cols, t.Key)
	byKey := make(map[string][]any, len(found))
	for _, v := range found {
		byKey[rules.VerifyKey(keyClasses, rules.Pick(v, keyPos))] = v
	}
	out := make([][]any, len(keys))
	var got [][]any
	for i, k := range keys {
		if v, ok := byKey[rules.VerifyKey(keyClasses, k)]; ok {
			out[i] = v
			got = append(got, v)
		}
	}
	if err := db.originRefs(ctx, t, cols, got); err != nil {
		return nil, err
	}
	return out, nil
}

// SaveVerify keeps how far a verification of one table has come: the
// checkpoint cp in sync_verify_progress and, in sync_verify, a row per
// row found differing since the previous checkpoint (diffs) and, once
// cp.Done, the table's summary row, all in one transaction. A process
// killed between two calls loses only the ranges compared since the
// first.
func (db *DB) SaveVerify(ctx context.Context, cp gapsync.VerifyCheckpoint, diffs []gapsync.RowDiff) error {
	now := time.Now().UTC()
	v := cp.TableVerify
	prog := VerifyProgressRow{RunID: cp.RunID, TableName: v.Table, Tables: strings.Join(cp.Tables, ","),
		Columns: strings.Join(v.Columns, ","), Salt: hex.EncodeToString(v.Salt), Ranges: v.Ranges, Rows: v.Rows,
		TookMS: v.Took.Milliseconds(), Done: cp.Done, StartedAt: now, UpdatedAt: now}
	var err error
	if prog.AfterKey, err = encodeKey(cp.After); err != nil {
		return err
	}
	var rows []VerifyRow
	if cp.Done {
		rows = append(rows, VerifyRow{RunID: cp.RunID, TableName: v.Table, Kind: VerifyTable, Ranges: v.Ranges, Rows: v.Rows,
			Differ: len(v.Diffs), TookMS: v.Took.Milliseconds(), VerifiedAt: now})
	}
	for _, d := range diffs {
		kd, err := encodeKey(d.Key)
		if err != nil {
			return err
		}
		rows = append(rows, VerifyRow{RunID: cp.RunID, TableName: v.Table, Kind: string(d.Kind), Side: string(d.Side),
			KeyText: d.KeyText(), Columns: strings.Join(d.Columns, ","), VerifiedAt: now, KeyData: kd,
			Hashes: hex.EncodeToString(d.InternetHash) + ":" + hex.EncodeToString(d.IntranetHash)})
	}
	err = db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := db.onConflict(tx.NewInsert().Model(&prog), []string{"run_id", "table_name"},
			[]string{"ranges", "rows_compared", "took_ms", "done", "after_key", "updated_at"})
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
		for start := 0; start < len(rows); start += 500 {
			part := rows[start:min(start+500, len(rows))]
			if _, err := tx.NewInsert().Model(&part).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: keep the verification of %s: %w", v.Table, err)
	}
	return nil
}

// UnfinishedVerify returns the checkpoints of the newest verification
// run, when it was over exactly tables (the same names in the same
// order) and has a table not compared to its end: one per table it
// reached, each with the rows found differing so far in Diffs (the
// hashes as they were seen). It returns nil when there is no such run.
func (db *DB) UnfinishedVerify(ctx context.Context, tables []string) ([]gapsync.VerifyCheckpoint, error) {
	var last []VerifyProgressRow
	if err := db.bun.NewSelect().Model(&last).OrderExpr("started_at DESC").Limit(1).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_verify_progress: %w", err)
	}
	if len(last) == 0 || last[0].Tables != strings.Join(tables, ",") {
		return nil, nil
	}
	var progs []VerifyProgressRow
	if err := db.bun.NewSelect().Model(&progs).Where("run_id = ?", last[0].RunID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_verify_progress: %w", err)
	}
	unfinished := len(progs) < len(tables)
	for _, p := range progs {
		unfinished = unfinished || !p.Done
	}
	if !unfinished {
		return nil, nil
	}
	var found []VerifyRow
	if err := db.bun.NewSelect().Model(&found).Where("run_id = ? AND kind <> ?", last[0].RunID, VerifyTable).OrderExpr("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_verify: %w", err)
	}
	out := make([]gapsync.VerifyCheckpoint, len(progs))
	at := map[string]int{}
	for i, p := range progs {
		salt, err := hex.DecodeString(p.Salt)
		if err != nil {
			return nil, fmt.Errorf("storage: sync_verify_progress salt of %s: %w", p.TableName, err)
		}
		after, err := decodeKey(p.AfterKey)
		if err != nil {
			return nil, fmt.Errorf("storage: sync_verify_progress key of %s: %w", p.TableName, err)
		}
		out[i] = gapsync.VerifyCheckpoint{RunID: p.RunID, Tables: tables, After: after, Done: p.Done,
			TableVerify: gapsync.TableVerify{Table: p.TableName, Ranges: p.Ranges, Rows: p.Rows, Took: time.Duration(p.TookMS) * time.Millisecond,
				Columns: gapsync.SplitList(p.Columns), Salt: salt}}
		at[p.TableName] = i
	}
	for _, f := range found {
		i, ok := at[f.TableName]
		if !ok {
			continue
		}
		key, err := decodeKey(f.KeyData)
		if err != nil || key == nil {
			return nil, fmt.Errorf("storage: sync_verify row %d holds no key a verification can continue with", f.ID)
		}
		d := gapsync.RowDiff{Table: f.TableName, Key: key, Kind: gapsync.DiffKind(f.Kind), Side: gapsync.Side(f.Side), Columns: gapsync.SplitList(f.Columns)}
		hi, hr, _ := strings.Cut(f.Hashes, ":")
		d.InternetHash, _ = hex.DecodeString(hi)
		d.IntranetHash, _ = hex.DecodeString(hr)
		if len(d.InternetHash) == 0 {
			d.InternetHash = nil
		}
		if len(d.IntranetHash) == 0 {
			d.IntranetHash = nil
		}
		out[i].Diffs = append(out[i].Diffs, d)
	}
	return out, nil
}

// LastVerify returns when the newest verification of a table finished
// (zero when none has).
func (db *DB) LastVerify(ctx context.Context) (time.Time, error) {
	var last []VerifyRow
	if err := db.bun.NewSelect().Model(&last).Where("kind = ?", VerifyTable).OrderExpr("id DESC").Limit(1).Scan(ctx); err != nil {
		return time.Time{}, fmt.Errorf("storage: read sync_verify: %w", err)
	}
	if len(last) == 0 {
		return time.Time{}, nil
	}
	return last[0].VerifiedAt, nil
}

// encodeKey writes key values in their wire form, as hex ("" for nil).
func encodeKey(key []any) (string, error) {
	if key == nil {
		return "", nil
	}
	b := &batch.Batch{ID: "key", Table: "key"}
	for i := range key {
		b.Columns = append(b.Columns, batch.Column{Name: "k" + strconv.Itoa(i), Key: true})
	}
	b.Rows = []batch.Row{{Op: batch.OpUpsert, Values: key}}
	data, err := b.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("storage: encode a key: %w", err)
	}
	return hex.EncodeToString(data), nil
}

// decodeKey reads what encodeKey wrote.
func decodeKey(s string) ([]any, error) {
	if s == "" {
		return nil, nil
	}
	data, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	b, err := batch.Decode(data, nil)
	if err != nil {
		return nil, err
	}
	if len(b.Rows) != 1 {
		return nil, fmt.Errorf("%w: a kept key holds %d rows", gapsync.ErrMalformed, len(b.Rows))
	}
	return b.Rows[0].Values, nil
}

// Verifications returns the rows sync_verify keeps of run runID (the
// newest run when empty), summary rows first.
func (db *DB) Verifications(ctx context.Context, runID string) ([]VerifyRow, error) {
	if runID == "" {
		var last []VerifyRow
		if err := db.bun.NewSelect().Model(&last).OrderExpr("id DESC").Limit(1).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read sync_verify: %w", err)
		}
		if len(last) == 0 {
			return nil, nil
		}
		runID = last[0].RunID
	}
	var rows []VerifyRow
	if err := db.bun.NewSelect().Model(&rows).Where("run_id = ?", runID).OrderExpr("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_verify: %w", err)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Kind == VerifyTable && rows[j].Kind != VerifyTable })
	return rows, nil
}

// DeletesTravel reports whether deletions of t's rows travel from this
// side: t has a tombstone table here.
func (db *DB) DeletesTravel(ctx context.Context, t gapsync.Table) (bool, error) {
	return db.hasTombstones(ctx, t.Name)
}
