package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// verifyTable makes table v on db with n rows, a two-column key, a
// DECIMAL and a BLOB, and configures it.
func verifyTable(t *testing.T, db *DB, n int) gapsync.Table {
	t.Helper()
	blob := "BLOB"
	if db.d.Name() == "postgres" {
		blob = "BYTEA"
	}
	MustExec(t, db, "CREATE TABLE v (a INT NOT NULL, b VARCHAR(20) NOT NULL, amount DECIMAL(12,2), data "+blob+
		", updated_at DATETIME(6) NOT NULL, PRIMARY KEY (a, b))")
	for start := 0; start < n; start += 500 {
		var vals []string
		for i := start; i < min(start+500, n); i++ {
			vals = append(vals, fmt.Sprintf("(%d, 'k%03d', %d.%02d, %s, '2026-01-01 00:00:00')", i/3, i%3, i, i%100, hexBlob(db, i)))
		}
		MustExec(t, db, "INSERT INTO v (a, b, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
	}
	tb := gapsync.Table{Name: "v", Direction: gapsync.Push, Key: []string{"a", "b"}, Cursor: "updated_at", Enabled: true}
	if err := db.Configure(context.Background(), tb); err != nil {
		t.Fatal(err)
	}
	return tb
}

func hexBlob(db *DB, i int) string {
	h := fmt.Sprintf("%02x%02x00ff", i%256, (i/256)%256)
	if db.d.Name() == "postgres" {
		return `'\x` + h + `'`
	}
	return "X'" + h + "'"
}

func TestHashRangesAgree(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			a, b := openEngine(t, engine, nil), openEngine(t, engine, nil)
			is.NoErr(a.Migrate(ctx))
			is.NoErr(b.Migrate(ctx))
			ta, tb := verifyTable(t, a, 2500), verifyTable(t, b, 2500)
			cols, err := a.VerifyColumns(ctx, ta)
			is.NoErr(err)
			is.Equal(cols, []string{"a", "b", "amount", "data", "updated_at"})
			salt := []byte("salt")

			ra, more, err := a.HashRanges(ctx, ta, cols, gapsync.KeyRange{}, 1000, 1<<30, salt)
			is.NoErr(err)
			is.True(!more)
			is.Equal(len(ra), 3)
			is.Equal([]int64{ra[0].Rows, ra[1].Rows, ra[2].Rows}, []int64{1000, 1000, 500})

			// The other side follows the boundaries, a range at a time.
			follow := func() []bool {
				var same []bool
				var lo []any
				for _, r := range ra {
					rb, more, err := b.HashRanges(ctx, tb, cols, gapsync.KeyRange{Lo: lo, Hi: r.Last}, 1<<30, 1<<30, salt)
					is.NoErr(err)
					is.True(!more)
					is.Equal(len(rb), 1)
					same = append(same, rb[0].Rows == r.Rows && string(rb[0].Hash) == string(r.Hash))
					lo = r.Last
				}
				return same
			}
			is.Equal(follow(), []bool{true, true, true})

			// A budget stops at a range boundary and says more follow.
			part, more, err := a.HashRanges(ctx, ta, cols, gapsync.KeyRange{}, 100, 250, salt)
			is.NoErr(err)
			is.True(more)
			is.Equal(len(part), 3)
			rest, _, err := a.HashRanges(ctx, ta, cols, gapsync.KeyRange{Lo: part[2].Last}, 100, 1<<30, salt)
			is.NoErr(err)
			is.Equal(len(rest), 22)

			// One DECIMAL digit, in the second range.
			MustExec(t, b, "UPDATE v SET amount = 1200.01 WHERE a = 400 AND b = 'k000'")
			is.Equal(follow(), []bool{true, false, true})
			MustExec(t, b, "UPDATE v SET amount = 1200.00 WHERE a = 400 AND b = 'k000'")
			is.Equal(follow(), []bool{true, true, true})
			// One BLOB byte, in the third.
			MustExec(t, b, "UPDATE v SET data = "+hexBlob(b, 7)+" WHERE a = 700 AND b = 'k001'")
			is.Equal(follow(), []bool{true, true, false})

			// Another salt, other hashes.
			rs, _, err := a.HashRanges(ctx, ta, cols, gapsync.KeyRange{}, 1000, 1<<30, []byte("other"))
			is.NoErr(err)
			is.True(string(rs[0].Hash) != string(ra[0].Hash))

			// Per-row hashes of a small range.
			one, more, err := a.HashRanges(ctx, ta, cols, gapsync.KeyRange{Lo: ra[0].Last, Hi: []any{int64(334), "k001"}}, 1, 100, salt)
			is.NoErr(err)
			is.True(!more)
			// The first range ends at row 999, (333, k000); then come
			// (333, k001), (333, k002), (334, k000), (334, k001).
			is.Equal(len(one), 4)
			is.Equal(one[3].Rows, int64(1))
			is.Equal(fmt.Sprint(one[3].Last[0]), "334")
			is.Equal(fmt.Sprintf("%s", one[3].Last[1]), "k001")

			// Rows by key, nil for a key with no row.
			got, err := a.RowsByKey(ctx, ta, cols, [][]any{ra[0].Last, {int64(99999), "k000"}})
			is.NoErr(err)
			is.Equal(len(got), 2)
			is.True(got[0] != nil)
			is.True(got[1] == nil)

			_, _, err = a.HashRanges(ctx, ta, []string{"amount"}, gapsync.KeyRange{}, 10, 10, salt)
			is.True(err != nil) // the key must be hashed
		})
	}
}
