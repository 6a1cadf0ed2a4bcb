package storage

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gapsync/gapsync"
)

// SumMySQLMD5 names MySQL's and MariaDB's server-side range checksum
// (SumRanges): both sides of a verification must compute the same one.
const SumMySQLMD5 = "mysql-md5-xor"

// sumDialect is an engine that can checksum a key range in SQL.
type sumDialect interface {
	// sumAlgorithm names the checksum, as SumRanges is asked for it.
	sumAlgorithm() string
	// rowSum is the 64-bit digest of one row's cols (of declared types
	// types), its single parameter the salt (hex).
	rowSum(cols, types []string) string
	// sumSelect is the select list that sums the digests h of a range:
	// its row count and one 64-bit number (signed or unsigned: its bits
	// are the sum, see sum64).
	sumSelect(h string) string
	// exactFloats reports whether a binary float is hashed to its last
	// bit (not as a text that may round it).
	exactFloats() bool
}

// SumExactFloats reports whether this database's server-side range
// checksum (SumAlgorithm) hashes a binary float (FLOAT, REAL, DOUBLE) to
// its last bit, so that a table with one can be compared by it: true on
// PostgreSQL, which hashes the float's bits, false on MySQL and MariaDB,
// which hash its text.
func (db *DB) SumExactFloats() bool {
	sd, ok := db.d.(sumDialect)
	return ok && sd.exactFloats()
}

// sum64 scans a range's sum as its 64 bits: MySQL's BIT_XOR is an
// unsigned BIGINT, PostgreSQL's bit_xor a signed one (the same bits).
type sum64 uint64

func (s *sum64) Scan(v any) error {
	var text string
	switch x := v.(type) {
	case int64:
		*s = sum64(uint64(x))
		return nil
	case uint64:
		*s = sum64(x)
		return nil
	case []byte:
		text = string(x)
	case string:
		text = x
	default:
		return fmt.Errorf("a sum of type %T", v)
	}
	if u, err := strconv.ParseUint(text, 10, 64); err == nil {
		*s = sum64(u)
		return nil
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("a sum of %q", text)
	}
	*s = sum64(uint64(i))
	return nil
}

// maxSumRanges is the most ranges one SumRanges call sums: each costs
// the server two queries, so that a request of one-row ranges (per 1)
// over a large budget is cut, as more, well before it keeps the server
// busy for minutes; the caller asks again from the last range.
const maxSumRanges = 256

// SumAlgorithm names the server-side range checksum this database
// computes (SumRanges), "" where its engine has none (SQLite, and
// PostgreSQL before 14, which has no bit_xor).
func (db *DB) SumAlgorithm() string {
	if sd, ok := db.d.(sumDialect); ok {
		return sd.sumAlgorithm()
	}
	return ""
}

