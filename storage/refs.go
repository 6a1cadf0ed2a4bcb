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
	"github.com/gapsync/gapsync/rules"
)

// NoteBatchFiles records the files referenced by a batch sent from this
// side (see NoteFiles): only the references that originated here, as
// rules.OwnRefs tells them.
func (db *DB) NoteBatchFiles(ctx context.Context, t gapsync.Table, origin gapsync.Side, b *batch.Batch) (int, error) {
	mine, err := rules.OwnRefs(ctx, refReader{db}, t, b)
	if err != nil || len(mine) == 0 {
		return 0, err
	}
	return db.NoteFiles(ctx, origin, mine)
}

// refReader is the DB as rules.OwnRefs consumes it.
type refReader struct{ db *DB }

var _ rules.RefReader = refReader{}

func (r refReader) RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error) {
	return r.db.foreignRefs(ctx, r.db.sql, table, khs)
}

func (r refReader) MapForeign(ctx context.Context, refs []string) (map[string]string, error) {
	return r.db.MapForeign(ctx, refs)
}

func (r refReader) StoredRows(ctx context.Context, t gapsync.Table, keys [][]any) ([]string, map[string][]any, error) {
	cols, err := r.db.columns(ctx, t.Name)
	if err != nil {
		return nil, nil, err
	}
	all := make([]string, len(cols))
	for i, c := range cols {
		all[i] = c.Name
	}
	rows, err := r.db.lookup(ctx, r.db.sql, t.Name, all, t.Key, keys)
	return all, rows, err
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
		if len(t.FileColumns) == 0 {
			continue
		}
		k, err := rules.RewriteRefs(ctx, rewriter{db}, t, froms, refs)
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

// rewriter is the DB as rules.RewriteRefs consumes it.
type rewriter struct{ db *DB }

var _ rules.Rewriter = rewriter{}

func (r rewriter) RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error) {
	return r.db.foreignRefs(ctx, r.db.sql, table, khs)
}

// Referring finds the rows a page of references to a statement (IN) for
// an equality column; with a pattern, where references sit inside text,
// one reference a statement (LIKE).
func (r rewriter) Referring(ctx context.Context, t gapsync.Table, col string, refs []string) ([]string, [][]any, error) {
	db := r.db
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(cols))
	sel := make([]string, len(cols))
	for i, c := range cols {
		names[i], sel[i] = c.Name, db.d.SelectExpr(c.Name, c.Type)
	}
	var wheres []string
	var args [][]any
	if t.FilePattern == "" {
		for rest := refs; len(rest) > 0; {
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
		for _, r := range refs {
			wheres, args = append(wheres, db.d.Quote(col)+" LIKE ? ESCAPE '!'"), append(args, []any{"%" + likeEscaper.Replace(r) + "%"})
		}
	}
	var out [][]any
	for i, where := range wheres {
		rows, err := db.sql.QueryContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+db.d.Quote(t.Name)+" WHERE "+where, args[i]...)
		if err != nil {
			return nil, nil, err
		}
		found, err := scanAll(rows, len(names))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, found...)
	}
	return names, out, nil
}

func (r rewriter) BeginRewrite(ctx context.Context, t gapsync.Table) (rules.RewriteTx, bool, error) {
	if testHookRewriteFound != nil {
		testHookRewriteFound()
	}
	// Read before the transaction begins (see Apply).
	var eff writeEffects
	if t.Direction == gapsync.Both {
		var err error
		if eff, err = r.db.effects(ctx, t.Name); err != nil {
			return nil, false, err
		}
	}
	tx, err := r.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	return &applyTx{db: r.db, tx: tx}, eff.triggers || eff.onUpdate || eff.generated, nil
}

var _ rules.ManyUpdater = (*applyTx)(nil)

// updateManyRows is how many rows one statement of UpdateMany sets.
const updateManyRows = 256

// UpdateMany is rules.ManyUpdater.UpdateMany: the rows that change the
// same columns, up to updateManyRows a statement, in one guarded UPDATE
// whose SET picks each row's value by its key:
//
//	UPDATE t SET c = CASE WHEN (k = ?) THEN ? … ELSE c END, cur = cur
//	WHERE ((k = ?) AND c = ?) OR …
//
// (ELSE c also gives the CASE the column's own type where an engine
// types its parameters, PostgreSQL's jsonb say.)
func (x *applyTx) UpdateMany(ctx context.Context, t gapsync.Table, names []string, rows []rules.RowUpdate) (int, error) {
	d := x.db.d
	keyPos := rules.Positions(names, t.Key)
	cp := rules.Positions(names, []string{t.Cursor})[0]
	groups := map[string][]rules.RowUpdate{}
	var order []string
	for _, r := range rows {
		sig := fmt.Sprint(r.Cols)
		if groups[sig] == nil {
			order = append(order, sig)
		}
		groups[sig] = append(groups[sig], r)
	}
	n := 0
	for _, sig := range order {
		for rest := groups[sig]; len(rest) > 0; {
			part := rest[:min(len(rest), updateManyRows)]
			rest = rest[len(part):]
			cols := part[0].Cols
			var set []string
			var args []any
			for _, ci := range cols {
				col := d.Quote(names[ci])
				var b strings.Builder
				b.WriteString(col + " = CASE")
				for _, r := range part {
					m, margs := keyMatch(d, "", t.Key, [][]any{rules.Pick(r.Old, keyPos)})
					b.WriteString(" WHEN " + m + " THEN ?")
					args = append(append(args, margs...), r.New[ci])
				}
				b.WriteString(" ELSE " + col + " END")
				set = append(set, b.String())
			}
			if cp >= 0 && !slices.Contains(cols, cp) {
				c := d.Quote(t.Cursor)
				set = append(set, c+" = "+c)
			}
			var where strings.Builder
			for i, r := range part {
				if i > 0 {
					where.WriteString(" OR ")
				}
				m, margs := keyMatch(d, "", t.Key, [][]any{rules.Pick(r.Old, keyPos)})
				where.WriteString("(" + m)
				args = append(args, margs...)
				for _, ci := range cols {
					where.WriteString(" AND " + d.Quote(names[ci]) + " = ?")
					args = append(args, r.Old[ci])
				}
				where.WriteString(")")
			}
			res, err := x.tx.ExecContext(ctx, "UPDATE "+d.Quote(t.Name)+" SET "+strings.Join(set, ", ")+" WHERE "+where.String(), args...)
			if err != nil {
				return n, err
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
	}
	return n, nil
}

// Update is rules.RewriteTx.Update: one guarded UPDATE. A cursor the
// update does not set is set to itself, so that an ON UPDATE clause
// leaves it as it was.
func (x *applyTx) Update(ctx context.Context, t gapsync.Table, names []string, old, new []any, cols []int) (bool, error) {
	d := x.db.d
	where, args := keyMatch(d, "", t.Key, [][]any{rules.Pick(old, rules.Positions(names, t.Key))})
	var set []string
	var setArgs, guard []any
	for _, ci := range cols {
		col := d.Quote(names[ci])
		set, setArgs = append(set, col+" = ?"), append(setArgs, new[ci])
		where += " AND " + col + " = ?"
		guard = append(guard, old[ci])
	}
	if cp := rules.Positions(names, []string{t.Cursor})[0]; cp >= 0 && !slices.Contains(cols, cp) {
		c := d.Quote(t.Cursor)
		set = append(set, c+" = "+c)
	}
	res, err := x.tx.ExecContext(ctx, "UPDATE "+d.Quote(t.Name)+" SET "+strings.Join(set, ", ")+" WHERE ("+where+")",
		append(append(setArgs, args...), guard...)...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
