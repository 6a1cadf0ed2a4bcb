package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Drifter is the optional part of an InternetDB that keeps track of
// schema drift between the two sides of each table. storage's *DB is one.
// Without it a column added on one side only still does not stop the
// table (the receiving side writes the shared columns), but the rows sent
// before the other side has the column are not sent again, and a dropped
// column is not noticed.
//
// Schema drift works like this. A batch carries every column of the
// sending side. The receiving side writes the columns it has and names
// the others in gapsync.Result.Missing. The coordinator records them
// (NoteMissing), logs the ALTER TABLE to run there, and reports them in
// metrics; it never runs DDL on either side, since isolation devices
// forbid it. Each cycle it asks whether the receiving side has the
// columns now; once it has, that run reads the table again from its
// start, so that the rows sent before arrive with the column, and then
// forgets them (ClearMissing). A column dropped on the sending side while
// the receiving side still has it, or a column whose type changed into
// another kind of value than the receiving side holds, parks the table
// in that direction (gapsync.ErrSchemaDrift) before anything of the run
// is written; SeenColumns remembers the sending side's columns to tell.
type Drifter interface {
	// NoteMissing records that the receiving side of table in direction
	// d lacks the columns that are the keys of cols; each value is the
	// statement that adds it there. A column noted already keeps its
	// first time. Safe to retry.
	NoteMissing(ctx context.Context, table string, d gapsync.Direction, cols map[string]string) error
	// MissingColumns lists what NoteMissing recorded and ClearMissing
	// did not clear.
	MissingColumns(ctx context.Context) ([]gapsync.MissingColumn, error)
	// ClearMissing forgets the columns cols of table in direction d.
	ClearMissing(ctx context.Context, table string, d gapsync.Direction, cols []string) error
	// SeenColumns returns the columns the sending side of table had at
	// the last run in direction d; nil when none were recorded.
	SeenColumns(ctx context.Context, table string, d gapsync.Direction) ([]gapsync.ColumnShape, error)
	// SetSeenColumns replaces them.
	SetSeenColumns(ctx context.Context, table string, d gapsync.Direction, cols []gapsync.ColumnShape) error
}

// DriftRecorder is an optional extension of Recorder: a gauge per column
// that a receiving side lacks. *metrics.Metrics is one.
type DriftRecorder interface {
	MissingColumn(table, direction, column string, missing bool)
}

// drift is the coordinator's memory of schema drift within the process:
// which missing columns it has logged, the last column set it checked
// per table and direction, and the gauges it set.
type drift struct {
	mu     sync.Mutex
	noted  map[string]bool   // "d table column": recorded and logged
	seen   map[string]string // "d table": signature of the columns checked
	gauges map[string]bool   // "d table column" with its gauge at 1
}

func driftKey(parts ...string) string { return strings.Join(parts, "\x00") }

// openDrift reads the missing columns at the start of a cycle, keyed by
// "d table", and brings the gauges in line with them.
func (c *Coordinator) openDrift(ctx context.Context) (map[string][]gapsync.MissingColumn, error) {
	dr, ok := c.db.(Drifter)
	if !ok {
		return nil, nil
	}
	ms, err := dr.MissingColumns(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]gapsync.MissingColumn{}
	now := map[string]bool{}
	for _, m := range ms {
		k := driftKey(string(m.Direction), m.Table)
		out[k] = append(out[k], m)
		now[driftKey(string(m.Direction), m.Table, m.Column)] = true
	}
	c.drift.mu.Lock()
	defer c.drift.mu.Unlock()
	if rec, ok := c.opts.Metrics.(DriftRecorder); ok {
		for _, m := range ms {
			rec.MissingColumn(m.Table, string(m.Direction), m.Column, true)
		}
		for k := range c.drift.gauges {
			if !now[k] {
				p := strings.Split(k, "\x00")
				rec.MissingColumn(p[1], p[0], p[2], false)
			}
		}
	}
	c.drift.gauges = now
	return out, nil
}

// arrived returns those of t's missing columns in direction d that the
// receiving side has now: this run reads t again from its start.
func (c *Coordinator) arrived(ctx context.Context, t gapsync.Table, d gapsync.Direction, open map[string][]gapsync.MissingColumn) []string {
	ms := open[driftKey(string(d), t.Name)]
	if len(ms) == 0 {
		return nil
	}
	s, err := c.receiverShape(ctx, t, d)
	if err != nil {
		c.opts.Logger.Warn("schema drift: cannot read the receiving side's columns", "table", t.Name, "dir", d, "err", err)
		return nil
	}
	var out []string
	for _, m := range ms {
		if _, ok := columnFold(s, m.Column); ok {
			out = append(out, m.Column)
		}
	}
	return out
}

