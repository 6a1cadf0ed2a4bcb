package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/pathmap"
	"github.com/gapsync/gapsync/rules"
)

// finder returns the reference finder of t, or false when t has no file
// columns.
func finder(t gapsync.Table) (pathmap.Finder, bool) { return pathmap.TableFinder(t) }

func columnNames(b *batch.Batch) []string {
	names := make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	return names
}

// NoteBatchFiles records the files referenced by a batch sent from this
// side (see NoteFiles): only references that originated here. A
// reference that arrived from the other side in that row (in
// sync_ref_origin) is the other side's, whatever its text, and is never
// read from this side's store; nor is the other side's reference that a
// local copy was turned back into for sending. A row that holds, as
// typed here, the same text as a foreign reference published here is
// this side's own file and is noted.
func (db *DB) NoteBatchFiles(ctx context.Context, t gapsync.Table, origin gapsync.Side, b *batch.Batch) (int, error) {
	f, ok := finder(t)
	if !ok {
		return 0, nil
	}
	names := columnNames(b)
	keyPos := rules.Positions(names, t.Key)
	if slices.Contains(keyPos, -1) {
		return 0, fmt.Errorf("%w: batch %s lacks the key of %s", gapsync.ErrUnknownColumn, b.ID, t.Name)
	}
	type rowRefs struct {
		kh   string
		key  []any
		refs []string
	}
	var rows []rowRefs
	var khs []string
	for _, r := range b.Rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		if refs := f.Find(names, r.Values); len(refs) > 0 {
			k := rules.Pick(r.Values, keyPos)
			rows = append(rows, rowRefs{rules.KeyHash(k), k, refs})
			khs = append(khs, rows[len(rows)-1].kh)
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	arrived, err := db.foreignRefs(ctx, db.sql, t.Name, khs)
	if err != nil {
		return 0, err
	}
	var cands []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, ref := range r.refs {
			if !arrived[r.kh][refHash(ref)] && !seen[ref] {
				seen[ref] = true
				cands = append(cands, ref)
			}
		}
	}
	foreign, err := db.MapForeign(ctx, cands)
	if err != nil {
		return 0, err
	}
	// A candidate that is the other side's reference of a file published
	// here is, in most rows, a local copy turned back for sending; it is
	// this side's own only in a row that stores the text itself.
	own := map[string]bool{}
	var recheck [][]any
	for _, r := range rows {
		for _, ref := range r.refs {
			if _, ok := foreign[ref]; ok && !arrived[r.kh][refHash(ref)] {
				recheck = append(recheck, r.key)
				break
			}
		}
	}
	if len(recheck) > 0 {
		cols, err := db.columns(ctx, t.Name)
		if err != nil {
			return 0, err
		}
		all := make([]string, len(cols))
		for i, c := range cols {
			all[i] = c.Name
		}
		stored, err := db.lookup(ctx, db.sql, t.Name, all, t.Key, recheck)
		if err != nil {
			return 0, err
		}
		for kh, vals := range stored {
			for _, ref := range f.Find(all, vals) {
				if _, ok := foreign[ref]; ok && !arrived[kh][refHash(ref)] {
					own[ref] = true
				}
			}
		}
	}
	var mine []string
	for _, ref := range cands {
		if _, ok := foreign[ref]; !ok || own[ref] {
			mine = append(mine, ref)
		}
	}
	return db.NoteFiles(ctx, origin, mine)
}

