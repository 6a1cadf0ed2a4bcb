package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
)

// Reads for many tables at once. A cycle over a thousand configured
// tables with nothing to move costs a few statements per side this way,
// not several per table: every table's last good window in one
// statement per batchTerms tables, the open checkpoints in one, the
// tables' shapes in one, the bounds in one or two (one clock and one look
// at the open writers for all time cursors, every MAX(cursor) of the
// integer ones in one statement), whether each next window holds a row
// in one, and the sync log entries of the empty windows in one insert.
// syncer.Batcher describes the contract; the coordinator runs the
// windows of the tables that have something to move the usual way.

// batchTerms caps the UNION ALL terms of one statement: SQLite allows 500
// (SQLITE_MAX_COMPOUND_SELECT), the others more.
const batchTerms = 250

// boundsDialect builds the catalogue statement of the batched reads.
type boundsDialect interface {
	// columnsOf is Columns for n tables at once: each row starts with the
	// table's name as the catalogue holds it, then Columns' four; ordered
	// by table, then position. Its n arguments are the names; a name
	// matches as it does in Columns (without case on SQLite).
	columnsOf(n int) string
	// listTables lists the names of this database's base tables (this
	// schema's on PostgreSQL), gapsync's own included.
	listTables() string
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// LastWindows is LastWindow for each of tables in direction d: the upper
// bound of each table's newest successful run (or reload), keyed by
// table; a table that never synced successfully is absent. It costs one
// statement per 250 tables for the ids of those runs, each an index
// lookup per table and status (sync_log_window), and one per 500 runs
// for their bounds. Retrying is safe; it reads only.
func (db *DB) LastWindows(ctx context.Context, tables []string, d gapsync.Direction) (map[string]string, error) {
	fail := func(err error) error { return fmt.Errorf("storage: read sync_log for %d tables: %w", len(tables), err) }
	newest := make(map[int64]string, len(tables)) // run id → table
	for start := 0; start < len(tables); start += batchTerms {
		chunk := tables[start:min(start+batchTerms, len(tables))]
		q := lastRunsQuery(chunk, d)
		rows, err := db.sql.QueryContext(ctx, q.SQL, q.Args...)
		if err != nil {
			return nil, fail(err)
		}
		for rows.Next() {
			var (
				i      int
				ok, re sql.NullInt64
			)
			if err := rows.Scan(&i, &ok, &re); err != nil {
				rows.Close()
				return nil, fail(err)
			}
			if i < 0 || i >= len(chunk) {
				rows.Close()
				return nil, fail(fmt.Errorf("row of index %d in a statement of %d terms", i, len(chunk)))
			}
			if id := max(ok.Int64, re.Int64); ok.Valid || re.Valid {
				newest[id] = chunk[i]
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fail(err)
		}
	}
	ids := make([]int64, 0, len(newest))
	for id := range newest {
		ids = append(ids, id)
	}
	out := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		var rows []LogRow
		if err := db.bun.NewSelect().Model(&rows).Column("id", "window_to").Where("id IN (?)", bun.List(part)).Scan(ctx); err != nil {
			return nil, fail(err)
		}
		for _, r := range rows {
			if t, ok := newest[r.ID]; ok {
				out[t] = r.WindowTo
			}
		}
	}
	return out, nil
}

// lastRunsQuery builds LastWindows' first statement: for each table
// (tagged with its index) the id of its newest run with status ok and
// of its newest reload, each MAX(id) over one prefix of sync_log_window.
func lastRunsQuery(tables []string, d gapsync.Direction) Query {
	var b strings.Builder
	args := []any{string(d), StatusOK, string(d), StatusReload}
	b.WriteString("SELECT n.i, " +
		"(SELECT MAX(l.id) FROM sync_log l WHERE l.table_name = n.t AND l.direction = ? AND l.status = ?), " +
		"(SELECT MAX(l.id) FROM sync_log l WHERE l.table_name = n.t AND l.direction = ? AND l.status = ?) FROM (")
	for i, t := range tables {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + strconv.Itoa(i) + " AS i, ? AS t")
		args = append(args, t)
	}
	b.WriteString(") AS n")
	return Query{SQL: b.String(), Args: args}
}

