package storage

import (
	"context"
	"fmt"
	"regexp"
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
			if !contains(f.Columns, n) {
				continue
			}
			for _, ref := range f.Find([]string{n}, []any{r.Values[i]}) {
				if to, ok := m[ref]; ok {
					r.Values[i], _ = f.Rewrite(r.Values[i], ref, to)
				}
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

// RewriteRefs replaces the reference from with to in every configured
// table here (seed 1.3.4 and 1.4.5): also in rows that arrived before the
// file did. For a table synced both ways, a row whose state was written by
// sync stays recognised as such (its version-ledger entry follows the
// rewrite), so the rewrite is not sent back as a change.
func (db *DB) RewriteRefs(ctx context.Context, from, to string) (int, error) {
	tables, err := db.Tables(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tables {
		f, ok := finder(t)
		if !ok {
			continue
		}
		k, err := db.rewriteTable(ctx, t, f, from, to)
		if err != nil {
			return n, fmt.Errorf("storage: rewrite references in %s: %w", t.Name, err)
		}
		n += k
	}
	return n, nil
}

func (db *DB) rewriteTable(ctx context.Context, t gapsync.Table, f pathmap.Finder, from, to string) (int, error) {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	keyPos := positions(names, t.Key)
	n := 0
	for _, col := range t.FileColumns {
		where, arg := db.d.Quote(col)+" = ?", any(from)
		if f.Pattern != nil {
			where, arg = db.d.Quote(col)+" LIKE ?", "%"+from+"%"
		}
		sel := make([]string, len(names))
		for i, nm := range names {
			sel[i] = db.d.SelectExpr(nm)
		}
		rows, err := db.sql.QueryContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+db.d.Quote(t.Name)+" WHERE "+where, arg)
		if err != nil {
			return n, err
		}
		hits, err := scanAll(rows, len(names))
		if err != nil {
			return n, err
		}
		ci := positions(names, []string{col})[0]
		for _, vals := range hits {
			nv, changed := f.Rewrite(vals[ci], from, to)
			if !changed {
				continue
			}
			if err := db.rewriteRow(ctx, t, names, keyPos, vals, ci, nv); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// rewriteRow updates one column of one row and, for a two-way table, moves
// its version-ledger entry along when the old state was sync's.
func (db *DB) rewriteRow(ctx context.Context, t gapsync.Table, names []string, keyPos []int, vals []any, ci int, nv any) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	where, args := keyMatch(db.d, "", t.Key, [][]any{pick(vals, keyPos)})
	// Only if the value is still the one read: an application change made
	// since wins over the rewrite.
	col := db.d.Quote(names[ci])
	res, err := tx.ExecContext(ctx, "UPDATE "+db.d.Quote(t.Name)+" SET "+col+" = ? WHERE ("+where+") AND "+col+" = ?",
		append(append([]any{nv}, args...), vals[ci])...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if t.Direction == gapsync.Both {
		kh := keyHash(pick(vals, keyPos))
		led, err := db.versions(ctx, tx, t.Name, []string{kh})
		if err != nil {
			return err
		}
		if led[kh] == rowHash(names, vals) {
			nvals := append([]any{}, vals...)
			nvals[ci] = nv
			if err := db.recordVersions(ctx, tx, t.Name, []string{kh}, []string{rowHash(names, nvals)}); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
