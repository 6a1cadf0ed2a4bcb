package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/transport"
)

// ShapeReader describes a side's sync tables for the setup check: the
// shape of every table in its sync_config and of each name asked about
// (see gapsync.Shape). storage's *DB is one. The gateway answers
// transport.PathShape with it; the coordinator compares its own.
type ShapeReader interface {
	Shapes(ctx context.Context, names []string) ([]gapsync.Shape, error)
}

// NamedShapeReader is the optional part of a ShapeReader that describes
// the named tables alone (storage's *DB is one): schema drift asks about
// one table at a time, and describing every configured table for it
// would cost a catalogue read per table per table. The gateway answers
// transport.ShapeRequest.Only with it; the Transport side is
// transport.Client.ShapesOf.
type NamedShapeReader interface {
	ShapesOf(ctx context.Context, names []string) ([]gapsync.Shape, error)
}

// ShapeTransport is the optional part of a Transport that fetches the
// intranet's shapes through the gateway. *transport.Client is one.
type ShapeTransport interface {
	Shapes(ctx context.Context, names []string) ([]gapsync.Shape, error)
}

// Problem is one thing the setup check found, with what to do about it.
type Problem struct {
	Table string
	// Side is where the problem is and where the fix goes.
	Side gapsync.Side
	// Warning marks a problem that does not stop sync (it makes it slow,
	// say); the others will fail, or lose data, until fixed.
	Warning bool
	What    string
	Fix     string
}

func (p Problem) String() string {
	level := "error"
	if p.Warning {
		level = "warning"
	}
	return fmt.Sprintf("%s: %s (%s): %s. Fix: %s", level, p.Table, p.Side, p.What, p.Fix)
}

// Problems are the setup check's findings.
type Problems []Problem

// Errors counts the problems that are not warnings.
func (ps Problems) Errors() int {
	n := 0
	for _, p := range ps {
		if !p.Warning {
			n++
		}
	}
	return n
}

// Check compares the internet side's sync tables with the intranet's,
// which it asks for through the gateway (transport.PathShape, a read of
// the intranet catalogue), and returns every problem at once, each with
// its fix: a table missing on a side, a missing key, cursor, soft-delete
// or file column, a cursor without an index (a warning), key columns that
// are not the primary key or a unique key, column sets or types that
// differ, a text column whose character set cannot hold what the other
// side sends (latin1 against utf8mb4), and a table enabled on one side
// only or for other directions. The error is for a check that could not
// run at all; a clean setup gives no problems and a nil error.
func (c *Coordinator) Check(ctx context.Context) (Problems, error) {
	local, ok := c.db.(ShapeReader)
	if !ok {
		return nil, errors.New("syncer: Check: the internet database cannot describe its tables")
	}
	remote, ok := c.tr.(ShapeTransport)
	if !ok {
		return nil, errors.New("syncer: Check: the transport cannot ask the gateway for table shapes")
	}
	mine, err := local.Shapes(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("syncer: Check: %w", err)
	}
	var names []string
	byWire := map[string]gapsync.Table{}
	for _, s := range mine {
		if s.Config != nil && s.Config.Enabled {
			names = append(names, s.Config.Wire())
			byWire[s.Config.Wire()] = *s.Config
		}
	}
	theirs, err := remote.Shapes(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("syncer: Check: %w", err)
	}
	kept := theirs[:0]
	for _, s := range theirs { // in this side's names (rename.go)
		if t, ok := byWire[s.Name]; ok {
			kept = append(kept, shapeFromWire(t, s))
			continue
		}
		// The intranet's own table of a name that a renamed table has
		// here is another table: not this one's far side.
		if renamedHere(byWire, s.Name) {
			continue
		}
		kept = append(kept, s)
	}
	theirs = kept
	ps := compareShapes(mine, theirs)
	pp, err := c.patternProblems(ctx)
	if err != nil {
		return nil, fmt.Errorf("syncer: Check: %w", err)
	}
	return append(ps, pp...), nil
}

// renamedHere reports whether name is this side's name of a table that
// has another name on the intranet side.
func renamedHere(byWire map[string]gapsync.Table, name string) bool {
	for w, t := range byWire {
		if t.Name == name && w != name {
			return true
		}
	}
	return false
}