// scanIndexed runs q, whose rows are (index, value), and calls fn with
// each; an index outside [0, n) is an error.
func (db *DB) scanIndexed(ctx context.Context, q Query, n int, fn func(i int, v sql.NullString)) error {
	rows, err := db.sql.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i int
			v sql.NullString
		)
		if err := rows.Scan(&i, &v); err != nil {
			return err
		}
		if i < 0 || i >= n {
			return fmt.Errorf("row of index %d in a statement of %d terms", i, n)
		}
		fn(i, v)
	}
	return rows.Err()
}

// Checkpoints returns every checkpoint stored (windows in progress), as
// Checkpoint reads one but not validated: a caller that goes on from one
// reads it with Checkpoint. Retrying is safe; it reads only.
func (db *DB) Checkpoints(ctx context.Context) ([]gapsync.Checkpoint, error) {
	var rows []CheckpointRow
	if err := db.bun.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read the checkpoints: %w", err)
	}
	out := make([]gapsync.Checkpoint, len(rows))
	for i, r := range rows {
		out[i] = r.checkpoint()
	}
	return out, nil
}

// RecordAll is Record for many entries, one multi-row insert per 500:
// durable when it returns. On an error some chunks may be written; each
// entry stands alone, so writing one again only adds a line to the log.
func (db *DB) RecordAll(ctx context.Context, es []gapsync.LogEntry) error {
	const chunk = 500 // 16 columns: 8,000 parameters a statement
	for start := 0; start < len(es); start += chunk {
		part := es[start:min(start+chunk, len(es))]
		rows := make([]LogRow, len(part))
		for i, e := range part {
			rows[i] = *logRow(e)
		}
		if _, err := db.bun.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return fmt.Errorf("storage: write sync_log for %d tables: %w", len(part), err)
		}
	}
	return nil
}