// foreignRefs reads sync_ref_origin for keys of table: key hash → the
// hashes of the references that arrived from the other side in that row.
func (db *DB) foreignRefs(ctx context.Context, q sqlQueryer, table string, khs []string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	for rest := khs; len(rest) > 0; {
		part := rest[:min(len(rest), 500)]
		rest = rest[len(part):]
		args := []any{table}
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := q.QueryContext(ctx, "SELECT key_hash, ref_hash FROM sync_ref_origin WHERE table_name = ? AND key_hash IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+")", args...)
		if err != nil {
			return nil, fmt.Errorf("storage: read reference origins: %w", err)
		}
		for rows.Next() {
			var k, h string
			if err := rows.Scan(&k, &h); err != nil {
				rows.Close()
				return nil, err
			}
			if out[k] == nil {
				out[k] = map[string]bool{}
			}
			out[k][h] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// changeOrigins deletes the sync_ref_origin entries drop (key hash, ref
// hash) of table and records add, in tx (rules.ApplyTx.ChangeRefOrigins).
func (db *DB) changeOrigins(ctx context.Context, tx *sql.Tx, table string, drop [][2]string, add []rules.RefOrigin) error {
	for len(drop) > 0 {
		part := drop[:min(len(drop), 500)]
		drop = drop[len(part):]
		keys := make([][]any, len(part))
		for i, d := range part {
			keys[i] = []any{d[0], d[1]}
		}
		where, args := keyMatch(db.d, "", []string{"key_hash", "ref_hash"}, keys)
		if _, err := tx.ExecContext(ctx, "DELETE FROM sync_ref_origin WHERE table_name = ? AND ("+where+")", append([]any{table}, args...)...); err != nil {
			return fmt.Errorf("storage: clear reference origins: %w", err)
		}
	}
	for len(add) > 0 {
		n := min(len(add), batchRows)
		part := make([]RefOriginRow, n)
		for i, e := range add[:n] {
			part[i] = RefOriginRow{TableName: table, KeyHash: e.KeyHash, RefHash: e.RefHash, CanonHash: canonHash(e.Ref), Ref: e.Ref}
		}
		add = add[n:]
		if _, err := db.insertIgnore(db.bun.NewInsert().Conn(tx).Model(&part), "table_name", "key_hash", "ref_hash").Exec(ctx); err != nil {
			return fmt.Errorf("storage: record reference origins: %w", err)
		}
	}
	return nil
}

// spellings extends refs (the other side's references → local ones) with
// every other spelling of each (same canonical form) that a row here
// received: all of them name the file just published.
func (db *DB) spellings(ctx context.Context, refs map[string]string) (map[string]string, error) {
	byCanon := map[string]string{}
	var hashes []string
	out := make(map[string]string, len(refs))
	for from, to := range refs {
		out[from] = to
		h := canonHash(from)
		if _, ok := byCanon[h]; !ok {
			hashes = append(hashes, h)
		}
		byCanon[h] = to
	}
	for len(hashes) > 0 {
		part := hashes[:min(len(hashes), batchRows)]
		hashes = hashes[len(part):]
		var rows []RefOriginRow
		if err := db.bun.NewSelect().Model(&rows).Column("canon_hash", "ref").Distinct().
			Where("canon_hash IN (?)", bun.List(part)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read reference spellings: %w", err)
		}
		for _, r := range rows {
			if _, ok := out[r.Ref]; !ok {
				out[r.Ref] = byCanon[r.CanonHash]
			}
		}
	}
	return out, nil
}

// RewriteRefsMany replaces each reference of the other side (a key of
// refs, and its other spellings) with its local one (the value) in every
// configured table here (seed 1.3.4 and 1.4.5): also in rows that arrived
// before the file did, and only in rows where that reference arrived from
// the other side (sync_ref_origin), so a row that names a same-named file
// of this side is left alone. For a table synced both ways, a row whose
// state was written by sync stays recognised as such (its version-ledger
// entry follows the rewrite), so the rewrite is not sent back as a
// change. Rows are found a page of references to a statement and
// rewritten in one transaction per table; it returns how many rows
// changed.
func (db *DB) RewriteRefsMany(ctx context.Context, refs map[string]string) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	tables, err := db.Tables(ctx, "")
	if err != nil {
		return 0, err
	}
	if refs, err = db.spellings(ctx, refs); err != nil {
		return 0, err
	}
	froms := make([]string, 0, len(refs))
	for from := range refs {
		froms = append(froms, from)
	}
	sort.Strings(froms) // a fixed order: overlapping references rewrite alike every time
	n := 0
	for _, t := range tables {
		f, ok := finder(t)
		if !ok {
			continue
		}
		k, err := db.rewriteTable(ctx, t, f, froms, refs)
		if err != nil {
			return n, fmt.Errorf("storage: rewrite references in %s: %w", t.Name, err)
		}
		n += k
	}
	return n, nil
}

// likeEscaper makes a reference match itself in a LIKE pattern with
// ESCAPE '!' (MySQL's default escape, the backslash, is a character file
// names may hold).
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// testHookRewriteFound, when set by a test, runs between finding the
// rows to rewrite and rewriting them: where an application's edit races.
var testHookRewriteFound func()

// rowRewrite is one row to rewrite: the values read and the new ones.
type rowRewrite struct {
	old, new []any
	cols     []int // positions of the changed columns
}

func (db *DB) rewriteTable(ctx context.Context, t gapsync.Table, f pathmap.Finder, froms []string, refs map[string]string) (int, error) {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	sel := make([]string, len(cols))
	for i, c := range cols {
		names[i], sel[i] = c.Name, db.d.SelectExpr(c.Name, c.Type)
	}
	keyPos := rules.Positions(names, t.Key)
	byKey := map[string]*rowRewrite{}
	var order []string
	type hit struct {
		vals []any
		ci   int
		kh   string
	}
	var hits []hit
	for _, col := range t.FileColumns {
		ci := rules.Positions(names, []string{col})[0]
		// Equality columns: a page of references to a statement. With a
		// pattern, references sit inside text: LIKE, one at a time.
		var wheres []string
		var args [][]any
		if f.Pattern == nil {
			for rest := froms; len(rest) > 0; {
				part := rest[:min(len(rest), batchRows)]
				rest = rest[len(part):]
				a := make([]any, len(part))
				for i, r := range part {
					a[i] = r
				}
				wheres = append(wheres, db.d.Quote(col)+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+")")
				args = append(args, a)
			}
		} else {
			for _, r := range froms {
				wheres, args = append(wheres, db.d.Quote(col)+" LIKE ? ESCAPE '!'"), append(args, []any{"%" + likeEscaper.Replace(r) + "%"})
			}
		}
		for i, where := range wheres {
			rows, err := db.sql.QueryContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+db.d.Quote(t.Name)+" WHERE "+where, args[i]...)
			if err != nil {
				return 0, err
			}
			found, err := scanAll(rows, len(names))
			if err != nil {
				return 0, err
			}
			for _, vals := range found {
				hits = append(hits, hit{vals, ci, rules.KeyHash(rules.Pick(vals, keyPos))})
			}
		}
	}
	if len(hits) == 0 {
		return 0, nil
	}
	khs := make([]string, len(hits))
	for i, h := range hits {
		khs[i] = h.kh
	}
	slices.Sort(khs)
	arrived, err := db.foreignRefs(ctx, db.sql, t.Name, slices.Compact(khs))
	if err != nil {
		return 0, err
	}
	byHash := make(map[string]string, len(refs))
	for from := range refs {
		byHash[refHash(from)] = from
	}
	for _, h := range hits {
		// Only the references that arrived from the other side in this
		// row: a same-named reference typed here is this side's file.
		mine := map[string]string{}
		for rh := range arrived[h.kh] {
			if from, ok := byHash[rh]; ok {
				mine[from] = refs[from]
			}
		}
		if len(mine) == 0 {
			continue
		}
		rw := byKey[h.kh]
		if rw == nil {
			rw = &rowRewrite{old: h.vals, new: slices.Clone(h.vals)}
		}
		if slices.Contains(rw.cols, h.ci) {
			continue // found again by another reference's query
		}
		// From the values of the first read: the guard of the one
		// UPDATE checks them all.
		nv, changed := f.RewriteAll(rw.old[h.ci], mine)
		if !changed {
			continue
		}
		rw.new[h.ci], rw.cols = nv, append(rw.cols, h.ci)
		if byKey[h.kh] == nil {
			byKey[h.kh] = rw
			order = append(order, h.kh)
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	if testHookRewriteFound != nil {
		testHookRewriteFound()
	}
	// Read before the transaction begins (see Apply).
	var eff writeEffects
	if t.Direction == gapsync.Both {
		if eff, err = db.effects(ctx, t.Name); err != nil {
			return 0, err
		}
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	keys := make([][]any, len(order))
	for i, kh := range order {
		keys[i] = rules.Pick(byKey[kh].old, keyPos)
	}
	// The rows as they are now, locked until the commit: one that changed
	// since it was found is an application's edit, which the rewrite
	// keeps (the guard) and which must still travel (its ledger entry
	// stays).
	cur, err := db.lookupLocked(ctx, tx, t.Name, names, t.Key, keys, db.d.lockRows())
	if err != nil {
		return 0, err
	}
	var led map[string]string
	if t.Direction == gapsync.Both {
		if led, err = db.versions(ctx, tx, t.Name, order); err != nil {
			return 0, err
		}
	}
	n := 0
	var moved []string
	var movedKeys [][]any
	for i, kh := range order {
		rw := byKey[kh]
		now, ok := cur[kh]
		if !ok {
			continue // deleted since
		}
		ok, err := db.rewriteRow(ctx, tx, t, names, keyPos, rw)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		n++
		if old := rules.RowHash(names, rw.old); t.Direction == gapsync.Both && led[kh] == old && rules.RowHash(names, now) == old {
			moved, movedKeys = append(moved, kh), append(movedKeys, keys[i])
		}
	}
	if len(moved) > 0 {
		// A row whose state was sync's stays sync's: its ledger entry
		// becomes the row as stored now. Where the table may change what
		// an UPDATE writes (a trigger, an ON UPDATE clause, a generated
		// column) it is read back after the UPDATE, so that what they did
		// is not taken for a local change; elsewhere the row is the one
		// read, locked, with the rewritten values.
		var after map[string][]any
		if eff.triggers || eff.onUpdate || eff.generated {
			if after, err = db.lookupLocked(ctx, tx, t.Name, names, t.Key, movedKeys, db.d.lockRows()); err != nil {
				return 0, err
			}
		} else {
			after = make(map[string][]any, len(moved))
			for _, kh := range moved {
				after[kh] = byKey[kh].new
			}
		}
		var khs, hs []string
		for _, kh := range moved {
			if vals, ok := after[kh]; ok {
				khs, hs = append(khs, kh), append(hs, rules.RowHash(names, vals))
			}
		}
		if err := db.recordVersions(ctx, tx, t.Name, khs, hs); err != nil {
			return 0, err
		}
	}
	return n, tx.Commit()
}

// rewriteRow updates the changed columns of one row, only where they
// still hold the values read (an application change made since wins over
// the rewrite). The cursor column is set to itself: on MySQL/MariaDB that
// keeps an ON UPDATE CURRENT_TIMESTAMP cursor where it was, so a rewrite
// made by sync does not move the row into a later window.
func (db *DB) rewriteRow(ctx context.Context, tx *sql.Tx, t gapsync.Table, names []string, keyPos []int, rw *rowRewrite) (bool, error) {
	where, args := keyMatch(db.d, "", t.Key, [][]any{rules.Pick(rw.old, keyPos)})
	var set []string
	var setArgs, guard []any
	for _, ci := range rw.cols {
		col := db.d.Quote(names[ci])
		set, setArgs = append(set, col+" = ?"), append(setArgs, rw.new[ci])
		where += " AND " + col + " = ?"
		guard = append(guard, rw.old[ci])
	}
	if cp := rules.Positions(names, []string{t.Cursor})[0]; cp >= 0 && !slices.Contains(rw.cols, cp) {
		c := db.d.Quote(t.Cursor)
		set = append(set, c+" = "+c)
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+db.d.Quote(t.Name)+" SET "+strings.Join(set, ", ")+" WHERE ("+where+")",
		append(append(setArgs, args...), guard...)...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