// refilled forgets t's missing columns cols once a run that read t from
// its start applied every page.
func (c *Coordinator) refilled(ctx context.Context, t gapsync.Table, d gapsync.Direction, cols []string) {
	dr, ok := c.db.(Drifter)
	if !ok || len(cols) == 0 {
		return
	}
	if err := dr.ClearMissing(ctx, t.Name, d, cols); err != nil {
		c.opts.Logger.Warn("schema drift: forget arrived columns", "table", t.Name, "dir", d, "err", err)
		return
	}
	c.drift.mu.Lock()
	rec, _ := c.opts.Metrics.(DriftRecorder)
	for _, col := range cols {
		k := driftKey(string(d), t.Name, col)
		delete(c.drift.noted, k)
		if c.drift.gauges[k] && rec != nil {
			rec.MissingColumn(t.Name, string(d), col, false)
		}
		delete(c.drift.gauges, k)
	}
	c.drift.mu.Unlock()
	c.opts.Logger.Info("schema drift: columns arrived on the receiving side; every row was sent again with them",
		"table", t.Name, "dir", d, "columns", cols)
}

// noteMissing records the columns a receiving side said it lacks
// (gapsync.Result.Missing), once per process and column: a log line with
// the ALTER TABLE to run there, and a gauge. It must succeed before the
// page counts as applied, so that a kill between the two sends the page
// again and the note is not lost. A receiving side can only lack columns
// the batch had (sent): any other name is ErrMalformed, so that a peer
// cannot make this side record what it likes.
func (c *Coordinator) noteMissing(ctx context.Context, t gapsync.Table, d gapsync.Direction, sent []batch.Column, missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	if len(missing) > len(sent) {
		return fmt.Errorf("%w: %d columns said missing of a batch of %d", gapsync.ErrMalformed, len(missing), len(sent))
	}
	for _, m := range missing {
		if !slices.ContainsFunc(sent, func(c batch.Column) bool { return strings.EqualFold(c.Name, m) }) {
			return fmt.Errorf("%w: column %.64q said missing is not one the batch carried", gapsync.ErrMalformed, m)
		}
	}
	c.drift.mu.Lock()
	var fresh []string
	for _, col := range missing {
		if !c.drift.noted[driftKey(string(d), t.Name, col)] {
			fresh = append(fresh, col)
		}
	}
	c.drift.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	alters := c.alters(ctx, t, d, fresh)
	if dr, ok := c.db.(Drifter); ok {
		if err := dr.NoteMissing(ctx, t.Name, d, alters); err != nil {
			return err
		}
	}
	rec, _ := c.opts.Metrics.(DriftRecorder)
	c.drift.mu.Lock()
	if c.drift.noted == nil {
		c.drift.noted, c.drift.gauges = map[string]bool{}, map[string]bool{}
	}
	for _, col := range fresh {
		k := driftKey(string(d), t.Name, col)
		c.drift.noted[k] = true
		if rec != nil {
			rec.MissingColumn(t.Name, string(d), col, true)
			c.drift.gauges[k] = true
		}
	}
	c.drift.mu.Unlock()
	for _, col := range fresh {
		c.opts.Logger.Warn("schema drift: a column is missing on the receiving side; the shared columns go on syncing, "+
			"and its values are sent for every row once it exists there (gapsync runs no DDL itself)",
			"table", t.Name, "dir", d, "column", col, "missing_on", receiver(d), "run_there", alters[col])
	}
	return nil
}

// alters are the statements that add cols to the receiving side of table,
// with the types the sending side gives them. Where a side cannot be
// described the statement says so and keeps the column's name.
func (c *Coordinator) alters(ctx context.Context, t gapsync.Table, d gapsync.Direction, cols []string) map[string]string {
	out := make(map[string]string, len(cols))
	src, serr := c.senderShape(ctx, t, d)
	dst, derr := c.receiverShape(ctx, t, d)
	// The statement is run on the receiving side, in its names.
	table, there := t.Name, func(col string) string { return col }
	if d == gapsync.Push {
		table, there = t.Wire(), t.WireColumn
	}
	q := quoter(dst)
	if derr != nil {
		q = quoter(gapsync.Shape{})
	}
	for _, col := range cols {
		typ := "<type>"
		if serr == nil {
			if sc, ok := columnFold(src, col); ok {
				typ = sc.Type
				if dst.Dialect != "" && src.Dialect != "" && dst.Dialect != src.Dialect {
					typ += " (a " + src.Dialect + " type: use the matching " + dst.Dialect + " type)"
				}
			}
		}
		out[col] = fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", q(table), q(there(col)), typ)
	}
	return out
}