// loadColumns reads the columns of tables in one statement per 500 names
// and caches those found as columns does; it returns them by the name
// asked for. A table absent from the result does not exist (the
// catalogue matches names as Columns does).
func (db *DB) loadColumns(ctx context.Context, tables []string) (map[string][]column, error) {
	out := make(map[string][]column, len(tables))
	const chunk = 500
	for start := 0; start < len(tables); start += chunk {
		part := tables[start:min(start+chunk, len(tables))]
		args := make([]any, len(part))
		asked := make(map[string]string, len(part)) // exact name → itself
		folded := make(map[string]string, len(part))
		for i, t := range part {
			args[i] = t
			asked[t] = t
			folded[strings.ToLower(t)] = t
		}
		rows, err := db.sql.QueryContext(ctx, db.d.columnsOf(len(part)), args...)
		if err != nil {
			return nil, fmt.Errorf("storage: columns of %d tables: %w", len(part), err)
		}
		for rows.Next() {
			var (
				name string
				c    column
			)
			if err := rows.Scan(&name, &c.Name, &c.Type, &c.Key, &c.Gen); err != nil {
				rows.Close()
				return nil, fmt.Errorf("storage: columns of %d tables: %w", len(part), err)
			}
			t, ok := asked[name]
			if !ok { // the catalogue spells it another way (SQLite, or lower_case_table_names)
				if t, ok = folded[strings.ToLower(name)]; !ok {
					continue
				}
			}
			out[t] = append(out[t], c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("storage: columns of %d tables: %w", len(part), err)
		}
	}
	now := time.Now()
	for t, cols := range out {
		db.meta.Store("columns\x00"+t, metaEntry{at: now, cols: cols})
	}
	return out, nil
}

// emptyProbe is one table's check in EmptyWindows.
type emptyProbe struct {
	i          int
	t          gapsync.Table
	kind       cursorKind
	cursorType string
	tomb       bool   // t has a tombstone table
	tombType   string // the type of its deleted_at
	from       string // cursor part of the last good bound
	fromDel    string // its deletions part
	bound      string // the new bound, joined
	moves      bool   // something may be to move: run the window
}

// existsTerm asks whether the time column col of table holds a value
// in [from, to) (from "": below to, or NULL, as selectPage reads it).
type existsTerm struct {
	probe    int // index into the probes
	table    string
	col, typ string
	from, to string
}

// EmptyWindows tells which of the tables ts have nothing to move: for
// each table ts[i] whose last good bound is from[i], it returns the bound
// that Bound would return now when the window from from[i] to it holds no
// row and no deletion, and "" otherwise: the table may have changes, or
// cannot be told here (from[i] empty, the table missing or its
// configuration wrong, a cursor whose kind does not fit from[i]), and its
// window must run the usual way, which says what is wrong. The bound is
// taken exactly as Bound takes it, the open-writer guard included, and
// the window is looked at after it, as a run reads its pages after its
// bound: a table reported empty would have read no row. The check leaves
// out no row a run would send (it ignores the row filter and echoes, so
// that it may report a table that then sends nothing, never the other
// way round).
//
// Its cost does not grow in statements with the tables: the list of
// tables and one catalogue statement for their columns, one clock read per cursor type, one look at the open
// writers, one MAX(cursor) statement for the integer cursors and one for
// the windows, each per 250 tables. A statement that fails (one table
// unreadable) reports its tables as not empty. Retrying is safe; it
// writes nothing but the samples of integer bounds Bound keeps.
func (db *DB) EmptyWindows(ctx context.Context, ts []gapsync.Table, from []string) ([]string, error) {
	if len(from) != len(ts) {
		return nil, fmt.Errorf("storage: EmptyWindows: %d tables and %d bounds", len(ts), len(from))
	}
	out := make([]string, len(ts))
	if !slices.ContainsFunc(from, func(s string) bool { return s != "" }) {
		return out, nil
	}
	// The columns of the tables and of those tombstone tables that exist
	// (most tables have none: listing the tables is cheaper than asking
	// the catalogue for their columns).
	all, err := db.tableNames(ctx)
	if err != nil {
		return nil, err
	}
	exists := make(map[string]bool, len(all))
	for _, n := range all {
		exists[strings.ToLower(n)] = true
	}
	names := make([]string, 0, len(ts))
	for i, t := range ts {
		if from[i] != "" {
			names = append(names, t.Name)
			if tt := TombstoneTable(t.Name); exists[strings.ToLower(tt)] {
				names = append(names, tt)
			}
		}
	}
	shapes, err := db.loadColumns(ctx, names)
	if err != nil {
		return nil, err
	}
	var probes []*emptyProbe
	for i, t := range ts {
		if from[i] == "" || !gapsync.ValidBound(from[i]) || t.Validate() != nil {
			continue
		}
		cols, ok := shapes[t.Name]
		if !ok || checkTable(t, cols) != nil {
			continue
		}
		cur, _ := findColumn(cols, t.Cursor)
		kind, ok := db.d.cursorKind(cur.Type)
		if !ok {
			continue
		}
		p := &emptyProbe{i: i, t: t, kind: kind, cursorType: cur.Type}
		p.from, p.fromDel = gapsync.SplitBound(from[i])
		if (kind == kindInteger) != gapsync.IsIntegerBound(p.from) || (kind == kindTime && p.fromDel != "") {
			continue
		}
		if tc, ok := shapes[TombstoneTable(t.Name)]; ok {
			at, _ := findColumn(tc, tombstoneAt)
			p.tomb, p.tombType = true, at.Type
		}
		probes = append(probes, p)
	}
	if err := db.emptyBounds(ctx, probes); err != nil {
		return nil, err
	}
	var terms []existsTerm
	for k, p := range probes {
		if p.moves {
			continue
		}
		if p.kind == kindTime {
			if gapsync.CompareBounds(p.bound, p.from) > 0 {
				terms = append(terms, existsTerm{probe: k, table: p.t.Name, col: p.t.Cursor, typ: p.cursorType, from: p.from, to: p.bound})
				if p.tomb {
					terms = append(terms, existsTerm{probe: k, table: TombstoneTable(p.t.Name), col: tombstoneAt, typ: p.tombType, from: p.from, to: p.bound})
				}
			}
			continue
		}
		rows, del := gapsync.SplitBound(p.bound)
		if gapsync.CompareBounds(rows, p.from) > 0 { // new values past the last window: run it
			p.moves = true
			continue
		}
		if del != "" && (p.fromDel == "" || gapsync.CompareBounds(del, p.fromDel) > 0) {
			terms = append(terms, existsTerm{probe: k, table: TombstoneTable(p.t.Name), col: tombstoneAt, typ: p.tombType, from: p.fromDel, to: del})
		}
	}
	for start := 0; start < len(terms); start += batchTerms {
		part := terms[start:min(start+batchTerms, len(terms))]
		q := existsQuery(db.d, part)
		err := db.scanIndexed(ctx, q, len(part), func(i int, _ sql.NullString) { probes[part[i].probe].moves = true })
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			db.opts.Logger.Debug("batched window check failed; these tables run their windows", "tables", len(part), "err", err)
			for _, tm := range part {
				probes[tm.probe].moves = true
			}
		}
	}
	for _, p := range probes {
		if !p.moves {
			out[p.i] = p.bound
		}
	}
	return out, nil
}