// compareShapes is Check without the I/O.
func compareShapes(internet, intranet []gapsync.Shape) Problems {
	var ps Problems
	add := func(table string, side gapsync.Side, warn bool, what, fix string, args ...any) {
		ps = append(ps, Problem{Table: table, Side: side, Warning: warn, What: what, Fix: fmt.Sprintf(fix, args...)})
	}
	byName := map[string]gapsync.Shape{}
	for _, s := range intranet {
		byName[s.Name] = s
	}
	enabledHere := map[string]bool{}
	for _, in := range internet {
		if in.Config == nil || !in.Config.Enabled {
			continue
		}
		t := *in.Config
		enabledHere[t.Name] = true
		checkSide(add, in, gapsync.Internet)
		ex, ok := byName[t.Name]
		if !ok || ex.Config == nil {
			add(t.Name, gapsync.Intranet, false, "enabled for "+string(t.Direction)+" on the internet side but not in the intranet's sync_config",
				"enable it on the intranet side (intranet -table %s), or disable it here (internet -disable %s)", spec(t), t.Name)
			continue
		}
		if !ex.Config.Enabled {
			add(t.Name, gapsync.Intranet, false, "enabled on the internet side but disabled in the intranet's sync_config",
				"enable it on the intranet side (intranet -table %s), or disable it here (internet -disable %s)", spec(t), t.Name)
			continue
		}
		et := *ex.Config
		for _, d := range []gapsync.Direction{gapsync.Push, gapsync.Pull} {
			switch {
			case t.Allows(d) && !et.Allows(d):
				add(t.Name, gapsync.Intranet, false, fmt.Sprintf("enabled for %s here, but for %s only on the intranet side", t.Direction, et.Direction),
					"configure the same direction on both sides (intranet -table %s)", spec(t))
			case !t.Allows(d) && et.Allows(d):
				add(t.Name, gapsync.Internet, true, fmt.Sprintf("the intranet side enables %s, the internet side only %s: rows never travel that way", et.Direction, t.Direction),
					"configure the same direction on both sides")
			}
		}
		if !slices.Equal(t.Key, et.Key) || t.Cursor != et.Cursor {
			add(t.Name, gapsync.Intranet, false, fmt.Sprintf("the sides configure different keys or cursors (internet %s by %s, intranet %s by %s)",
				strings.Join(t.Key, "+"), t.Cursor, strings.Join(et.Key, "+"), et.Cursor),
				"configure the same key and cursor on both sides (intranet -table %s)", spec(t))
		}
		checkSide(add, ex, gapsync.Intranet)
		if in.Exists && ex.Exists {
			compareColumns(add, t, in, ex)
		}
	}
	for _, ex := range intranet {
		if ex.Config != nil && ex.Config.Enabled && !enabledHere[ex.Name] {
			add(ex.Name, gapsync.Internet, false, "enabled on the intranet side but not in the internet's sync_config: it is never synced",
				"enable it here (internet -table %s), or disable it there (intranet -disable %s)", spec(*ex.Config), ex.Name)
		}
	}
	return ps
}

type addFunc func(table string, side gapsync.Side, warn bool, what, fix string, args ...any)

// checkSide checks one side's table against its own sync_config row.
func checkSide(add addFunc, s gapsync.Shape, side gapsync.Side) {
	t := *s.Config
	q := quoter(s)
	if !s.Exists {
		add(t.Name, side, false, "the table does not exist",
			"create it with the same columns as on the other side, or disable it (%s -disable %s)", side, t.Name)
		return
	}
	missing := false
	need := append(append([]string{}, t.Key...), t.Cursor)
	if t.SoftDelete != "" {
		need = append(need, t.SoftDelete)
	}
	for _, col := range append(need, t.FileColumns...) {
		if _, ok := s.Column(col); !ok {
			missing = true
			add(t.Name, side, false, fmt.Sprintf("column %s, named in sync_config, does not exist", col),
				"add it (ALTER TABLE %s ADD COLUMN %s …), or correct sync_config (%s -table …)", q(t.Name), q(col), side)
		}
	}
	if missing {
		return
	}
	keyed := false
	for _, k := range s.Keys {
		if sameSet(k.Columns, t.Key) {
			keyed = true
		}
	}
	if !keyed {
		cols := make([]string, len(t.Key))
		for i, k := range t.Key {
			cols[i] = q(k)
		}
		add(t.Name, side, false, fmt.Sprintf("the key columns (%s) are not the primary key or a unique key: upserts would add rows instead of updating them", strings.Join(t.Key, ", ")),
			"ALTER TABLE %s ADD UNIQUE KEY (%s), or configure the real primary key", q(t.Name), strings.Join(cols, ", "))
	}
	indexed := false
	for _, ix := range s.Indexes {
		if len(ix) > 0 && ix[0] == t.Cursor {
			indexed = true
		}
	}
	if !indexed {
		add(t.Name, side, true, fmt.Sprintf("the cursor %s has no index: every cycle scans the whole table", t.Cursor),
			"CREATE INDEX %s ON %s (%s, %s)", q(t.Name+"_"+t.Cursor), q(t.Name), q(t.Cursor), q(t.Key[0]))
	}
}