// checkColumns compares, when the columns of a page change, the sending
// table's columns with those it had when last checked, and refuses (gapsync.ErrSchemaDrift) a column
// dropped there that the receiving side still has, or a type changed into
// another kind of value than the receiving side holds. A column set seen
// before in this process costs nothing.
func (c *Coordinator) checkColumns(ctx context.Context, t gapsync.Table, d gapsync.Direction, cols []batch.Column) error {
	dr, ok := c.db.(Drifter)
	if !ok {
		return nil
	}
	var sig strings.Builder
	for _, col := range cols {
		sig.WriteString(col.Name + "\x01" + col.Type + "\x00")
	}
	k := driftKey(string(d), t.Name)
	c.drift.mu.Lock()
	same := c.drift.seen[k] == sig.String()
	c.drift.mu.Unlock()
	if same {
		return nil
	}
	prev, err := dr.SeenColumns(ctx, t.Name, d)
	if err != nil {
		return err
	}
	// The sending table's columns, from its catalogue rather than the
	// page: a column that side does not send (Table.Exclude) is not a
	// dropped one.
	src, err := c.senderShape(ctx, t, d)
	if err != nil {
		c.opts.Logger.Warn("schema drift: cannot read the sending side's columns; checked at the next page", "table", t.Name, "dir", d, "err", err)
		return nil
	}
	cur := make([]gapsync.ColumnShape, len(src.Columns))
	for i, col := range src.Columns {
		cur[i] = gapsync.ColumnShape{Name: col.Name, Type: col.Type}
	}
	if problems := c.driftProblems(ctx, t, d, prev, cur); len(problems) > 0 {
		return fmt.Errorf("%w: %s", gapsync.ErrSchemaDrift, strings.Join(problems, "; "))
	}
	if err := dr.SetSeenColumns(ctx, t.Name, d, cur); err != nil {
		return err
	}
	c.drift.mu.Lock()
	if c.drift.seen == nil {
		c.drift.seen = map[string]string{}
	}
	c.drift.seen[k] = sig.String()
	c.drift.mu.Unlock()
	return nil
}

// driftProblems is checkColumns' judgement: what in cur, against prev,
// would leave the receiving side wrong.
func (c *Coordinator) driftProblems(ctx context.Context, t gapsync.Table, d gapsync.Direction, prev, cur []gapsync.ColumnShape) []string {
	if len(prev) == 0 {
		return nil
	}
	var dropped, retyped []gapsync.ColumnShape
	for _, p := range prev {
		i := slices.IndexFunc(cur, func(x gapsync.ColumnShape) bool { return strings.EqualFold(x.Name, p.Name) })
		switch {
		case i < 0:
			dropped = append(dropped, p)
		case p.Type != "" && cur[i].Type != "" && !strings.EqualFold(p.Type, cur[i].Type):
			retyped = append(retyped, cur[i])
		}
	}
	if len(dropped) == 0 && len(retyped) == 0 {
		return nil
	}
	dst, err := c.receiverShape(ctx, t, d)
	if err != nil {
		return []string{fmt.Sprintf("columns of %s changed on the %s side and the %s side cannot be read to compare: %v", t.Name, sender(d), receiver(d), err)}
	}
	q := quoter(dst)
	// The fixes are run on the receiving side, in its names.
	rt, rcol := t.Name, func(col string) string { return col }
	if d == gapsync.Push {
		rt, rcol = t.Wire(), t.WireColumn
	}
	var out []string
	for _, p := range dropped {
		if _, ok := columnFold(dst, p.Name); ok {
			out = append(out, fmt.Sprintf("column %s of %s was dropped on the %s side, but the %s side still has it and would keep stale values in it: "+
				"drop it there too (ALTER TABLE %s DROP COLUMN %s) or add it back on the %s side, then resume the table (internet -resume %s)",
				p.Name, t.Name, sender(d), receiver(d), q(rt), q(rcol(p.Name)), sender(d), t.Name))
		}
	}
	for _, n := range retyped {
		rc, ok := columnFold(dst, n.Name)
		if !ok {
			continue
		}
		if !compatibleTypes(n.Type, rc.Type) {
			out = append(out, fmt.Sprintf("column %s of %s changed type on the %s side to %s, which the %s side's %s cannot hold without loss: "+
				"change it there too (%s), then resume the table (internet -resume %s)",
				n.Name, t.Name, sender(d), n.Type, receiver(d), rc.Type, fmt.Sprintf(alterType(dst), q(rt), q(rcol(n.Name)), n.Type), t.Name))
		}
	}
	return out
}

