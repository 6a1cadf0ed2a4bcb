package storage

import (
	"context"
	"fmt"

	"github.com/gapsync/gapsync"
)

// ShapesOf is Shapes for the named tables only: each one configured here
// (by its own sync_config row or a pattern) described with its row, any
// other as a name alone, as Shapes answers it. That is what schema drift
// asks about one table, which costs one table's catalogue reads, not
// every configured table's. A name that is not an identifier is refused
// with gapsync.ErrBadIdentifier. It only reads.
func (db *DB) ShapesOf(ctx context.Context, names []string) ([]gapsync.Shape, error) {
	sd, ok := db.d.(shapeDialect)
	if !ok {
		return nil, fmt.Errorf("storage: %s cannot describe its tables", db.d.Name())
	}
	for _, n := range names {
		if err := gapsync.ValidIdentifier(n); err != nil {
			return nil, err
		}
	}
	cfg, err := db.expandedConfig(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]gapsync.Table, len(cfg))
	for _, t := range cfg {
		byName[t.Name] = t
	}
	out := make([]gapsync.Shape, 0, len(names))
	for _, n := range names {
		s := gapsync.Shape{Name: n, Dialect: db.d.Name()}
		if t, ok := byName[n]; ok { // as Shapes: a table not configured here is not described
			s = db.configuredShape(sd, t)
			if err := db.describe(ctx, sd, &s); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}
