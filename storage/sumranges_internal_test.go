package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// SumRanges on two MariaDB databases with the same rows gives the same
// ranges (the same last keys and counts as HashRanges, composite key and
// all) and the same sums; one value changed, NULL for an empty string,
// or a byte of a latin1 or Chinese value makes exactly its range differ.
func TestSumRangesMariaDB(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	tbl := gapsync.Table{Name: "sums", Direction: gapsync.Push, Key: []string{"a", "b"}, Cursor: "updated_at", Enabled: true}
	var dbs []*DB
	for range 2 {
		db := openEngine(t, "mariadb", &Options{Lag: time.Millisecond})
		is.NoErr(db.Migrate(ctx))
		MustExec(t, db, "CREATE TABLE sums (a INT NOT NULL, b VARCHAR(10) NOT NULL, note VARCHAR(40) CHARACTER SET utf8mb4 NULL, "+
			"l1 VARCHAR(20) CHARACTER SET latin1 NULL, amount DECIMAL(12,2) NULL, data BLOB NULL, updated_at DATETIME(6) NULL, PRIMARY KEY (a, b))")
		var vals []string
		for i := 0; i < 1000; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 'k%d', '订单 %d', 'café %d', %d.%02d, X'%04x00', '2026-01-01 00:00:00.%06d')", i/3, i%3, i, i, i, i%100, i, i))
		}
		MustExec(t, db, "INSERT INTO sums VALUES "+strings.Join(vals, ","))
		is.NoErr(db.Configure(ctx, tbl))
		dbs = append(dbs, db)
	}
	cols, err := dbs[0].VerifyColumns(ctx, tbl)
	is.NoErr(err)
	salt := []byte("salt")
	is.Equal(dbs[0].SumAlgorithm(), SumMySQLMD5)
	sums := func(db *DB, r gapsync.KeyRange, per, budget int) ([]gapsync.RangeHash, bool) {
		t.Helper()
		rs, more, err := db.SumRanges(ctx, tbl, cols, r, per, budget, salt, SumMySQLMD5)
		is.NoErr(err)
		return rs, more
	}
	a, more := sums(dbs[0], gapsync.KeyRange{}, 300, 10_000)
	is.True(!more)
	b, _ := sums(dbs[1], gapsync.KeyRange{}, 300, 10_000)
	is.Equal(len(a), 4) // 300, 300, 300, 100
	hs, _, err := dbs[0].HashRanges(ctx, tbl, cols, gapsync.KeyRange{}, 300, 10_000, salt)
	is.NoErr(err)
	for i := range a {
		is.Equal(fmt.Sprint(a[i].Last), fmt.Sprint(b[i].Last))
		is.Equal(fmt.Sprint(a[i].Last), fmt.Sprint(hs[i].Last)) // the same ranges as the Go hashes
		is.Equal(a[i].Rows, hs[i].Rows)
		is.True(bytes.Equal(a[i].Hash, b[i].Hash))
	}
	is.True(!bytes.Equal(a[0].Hash, a[1].Hash))
	other, _, err := dbs[0].SumRanges(ctx, tbl, cols, gapsync.KeyRange{}, 300, 10_000, []byte("other"), SumMySQLMD5)
	is.NoErr(err)
	is.True(!bytes.Equal(other[0].Hash, a[0].Hash)) // salted

	// The budget: ranges up to it, then more from the last one.
	part, more := sums(dbs[0], gapsync.KeyRange{}, 300, 500)
	is.True(more)
	is.Equal(len(part), 2)
	rest, more := sums(dbs[0], gapsync.KeyRange{Lo: part[1].Last}, 300, 10_000)
	is.True(!more)
	is.Equal(len(rest), 2)
	is.True(bytes.Equal(rest[1].Hash, a[3].Hash))
	// One-row ranges: cut at 256 a call, the rest asked for again.
	ones, more := sums(dbs[0], gapsync.KeyRange{}, 1, 10_000)
	is.True(more)
	is.Equal(len(ones), maxSumRanges)
	// A range up to a key.
	upTo, _ := sums(dbs[0], gapsync.KeyRange{Lo: a[0].Last, Hi: a[1].Last}, 1000, 10_000)
	is.Equal(len(upTo), 1)
	is.True(bytes.Equal(upTo[0].Hash, a[1].Hash))
	whole, _ := sums(dbs[0], gapsync.KeyRange{Lo: a[0].Last, Hi: a[1].Last}, math.MaxInt, math.MaxInt) // as a verification asks this side
	is.Equal(len(whole), 1)
	is.True(bytes.Equal(whole[0].Hash, a[1].Hash))
	is.Equal(whole[0].Rows, int64(300))
	none, _ := sums(dbs[0], gapsync.KeyRange{Lo: a[3].Last, Hi: []any{int64(1 << 40), []byte("z")}}, math.MaxInt, math.MaxInt)
	is.Equal(len(none), 0)

	for _, damage := range []string{
		"UPDATE sums SET amount = 500.01 WHERE a = 166 AND b = 'k2'", // row 500, the second range
		"UPDATE sums SET note = '' WHERE a = 166 AND b = 'k2'",
		"UPDATE sums SET note = NULL WHERE a = 166 AND b = 'k2'",
		"UPDATE sums SET l1 = 'cafe 500' WHERE a = 166 AND b = 'k2'",
		"UPDATE sums SET data = X'01f400' WHERE a = 166 AND b = 'k2'",
		"UPDATE sums SET note = '订单 501', l1 = NULL WHERE a = 166 AND b = 'k2'",
	} {
		MustExec(t, dbs[1], damage)
		got, _ := sums(dbs[1], gapsync.KeyRange{}, 300, 10_000)
		for i := range got {
			is.Equal(bytes.Equal(got[i].Hash, a[i].Hash), i != 1) // damage: only its range differs
		}
	}

	// A '#' moved from the end of one column to the start of the next
	// (row 700, the third range): the same text joined, not the same row.
	MustExec(t, dbs[0], "UPDATE sums SET note = 'x#', l1 = 'y' WHERE a = 233 AND b = 'k1'")
	MustExec(t, dbs[1], "UPDATE sums SET note = 'x', l1 = '#y' WHERE a = 233 AND b = 'k1'")
	x, _ := sums(dbs[0], gapsync.KeyRange{}, 300, 10_000)
	y, _ := sums(dbs[1], gapsync.KeyRange{}, 300, 10_000)
	is.True(!bytes.Equal(x[2].Hash, y[2].Hash))
	is.True(bytes.Equal(x[3].Hash, y[3].Hash))

	_, _, err = dbs[0].SumRanges(ctx, tbl, cols, gapsync.KeyRange{}, 300, 1000, salt, "other-algo")
	is.True(errors.Is(err, gapsync.ErrMalformed))
	_, _, err = dbs[0].SumRanges(ctx, tbl, []string{"a", "b", "nope"}, gapsync.KeyRange{}, 300, 1000, salt, SumMySQLMD5)
	is.True(errors.Is(err, gapsync.ErrUnknownColumn))
	_, _, err = dbs[0].SumRanges(ctx, tbl, cols, gapsync.KeyRange{Lo: []any{int64(1)}}, 300, 1000, salt, SumMySQLMD5)
	is.True(errors.Is(err, gapsync.ErrMalformed))
	sq := openEngine(t, "sqlite", nil)
	is.Equal(sq.SumAlgorithm(), "")
}