// senderShape and receiverShape describe table on the side that sends in
// direction d, and on the side that receives.
// The intranet's shape comes in this side's names (rename.go).
func (c *Coordinator) senderShape(ctx context.Context, t gapsync.Table, d gapsync.Direction) (gapsync.Shape, error) {
	if d == gapsync.Push {
		return c.localShape(ctx, t)
	}
	return c.remoteShape(ctx, t)
}

func (c *Coordinator) receiverShape(ctx context.Context, t gapsync.Table, d gapsync.Direction) (gapsync.Shape, error) {
	if d == gapsync.Push {
		return c.remoteShape(ctx, t)
	}
	return c.localShape(ctx, t)
}

func (c *Coordinator) localShape(ctx context.Context, t gapsync.Table) (gapsync.Shape, error) {
	sr, ok := c.db.(ShapeReader)
	if !ok {
		return gapsync.Shape{}, errors.New("the internet database cannot describe its tables")
	}
	if o, ok := c.db.(NamedShapeReader); ok {
		return oneShape(t.Name)(o.ShapesOf(ctx, []string{t.Name}))
	}
	return oneShape(t.Name)(sr.Shapes(ctx, []string{t.Name}))
}

func (c *Coordinator) remoteShape(ctx context.Context, t gapsync.Table) (gapsync.Shape, error) {
	st, ok := c.tr.(ShapeTransport)
	if !ok {
		return gapsync.Shape{}, errors.New("the transport cannot ask the gateway for table shapes")
	}
	read := st.Shapes
	if o, ok := c.tr.(NamedShapeReader); ok { // transport.Client.ShapesOf
		read = o.ShapesOf
	}
	s, err := oneShape(t.Wire())(read(ctx, []string{t.Wire()}))
	return shapeFromWire(t, s), err
}

// oneShape picks the shape of table out of an answer that may describe
// every configured table as well.
func oneShape(table string) func([]gapsync.Shape, error) (gapsync.Shape, error) {
	return func(ss []gapsync.Shape, err error) (gapsync.Shape, error) {
		if err != nil {
			return gapsync.Shape{}, err
		}
		for _, s := range ss {
			if s.Name == table && s.Exists {
				return s, nil
			}
		}
		return gapsync.Shape{}, fmt.Errorf("%w: %s does not exist there", gapsync.ErrUnknownTable, table)
	}
}

// columnFold finds a column of s by name, without regard to letter case.
func columnFold(s gapsync.Shape, name string) (gapsync.ColumnShape, bool) {
	for _, c := range s.Columns {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return gapsync.ColumnShape{}, false
}

func sender(d gapsync.Direction) gapsync.Side {
	if d == gapsync.Pull {
		return gapsync.Intranet
	}
	return gapsync.Internet
}

func receiver(d gapsync.Direction) gapsync.Side {
	if d == gapsync.Pull {
		return gapsync.Internet
	}
	return gapsync.Intranet
}

// typeKind is the kind of value a column type holds, by the words the
// engines spell it with: "integer", "decimal", "float", "bool", "bits",
// "time", "binary", "json" or "text".
func typeKind(typ string) string {
	t := strings.ToLower(typ)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(t, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("interval", "date", "time", "year"):
		return "time"
	case has("point", "polygon", "geometry", "linestring"):
		return "binary"
	case has("bigint", "smallint", "tinyint", "mediumint", "integer", "serial") || t == "int" || strings.HasPrefix(t, "int"):
		return "integer"
	case has("decimal", "numeric", "money"):
		return "decimal"
	case has("float", "double", "real"):
		return "float"
	case has("bool"):
		return "bool"
	case strings.HasPrefix(t, "bit"):
		return "bits"
	case has("blob", "binary", "bytea"):
		return "binary"
	case has("json"):
		return "json"
	}
	return "text"
}

// compatibleTypes reports whether a column of type to can hold every
// value of a column of type from without loss of kind: the same kind, an
// integer into a decimal, or a number into text.
func compatibleTypes(from, to string) bool {
	f, t := typeKind(from), typeKind(to)
	switch {
	case f == t:
		return true
	case f == "integer" && t == "decimal":
		return true
	case (f == "integer" || f == "decimal") && t == "text":
		return true
	}
	return false
}