// emptyBounds sets each probe's bound as Bound would: one clock read per
// cursor type of the time cursors, the deletions' clock when an integer
// one has tombstones, every MAX(cursor) of the integer ones in one
// statement per batchTerms tables, then one look at the open writers
// that serves them all. A probe whose bound cannot be taken is marked to
// run its window.
func (db *DB) emptyBounds(ctx context.Context, probes []*emptyProbe) error {
	var times, ints []*emptyProbe
	del := false
	for _, p := range probes {
		if p.kind == kindTime {
			times = append(times, p)
		} else {
			ints = append(ints, p)
			del = del || p.tomb
		}
	}
	if len(probes) == 0 {
		return nil
	}
	clocks := map[string]time.Time{}
	for _, p := range times {
		q := db.d.clock(p.cursorType, false)
		if _, ok := clocks[q]; ok {
			continue
		}
		now, err := db.clock(ctx, p.cursorType, false)
		if err != nil {
			return err
		}
		clocks[q] = now
	}
	var delNow time.Time
	if del {
		var err error
		if delNow, err = db.deletionClock(ctx); err != nil {
			return err
		}
	}
	tops := make([]sql.NullString, len(ints))
	for start := 0; start < len(ints); start += batchTerms {
		part := ints[start:min(start+batchTerms, len(ints))]
		q := topsQuery(db.d, part)
		if err := db.scanIndexed(ctx, q, len(part), func(i int, v sql.NullString) { tops[start+i] = v }); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			db.opts.Logger.Debug("batched cursor maxima failed; these tables run their windows", "tables", len(part), "err", err)
			for _, p := range part {
				p.moves = true
			}
		}
	}
	seen := time.Now()
	w := db.openWriters(ctx)
	for _, p := range times {
		p.bound = clocks[db.d.clock(p.cursorType, false)].Add(-db.timeHold(w)).Format(timeLayout)
	}
	var delBound string
	if del {
		delBound = db.deletionBoundAt(delNow, w)
	}
	for k, p := range ints {
		if p.moves {
			continue
		}
		b, err := db.intBoundAt(p.t, tops[k], seen, w)
		if err != nil {
			p.moves = true // the usual run says what is wrong
			continue
		}
		if p.tomb {
			b = gapsync.JoinBound(b, delBound)
		}
		p.bound = b
	}
	return nil
}

// topsQuery reads MAX(cursor) of each table, tagged with its index.
func topsQuery(d dialect, ps []*emptyProbe) Query {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		n := strconv.Itoa(i)
		b.WriteString("SELECT * FROM (SELECT " + n + " AS i, MAX(" + d.Quote(p.t.Cursor) + ") AS m FROM " + d.Quote(p.t.Name) + ") AS m" + n)
	}
	return Query{SQL: b.String()}
}

// existsQuery returns the index of each term whose column holds a value
// in its window: the window condition of selectPage, LIMIT 1.
func existsQuery(d dialect, terms []existsTerm) Query {
	var b strings.Builder
	var args []any
	for i, tm := range terms {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		n := strconv.Itoa(i)
		qc, pc := d.Quote(tm.col), d.param(tm.typ)
		b.WriteString("SELECT * FROM (SELECT " + n + " AS i, NULL AS v FROM " + d.Quote(tm.table) + " WHERE ")
		if tm.from == "" {
			b.WriteString("(" + qc + " < " + pc + " OR " + qc + " IS NULL)")
			args = append(args, tm.to)
		} else {
			b.WriteString(qc + " >= " + pc + " AND " + qc + " < " + pc)
			args = append(args, tm.from, tm.to)
		}
		b.WriteString(" LIMIT 1) AS e" + n)
	}
	return Query{SQL: b.String(), Args: args}
}
