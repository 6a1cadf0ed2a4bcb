package syncer

import (
	"context"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Renamed tables (gapsync.Table.RemoteName, RemoteColumns): the internet
// side's sync_config may give a table and its columns other names on the
// intranet side. The coordinator speaks the intranet's names to the
// gateway and its own to the internet database, converting each batch
// and shape at that one boundary; the rules on each side (echo, conflicts,
// tombstones, references) run in that side's own names, and the gateway
// and the intranet database know nothing of the mapping.

// toWire returns b with the intranet's names: a copy of its header and
// column list, the rows shared. A mapping that makes two columns one
// name there is refused (gapsync.ErrSchemaDrift: the table parks).
func toWire(t gapsync.Table, b *batch.Batch) (*batch.Batch, error) {
	if !t.Renamed() {
		return b, nil
	}
	wb := *b
	wb.Table = t.Wire()
	wb.Columns = make([]batch.Column, len(b.Columns))
	seen := map[string]string{}
	for i, c := range b.Columns {
		c.Name = t.WireColumn(c.Name)
		if prev, dup := seen[strings.ToLower(c.Name)]; dup {
			return nil, fmt.Errorf("%w: columns %s and %s of %s are both %s on the intranet side: fix the column map (-rename-columns)",
				gapsync.ErrSchemaDrift, prev, b.Columns[i].Name, t.Name, c.Name)
		}
		seen[strings.ToLower(c.Name)] = b.Columns[i].Name
		wb.Columns[i] = c
	}
	return &wb, nil
}

// fromWire gives a page pulled from the intranet this side's names, in
// place, after checking that it is of t.
func fromWire(t gapsync.Table, b *batch.Batch) error {
	if b.Table != t.Wire() {
		return fmt.Errorf("%w: asked for %s, got a page of %q", gapsync.ErrMalformed, t.Wire(), b.Table)
	}
	if !t.Renamed() {
		return nil
	}
	b.Table = t.Name
	cols := make([]batch.Column, len(b.Columns))
	seen := map[string]bool{}
	for i, c := range b.Columns {
		c.Name = t.LocalColumn(c.Name)
		if seen[strings.ToLower(c.Name)] {
			return fmt.Errorf("%w: the page of %s has column %s twice under the column map", gapsync.ErrMalformed, t.Wire(), c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		cols[i] = c
	}
	b.Columns = cols
	return nil
}

// localNames are the intranet's column names cols in this side's names.
func localNames(t gapsync.Table, cols []string) []string {
	if len(t.RemoteColumns) == 0 {
		return cols
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = t.LocalColumn(c)
	}
	return out
}

// shapeFromWire is the intranet's shape of t in this side's names.
func shapeFromWire(t gapsync.Table, s gapsync.Shape) gapsync.Shape {
	if !t.Renamed() {
		return s
	}
	s.Name = t.Name
	cols := make([]gapsync.ColumnShape, len(s.Columns))
	for i, c := range s.Columns {
		c.Name = t.LocalColumn(c.Name)
		cols[i] = c
	}
	s.Columns = cols
	local := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = t.LocalColumn(n)
		}
		return out
	}
	keys := make([]gapsync.KeyShape, len(s.Keys))
	for i, k := range s.Keys {
		k.Columns = local(k.Columns)
		keys[i] = k
	}
	s.Keys = keys
	ixs := make([][]string, len(s.Indexes))
	for i, ix := range s.Indexes {
		ixs[i] = local(ix)
	}
	s.Indexes = ixs
	if s.Config != nil {
		cfg := *s.Config
		cfg.Name = t.Name
		cfg.Key = local(cfg.Key)
		cfg.Cursor = t.LocalColumn(cfg.Cursor)
		if cfg.SoftDelete != "" {
			cfg.SoftDelete = t.LocalColumn(cfg.SoftDelete)
		}
		cfg.FileColumns = local(cfg.FileColumns)
		s.Config = &cfg
	}
	return s
}

// wireTable is t as the intranet side names it: its name and the names
// of its key, cursor, soft-delete and file columns there, with no map of
// its own.
func wireTable(t gapsync.Table) gapsync.Table {
	if !t.Renamed() {
		return t
	}
	wt := t
	wt.Name, wt.RemoteName, wt.RemoteColumns = t.Wire(), "", nil
	wt.Key = wireNames(t, t.Key)
	wt.Cursor = t.WireColumn(t.Cursor)
	if t.SoftDelete != "" {
		wt.SoftDelete = t.WireColumn(t.SoftDelete)
	}
	wt.FileColumns = wireNames(t, t.FileColumns)
	wt.Columns, wt.Exclude = wireNames(t, t.Columns), wireNames(t, t.Exclude)
	return wt
}

// wireNames are this side's column names cols of t in the intranet's
// names.
func wireNames(t gapsync.Table, cols []string) []string {
	if len(t.RemoteColumns) == 0 || cols == nil {
		return cols
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = t.WireColumn(c)
	}
	return out
}

// AsHasher hashes ranges with each column under another name (storage's
// *DB is one): how this side of a verification hashes a table that has
// other names on the intranet side.
type AsHasher interface {
	HashRangesAs(ctx context.Context, t gapsync.Table, cols, as []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error)
}

// renamedSides returns the two sides of a verification of t, a table
// with other names on the intranet side, speaking this side's names to
// the caller: the intranet's is asked in its own names (the gateway and
// the intranet database know nothing of the map), and this side hashes
// each column under its intranet name, so that the hashes of one row
// agree. Row values, keys and range bounds have no names and cross as
// they are.
func renamedSides(t gapsync.Table, cols []string, local, remote RangeHasher) (RangeHasher, RangeHasher, error) {
	if !t.Renamed() {
		return local, remote, nil
	}
	as, ok := local.(AsHasher)
	if !ok {
		return nil, nil, fmt.Errorf("syncer: verify %s: it has other names on the intranet side and the internet database cannot hash its columns under them", t.Name)
	}
	seen := map[string]string{}
	for _, c := range cols {
		w := strings.ToLower(t.WireColumn(c))
		if prev, dup := seen[w]; dup {
			return nil, nil, fmt.Errorf("%w: columns %s and %s of %s are both %s on the intranet side: fix the column map (-rename-columns)",
				gapsync.ErrSchemaDrift, prev, c, t.Name, t.WireColumn(c))
		}
		seen[w] = c
	}
	return asHashing{local, as}, wireHashing{remote}, nil
}

// asHashing is this side of a renamed table's verification: its own
// columns read, hashed under their intranet names.
type asHashing struct {
	RangeHasher
	as AsHasher
}

func (h asHashing) SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error) {
	s, ok := h.RangeHasher.(RangeSummer)
	if !ok {
		return nil, false, fmt.Errorf("%w: this database does not checksum ranges on its server", gapsync.ErrMalformed)
	}
	return s.SumRanges(ctx, t, cols, r, per, budget, salt, algo) // the sums are of values, not names
}

func (h asHashing) HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	return h.as.HashRangesAs(ctx, t, cols, wireNames(t, cols), r, per, budget, salt)
}

// wireHashing is the intranet side of a renamed table's verification,
// asked in the intranet's names.
type wireHashing struct{ RangeHasher }

func (h wireHashing) HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	return h.RangeHasher.HashRanges(ctx, wireTable(t), wireNames(t, cols), r, per, budget, salt)
}

func (h wireHashing) SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error) {
	s, ok := h.RangeHasher.(RangeSummer)
	if !ok {
		return nil, false, fmt.Errorf("%w: the transport does not ask for checksums on the server", gapsync.ErrMalformed)
	}
	return s.SumRanges(ctx, wireTable(t), wireNames(t, cols), r, per, budget, salt, algo)
}

func (h wireHashing) RowsByKey(ctx context.Context, t gapsync.Table, cols []string, keys [][]any) ([][]any, error) {
	return h.RangeHasher.RowsByKey(ctx, wireTable(t), wireNames(t, cols), keys)
}
