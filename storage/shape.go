package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
)

// shapeDialect gives the queries that describe a table for the setup
// check (gapsync.Shape), each with the table name as its arguments.
type shapeDialect interface {
	// identQuote is the identifier quote character; alterType the
	// statement that changes a column's type (see gapsync.Shape).
	identQuote() string
	alterType() string
	// shapeColumns: name, type, charset ("" if none), nullable.
	shapeColumns(table string) Query
	// shapeCollation: the table's default collation, one row; an empty
	// SQL means the engine has none.
	shapeCollation(table string) Query
	// shapeIndexes: index name, unique, primary, column, position, in
	// index and position order.
	shapeIndexes(table string) Query
}

// Shapes describes, for the setup check, every table in this side's
// sync_config (enabled or not) and every name in names: its sync_config
// row and, for a configured table, its columns, types, character sets,
// keys and indexes. A name that is not in sync_config is reported as
// such, without looking at the table: only configured tables are ever
// read. It reads the database's catalogue only (SELECT).
func (db *DB) Shapes(ctx context.Context, names []string) ([]gapsync.Shape, error) {
	sd, ok := db.d.(shapeDialect)
	if !ok {
		return nil, fmt.Errorf("storage: %s cannot describe its tables", db.d.Name())
	}
	cfg, err := db.expandedConfig(ctx) // a pattern's tables by name
	if err != nil {
		return nil, err
	}
	var out []gapsync.Shape
	seen := map[string]bool{}
	for _, t := range cfg {
		seen[t.Name] = true
		s := db.configuredShape(sd, t)
		if err := gapsync.ValidIdentifier(t.Name); err == nil {
			if err := db.describe(ctx, sd, &s); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	for _, n := range names {
		if err := gapsync.ValidIdentifier(n); err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, gapsync.Shape{Name: n, Dialect: db.d.Name()})
		}
	}
	return out, nil
}

// configuredShape is the start of the shape of t, a table configured
// here: its name, its sync_config row, and the engine's forms of the
// statements an operator is told to run.
func (db *DB) configuredShape(sd shapeDialect, t gapsync.Table) gapsync.Shape {
	return gapsync.Shape{Name: t.Name, Config: &t, Dialect: db.d.Name(), Quote: sd.identQuote(), AlterType: sd.alterType()}
}

func (db *DB) describe(ctx context.Context, sd shapeDialect, s *gapsync.Shape) error {
	fail := func(err error) error { return fmt.Errorf("storage: describe %s: %w", s.Name, err) }
	q := sd.shapeColumns(s.Name)
	rows, err := db.sql.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var c gapsync.ColumnShape
		if err := rows.Scan(&c.Name, &c.Type, &c.Charset, &c.Nullable); err != nil {
			rows.Close()
			return fail(err)
		}
		c.Type = strings.ToLower(c.Type)
		c.Class = db.d.verifyClass(c.Type)
		s.Columns = append(s.Columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	s.Exists = len(s.Columns) > 0
	if !s.Exists {
		s.Columns = nil
		return nil
	}
	if q := sd.shapeCollation(s.Name); q.SQL != "" {
		var coll string
		if err := db.sql.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&coll); err != nil {
			return fail(err)
		}
		s.Charset, _, _ = strings.Cut(coll, "_")
	}
	q = sd.shapeIndexes(s.Name)
	if rows, err = db.sql.QueryContext(ctx, q.SQL, q.Args...); err != nil {
		return fail(err)
	}
	defer rows.Close()
	var (
		cur            string
		unique, primar bool
		cols           []string
	)
	flush := func() {
		if cols == nil {
			return
		}
		s.Indexes = append(s.Indexes, cols)
		if unique || primar {
			s.Keys = append(s.Keys, gapsync.KeyShape{Name: cur, Primary: primar, Columns: cols})
		}
	}
	for rows.Next() {
		var (
			name, col string
			u, p      bool
			seq       int64
		)
		if err := rows.Scan(&name, &u, &p, &col, &seq); err != nil {
			return fail(err)
		}
		if name != cur || cols == nil {
			flush()
			cur, unique, primar, cols = name, u, p, nil
		}
		cols = append(cols, col)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	flush()
	if s.Exists {
		if s.Tombstones, err = db.hasTombstones(ctx, s.Name); err != nil {
			return fail(err)
		}
	}
	return nil
}
