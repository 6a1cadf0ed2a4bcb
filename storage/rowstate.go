package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync/rules"
)

// sqlQueryer is a *sql.DB or a *sql.Tx.
type sqlQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// versions reads the version ledger for keys of table.
func (db *DB) versions(ctx context.Context, q sqlQueryer, table string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		args := []any{table}
		for _, k := range keys[start:end] {
			args = append(args, k)
		}
		rows, err := q.QueryContext(ctx, "SELECT key_hash, row_hash FROM sync_row_version WHERE table_name = ? AND key_hash IN ("+
			strings.TrimSuffix(strings.Repeat("?,", end-start), ",")+")", args...)
		if err != nil {
			return nil, fmt.Errorf("storage: read version ledger: %w", err)
		}
		for rows.Next() {
			var k, h string
			if err := rows.Scan(&k, &h); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordVersions upserts the version ledger for applied rows.
func (db *DB) recordVersions(ctx context.Context, q sqlQueryer, table string, keys, hashes []string) error {
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		var sb strings.Builder
		sb.WriteString("INSERT INTO sync_row_version (table_name, key_hash, row_hash) VALUES ")
		args := make([]any, 0, 3*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?)")
			args = append(args, table, keys[i], hashes[i])
		}
		sb.WriteString(" " + db.d.onConflict([]string{"table_name", "key_hash"}, []string{"row_hash"}))
		if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("storage: write version ledger: %w", err)
		}
	}
	return nil
}

// scanAll reads every row of rows as n values each, NULL as nil and an
// empty BLOB as a non-nil empty []byte, and closes rows.
func scanAll(rows *sql.Rows, n int) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	ptrs := make([]any, n)
	for rows.Next() {
		vals := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = rules.Normalize(v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
