package storage

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/pathmap"
)

// finder returns the reference finder of t, or false when t has no file
// columns.
func finder(t gapsync.Table) (pathmap.Finder, bool) {
	if len(t.FileColumns) == 0 {
		return pathmap.Finder{}, false
	}
	f := pathmap.Finder{Columns: t.FileColumns}
	if t.FilePattern != "" {
		f.Pattern = regexp.MustCompile(t.FilePattern) // validated by Table.Validate
	}
	return f, true
}

func columnNames(b *batch.Batch) []string {
	names := make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	return names
}

// refsOf returns the distinct references in the rows of b.
func refsOf(f pathmap.Finder, b *batch.Batch) []string {
	names := columnNames(b)
	var out []string
	seen := map[string]bool{}
	for _, r := range b.Rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		for _, ref := range f.Find(names, r.Values) {
			if !seen[ref] {
				seen[ref] = true
				out = append(out, ref)
			}
		}
	}
	return out
}

// mapRefs rewrites, in place, the references in b's rows that m maps.
func mapRefs(f pathmap.Finder, b *batch.Batch, m map[string]string) {
	if len(m) == 0 {
		return
	}
	names := columnNames(b)
	for _, r := range b.Rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		for i, n := range names {
			if contains(f.Columns, n) {
				r.Values[i], _ = f.RewriteAll(r.Values[i], m)
			}
		}
	}
}

// localizeRefs turns the other side's references in an incoming batch
// into this side's published copies (seed 1.1.6: the path mapping).
func (db *DB) localizeRefs(ctx context.Context, t gapsync.Table, b *batch.Batch) error {
	f, ok := finder(t)
	if !ok {
		return nil
	}
	m, err := db.MapForeign(ctx, refsOf(f, b))
	if err != nil {
		return err
	}
	mapRefs(f, b, m)
	return nil
}

// foreignizeRefs turns this side's copies of the other side's files, in a
// batch about to be sent, back into the other side's own references.
func (db *DB) foreignizeRefs(ctx context.Context, t gapsync.Table, b *batch.Batch) error {
	f, ok := finder(t)
	if !ok {
		return nil
	}
	m, err := db.MapLocal(ctx, refsOf(f, b))
	if err != nil {
		return err
	}
	mapRefs(f, b, m)
	return nil
}

// NoteBatchFiles records the files referenced by a batch sent from this
// side (see NoteFiles). References the other side already knows as its
// own (mapped either way here) are skipped.
func (db *DB) NoteBatchFiles(ctx context.Context, t gapsync.Table, origin gapsync.Side, b *batch.Batch) (int, error) {
	f, ok := finder(t)
	if !ok {
		return 0, nil
	}
	refs := refsOf(f, b)
	foreign, err := db.MapForeign(ctx, refs)
	if err != nil {
		return 0, err
	}
	var mine []string
	for _, r := range refs {
		if _, ok := foreign[r]; !ok {
			mine = append(mine, r)
		}
	}
	return db.NoteFiles(ctx, origin, mine)
}

// RewriteRefsMany replaces each reference (a key of refs) with its local
// one (the value) in every configured table here (seed 1.3.4 and 1.4.5):
// also in rows that arrived before the file did. For a table synced both
// ways, a row whose state was written by sync stays recognised as such
// (its version-ledger entry follows the rewrite), so the rewrite is not
// sent back as a change. Rows are found a page of references to a
// statement and rewritten in one transaction per table; it returns how
// many rows changed.
func (db *DB) RewriteRefsMany(ctx context.Context, refs map[string]string) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	tables, err := db.Tables(ctx, "")
	if err != nil {
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
		names[i], sel[i] = c.Name, db.d.SelectExpr(c.Name)
	}
	keyPos := positions(names, t.Key)
	byKey := map[string]*rowRewrite{}
	var order []string
	for _, col := range t.FileColumns {
		ci := positions(names, []string{col})[0]
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
			hits, err := scanAll(rows, len(names))
			if err != nil {
				return 0, err
			}
			for _, vals := range hits {
				kh := keyHash(pick(vals, keyPos))
				rw := byKey[kh]
				if rw == nil {
					rw = &rowRewrite{old: vals, new: slices.Clone(vals)}
				}
				if slices.Contains(rw.cols, ci) {
					continue // found again by another reference's query
				}
				// From the values of the first read: the guard of the
				// one UPDATE checks them all.
				nv, changed := f.RewriteAll(rw.old[ci], refs)
				if !changed {
					continue
				}
				rw.new[ci], rw.cols = nv, append(rw.cols, ci)
				if byKey[kh] == nil {
					byKey[kh] = rw
					order = append(order, kh)
				}
			}
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	if testHookRewriteFound != nil {
		testHookRewriteFound()
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	keys := make([][]any, len(order))
	for i, kh := range order {
		keys[i] = pick(byKey[kh].old, keyPos)
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
		if old := rowHash(names, rw.old); t.Direction == gapsync.Both && led[kh] == old && rowHash(names, now) == old {
			moved, movedKeys = append(moved, kh), append(movedKeys, keys[i])
		}
	}
	if len(moved) > 0 {
		// A row whose state was sync's stays sync's: its ledger entry
		// becomes the row as stored now, read back after the UPDATE, so
		// whatever a trigger or an ON UPDATE clause did to it is not
		// taken for a local change.
		after, err := db.lookupLocked(ctx, tx, t.Name, names, t.Key, movedKeys, db.d.lockRows())
		if err != nil {
			return 0, err
		}
		var khs, hs []string
		for _, kh := range moved {
			if vals, ok := after[kh]; ok {
				khs, hs = append(khs, kh), append(hs, rowHash(names, vals))
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
	where, args := keyMatch(db.d, "", t.Key, [][]any{pick(rw.old, keyPos)})
	var set []string
	var setArgs, guard []any
	for _, ci := range rw.cols {
		col := db.d.Quote(names[ci])
		set, setArgs = append(set, col+" = ?"), append(setArgs, rw.new[ci])
		where += " AND " + col + " = ?"
		guard = append(guard, rw.old[ci])
	}
	if cp := positions(names, []string{t.Cursor})[0]; cp >= 0 && !slices.Contains(rw.cols, cp) {
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