// SumRanges is HashRanges with the hashing done by the database server:
// for each range of per rows after r.Lo (up to r.Hi), one query finds its
// last key by the primary key's index and one sums its rows in SQL, so
// that no row leaves the server. Its hashes are comparable only with the
// same algorithm's on a table of the same column types and character
// sets (the values are hashed as the engine stores them, not in the
// canonical form HashRanges uses), which the caller checks; a table
// with file references is refused (they must be mapped back to their
// origin, which only HashRanges does). Asked for one range of every row
// of r (per of math.MaxInt32 or more) with r.Hi set, it sums them at
// once and gives r.Hi as the range's last key. It sums at most 256
// ranges a call (more is then true). It issues SELECT only.
func (db *DB) SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error) {
	sd, ok := db.d.(sumDialect)
	if !ok || sd.sumAlgorithm() != algo {
		return nil, false, fmt.Errorf("%w: this database sums ranges as %q, not %q", gapsync.ErrMalformed, db.SumAlgorithm(), algo)
	}
	if len(t.FileColumns) > 0 {
		return nil, false, fmt.Errorf("%w: %s has file references, which only a hash of its rows maps back to their origin", gapsync.ErrMalformed, t.Name)
	}
	if err := db.verifyColumns(ctx, t, cols); err != nil {
		return nil, false, err
	}
	for _, k := range [][]any{r.Lo, r.Hi} {
		if k != nil && len(k) != len(t.Key) {
			return nil, false, fmt.Errorf("%w: a key bound of %s has %d values, the key %d", gapsync.ErrMalformed, t.Name, len(k), len(t.Key))
		}
	}
	if per <= 0 {
		per = 1000
	}
	if budget < per {
		budget = per
	}
	fail := func(err error) ([]gapsync.RangeHash, bool, error) {
		return nil, false, fmt.Errorf("storage: sum ranges of %s: %w", t.Name, err)
	}
	keyTypes := db.typesOf(ctx, t.Name, t.Key)
	// where is the condition of the keys after lo and up to hi.
	where := func(lo, hi []any) (string, []any) {
		var b strings.Builder
		var args []any
		b.WriteString("1 = 1")
		if lo != nil {
			b.WriteString(" AND ")
			args = appendKeyset(&b, db.d, t.Key, lo, args)
		}
		if hi != nil {
			b.WriteString(" AND ")
			args = appendKeysetUpTo(&b, db.d, t.Key, hi, args)
		}
		return b.String(), args
	}
	// lastKey is the key per rows on from lo (desc: the last key up to
	// hi), nil when there is none.
	lastKey := func(lo []any, offset int, desc bool) ([]any, error) {
		cond, args := where(lo, r.Hi)
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, k := range t.Key {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(db.d.SelectExpr(k, keyTypes[i]))
		}
		b.WriteString(" FROM " + db.d.Quote(t.Name) + " WHERE " + cond + " ORDER BY ")
		for i, k := range t.Key {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(db.d.Quote(t.Name) + "." + db.d.Quote(k))
			if desc {
				b.WriteString(" DESC")
			}
		}
		b.WriteString(" LIMIT 1 OFFSET " + strconv.Itoa(offset))
		rows, _, err := db.readPage(ctx, Query{SQL: b.String(), Args: args}, len(t.Key), gapsync.Page{Rows: 1, Bytes: 1 << 62})
		if err != nil || len(rows) == 0 {
			return nil, err
		}
		return rows[0], nil
	}
	sumQ := "SELECT " + sd.sumSelect(sd.rowSum(cols, db.typesOf(ctx, t.Name, cols))) + " FROM " + db.d.Quote(t.Name) + " WHERE "
	hexSalt := hex.EncodeToString(salt)
	var out []gapsync.RangeHash
	lo := r.Lo
	for read := 0; read < budget && len(out) < maxSumRanges; {
		var last []any
		var err error
		if per < math.MaxInt32 { // else one range holds every row of r: no need to look for its end
			if last, err = lastKey(lo, per-1, false); err != nil {
				return fail(err)
			}
		}
		final := last == nil
		switch {
		case final && per >= math.MaxInt32 && r.Hi != nil:
			// One range of every row up to r.Hi, as a verification asks
			// of this side: no need to find the key of its last row.
			last = r.Hi
		case final: // fewer than per rows left: the range ends at the last one
			if last, err = lastKey(lo, 0, true); err != nil {
				return fail(err)
			}
			if last == nil {
				return out, false, nil
			}
		}
		cond, args := where(lo, last)
		var (
			n   int64
			sum sum64
		)
		err = db.sql.QueryRowContext(ctx, sumQ+cond, append([]any{hexSalt}, args...)...).Scan(&n, &sum)
		if errors.Is(err, sql.ErrNoRows) {
			err = errors.New("no sum")
		}
		if err != nil {
			return fail(err)
		}
		if n == 0 { // nothing up to r.Hi (the one case that does not look for the last key)
			return out, false, nil
		}
		h := make([]byte, 8)
		binary.BigEndian.PutUint64(h, uint64(sum))
		out = append(out, gapsync.RangeHash{Last: last, Rows: n, Hash: h})
		read += int(n)
		if final {
			return out, false, nil
		}
		lo = last
	}
	return out, true, nil
}
