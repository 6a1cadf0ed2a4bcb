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
	// shapeColumns: name, type, charset ("" if none), nullable.
	shapeColumns(table string) Query
	// shapeCollation: the table's default collation, one row; an empty
	// SQL means the engine has none.
	shapeCollation(table string) Query
	// shapeIndexes: index name, unique, primary, column, position, in
	// index and position order.
	shapeIndexes(table string) Query
}

func (mysqlDialect) shapeColumns(table string) Query {
	return Query{SQL: "SELECT COLUMN_NAME, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, ''), IS_NULLABLE = 'YES' " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", Args: []any{table}}
}

func (mysqlDialect) shapeCollation(table string) Query {
	return Query{SQL: "SELECT COALESCE(TABLE_COLLATION, '') FROM information_schema.TABLES " +
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", Args: []any{table}}
}

func (mysqlDialect) shapeIndexes(table string) Query {
	return Query{SQL: "SELECT INDEX_NAME, NON_UNIQUE = 0, INDEX_NAME = 'PRIMARY', COLUMN_NAME, SEQ_IN_INDEX " +
		"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? " +
		"ORDER BY INDEX_NAME, SEQ_IN_INDEX", Args: []any{table}}
}

func (sqliteDialect) shapeColumns(table string) Query {
	return Query{SQL: `SELECT name, type, '', "notnull" = 0 FROM pragma_table_info(?) ORDER BY cid`, Args: []any{table}}
}

func (sqliteDialect) shapeCollation(string) Query { return Query{} }

// The primary key comes from table_info (an INTEGER PRIMARY KEY is the
// rowid and has no index of its own); the automatic index SQLite makes
// for another primary key is left out as a duplicate of it.
func (sqliteDialect) shapeIndexes(table string) Query {
	return Query{SQL: `SELECT 'PRIMARY', 1, 1, name, pk FROM pragma_table_info(?) WHERE pk > 0 ` +
		`UNION ALL SELECT il.name, il."unique", 0, ii.name, ii.seqno FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii ` +
		`WHERE il.origin <> 'pk' ORDER BY 1, 5`, Args: []any{table, table}}
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
	cfg, err := db.Config(ctx)
	if err != nil {
		return nil, err
	}
	var out []gapsync.Shape
	seen := map[string]bool{}
	for _, t := range cfg {
		seen[t.Name] = true
		s := gapsync.Shape{Name: t.Name, Config: &t, Dialect: db.d.Name()}
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