// compareColumns compares the columns of the two sides of a table that
// exists on both.
func compareColumns(add addFunc, t gapsync.Table, in, ex gapsync.Shape) {
	// A column on one side only is schema drift that does not stop the
	// table (drift.go): the shared columns sync, and its values wait.
	for _, c := range in.Columns {
		if _, ok := ex.Column(c.Name); !ok {
			add(t.Name, gapsync.Intranet, true, fmt.Sprintf("column %s exists on the internet side only%s", c.Name, waits(t.Allows(gapsync.Push))),
				"ALTER TABLE %s ADD COLUMN %s %s on the intranet side", quoter(ex)(t.Name), quoter(ex)(c.Name), c.Type)
		}
	}
	for _, c := range ex.Columns {
		if _, ok := in.Column(c.Name); !ok {
			add(t.Name, gapsync.Internet, true, fmt.Sprintf("column %s exists on the intranet side only%s", c.Name, waits(t.Allows(gapsync.Pull))),
				"ALTER TABLE %s ADD COLUMN %s %s on the internet side", quoter(in)(t.Name), quoter(in)(c.Name), c.Type)
		}
	}
	for _, a := range in.Columns {
		b, ok := ex.Column(a.Name)
		if !ok {
			continue
		}
		if in.Dialect == ex.Dialect && a.Type != b.Type {
			add(t.Name, gapsync.Intranet, false, fmt.Sprintf("column %s is %s on the internet side and %s on the intranet side: values would not round-trip exactly", a.Name, a.Type, b.Type),
				alterType(ex)+" on the side that is wrong", quoter(ex)(t.Name), quoter(ex)(a.Name), a.Type)
		}
		// A target narrower than its source refuses (or mangles) text.
		if t.Allows(gapsync.Push) && narrower(b.Charset, a.Charset) {
			add(t.Name, gapsync.Intranet, false, charsetWhat(a.Name, b.Charset, "intranet", a.Charset),
				"ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin on the intranet side", quoter(ex)(t.Name))
		}
		if t.Allows(gapsync.Pull) && narrower(a.Charset, b.Charset) {
			add(t.Name, gapsync.Internet, false, charsetWhat(a.Name, a.Charset, "internet", b.Charset),
				"ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin on the internet side", quoter(in)(t.Name))
		}
	}
	if narrower(ex.Charset, in.Charset) {
		add(t.Name, gapsync.Intranet, true, fmt.Sprintf("the table's default character set is %s on the intranet side, %s on the internet side: a column added later gets %s",
			ex.Charset, charsetName(in.Charset), ex.Charset),
			"ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", quoter(ex)(t.Name))
	}
	if narrower(in.Charset, ex.Charset) {
		add(t.Name, gapsync.Internet, true, fmt.Sprintf("the table's default character set is %s on the internet side, %s on the intranet side: a column added later gets %s",
			in.Charset, charsetName(ex.Charset), in.Charset),
			"ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", quoter(in)(t.Name))
	}
}

// waits says what a column on the sending side only means when it travels.
func waits(travels bool) string {
	if !travels {
		return ""
	}
	return ": the other columns sync, and its values wait until the column exists on the other side, then arrive for every row"
}

func charsetWhat(col, have, side, want string) string {
	return fmt.Sprintf("column %s is %s on the %s side but %s on the other: text it cannot hold (Chinese, emoji) is refused and the table is parked",
		col, have, side, charsetName(want))
}

func charsetName(cs string) string {
	if cs == "" {
		return "UTF-8"
	}
	return cs
}

// narrower reports whether text in charset from may not fit charset to.
// "" is an engine without charsets (SQLite: UTF-8), as wide as utf8mb4;
// binary columns hold any bytes.
func narrower(to, from string) bool {
	wide := func(cs string) bool { return cs == "" || cs == "utf8mb4" || cs == "binary" }
	if to == "" || to == from || wide(to) {
		return false
	}
	return wide(from) || from != to
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// alterType is the statement that changes a column's type on the side
// s describes, as a format of table, column and type.
func alterType(s gapsync.Shape) string {
	if s.AlterType != "" {
		return s.AlterType
	}
	return "ALTER TABLE %s ALTER COLUMN %s TYPE %s"
}

// quoter quotes identifiers for the side s describes.
func quoter(s gapsync.Shape) func(string) string {
	q := s.Quote
	if q == "" {
		q = `"`
	}
	return func(id string) string { return q + strings.ReplaceAll(id, q, q+q) + q }
}

// spec is t in the -table short form.
func spec(t gapsync.Table) string {
	s := t.Name + ":" + strings.Join(t.Key, "+") + ":" + t.Cursor + ":" + string(t.Direction)
	if len(t.FileColumns) > 0 {
		s += ":" + strings.Join(t.FileColumns, "+")
	}
	return s
}

// shape is the gateway's answer to transport.PathShape: the intranet's
// shape of its sync tables and of the names asked about (SELECT on the
// catalogue only; a name not in sync_config is answered as such, without
// looking at the table).
func (g *Gateway) shape(ctx context.Context, body []byte) ([]byte, error) {
	sr, ok := g.db.(ShapeReader)
	if !ok {
		return nil, errors.New("syncer: the intranet database cannot describe its tables")
	}
	var r transport.ShapeRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: shape request: %v", gapsync.ErrMalformed, err)
	}
	if len(r.Tables) > transport.MaxShapeTables {
		return nil, fmt.Errorf("%w: %d tables in one shape request", gapsync.ErrTooLarge, len(r.Tables))
	}
	for _, n := range r.Tables {
		if err := gapsync.ValidIdentifier(n); err != nil {
			return nil, err
		}
	}
	read := sr.Shapes
	if o, ok := g.db.(NamedShapeReader); ok && r.Only {
		read = o.ShapesOf
	}
	shapes, err := read(ctx, r.Tables)
	if err != nil {
		return nil, err
	}
	return json.Marshal(transport.ShapeResponse{Shapes: shapes})
}
