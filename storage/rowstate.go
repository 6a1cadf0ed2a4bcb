package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/gapsync/gapsync/batch"
)

// stateHash is what the version ledger compares: the hash of a whole row
// for an upsert, or for a deletion a hash of its key and its deletion time
// (carried in the cursor column), so that a row deleted, created again and
// deleted again is a new state, not an echo of the first deletion.
func stateHash(op batch.Op, names []string, vals []any, keyPos []int, curPos int) string {
	if op == batch.OpUpsert {
		return rowHash(names, vals)
	}
	dn := make([]string, 0, len(keyPos)+1)
	dv := make([]any, 0, len(keyPos)+1)
	for _, p := range keyPos {
		dn, dv = append(dn, names[p]), append(dv, vals[p])
	}
	dn, dv = append(dn, "\x00deleted_at"), append(dv, vals[curPos])
	return "d" + rowHash(dn, dv)[1:]
}

// keyHash identifies a row by its key values, in configured key order.
func keyHash(vals []any) string {
	var buf []byte
	for _, v := range vals {
		buf, _ = batch.AppendValue(buf, v)
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:16])
}

// rowHash hashes a whole row, columns taken in name order so that two
// tables whose columns are declared in another order still agree.
func rowHash(names []string, vals []any) string {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return names[idx[a]] < names[idx[b]] })
	var buf []byte
	for _, i := range idx {
		buf = append(buf, names[i]...)
		buf = append(buf, 0)
		buf, _ = batch.AppendValue(buf, normalize(vals[i]))
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:16])
}

// normalize makes a driver's nil []byte (an empty BLOB) non-nil, so that
// it is not taken for NULL.
func normalize(v any) any {
	if b, ok := v.([]byte); ok && b == nil {
		return []byte{}
	}
	return v
}

// positions returns the index in names of each of want; -1 when absent.
func positions(names, want []string) []int {
	out := make([]int, len(want))
	for i, w := range want {
		out[i] = -1
		for j, n := range names {
			if n == w {
				out[i] = j
			}
		}
	}
	return out
}

func pick(vals []any, pos []int) []any {
	out := make([]any, len(pos))
	for i, p := range pos {
		out[i] = vals[p]
	}
	return out
}

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

// isSoftDeleted: a soft-delete column marks a row deleted when it holds
// anything but NULL, zero, an empty string, "0" or false.
func isSoftDeleted(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case int64:
		return x != 0
	case uint64:
		return x != 0
	case float32:
		return x != 0
	case float64:
		return x != 0
	case bool:
		return x
	case []byte:
		return len(x) > 0 && string(x) != "0" && !strings.HasPrefix(string(x), "0000-00-00")
	case string:
		return x != "" && x != "0" && !strings.HasPrefix(x, "0000-00-00")
	}
	return true
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
			vals[i] = normalize(v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
