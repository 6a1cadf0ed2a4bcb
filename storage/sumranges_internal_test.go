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
	"github.com/gapsync/gapsync/storage/sqltest"
)

// SumRanges on two MariaDB databases with the same rows gives the same
// ranges (the same last keys and counts as HashRanges, composite key and
// all) and the same sums; one value changed, NULL for an empty string,
// or a byte of a latin1 or Chinese value makes exactly its range differ.
func TestSumRangesMariaDB(t *testing.T) {
	sumRangesCase(t, "mariadb", SumMySQLMD5,
		"CREATE TABLE sums (a INT NOT NULL, b VARCHAR(10) NOT NULL, note VARCHAR(40) CHARACTER SET utf8mb4 NULL, "+
			"l1 VARCHAR(20) CHARACTER SET latin1 NULL, amount DECIMAL(12,2) NULL, data BLOB NULL, updated_at DATETIME(6) NULL, PRIMARY KEY (a, b))",
		"(%d, 'k%d', '订单 %d', 'café %d', %d.%02d, X'%04x00', '2026-01-01 00:00:00.%06d')",
		[]string{
			"UPDATE sums SET amount = 500.01 WHERE a = 166 AND b = 'k2'", // row 500, the second range
			"UPDATE sums SET note = '' WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET note = NULL WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET l1 = 'cafe 500' WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET data = X'01f400' WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET note = '订单 501', l1 = NULL WHERE a = 166 AND b = 'k2'",
		})
	sq := openEngine(t, "sqlite", nil)
	is.New(t).Equal(sq.SumAlgorithm(), "")
}

// The same on two PostgreSQL databases, with their own checksum, a float
// to its last bit and a microsecond of a timestamp among the damage.
func TestSumRangesPostgres(t *testing.T) {
	sumRangesCase(t, "postgres", SumPostgresMD5,
		"CREATE TABLE sums (a INT NOT NULL, b VARCHAR(10) NOT NULL, note VARCHAR(40) NULL, "+
			"l1 TEXT NULL, amount NUMERIC(12,2) NULL, data BYTEA NULL, updated_at TIMESTAMP(6) NULL, f8 DOUBLE PRECISION NULL, PRIMARY KEY (a, b))",
		`(%d, 'k%d', '订单 %d', 'café %d', %d.%02d, '\x%04x00', '2026-01-01 00:00:00.%06d', 0.5)`,
		[]string{
			"UPDATE sums SET amount = 500.01 WHERE a = 166 AND b = 'k2'", // row 500, the second range
			"UPDATE sums SET note = '' WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET note = NULL WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET l1 = 'cafe 500' WHERE a = 166 AND b = 'k2'",
			`UPDATE sums SET data = '\x01f400' WHERE a = 166 AND b = 'k2'`,
			"UPDATE sums SET note = '订单 501', l1 = NULL WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET updated_at = updated_at + interval '1 microsecond' WHERE a = 166 AND b = 'k2'",
			"UPDATE sums SET f8 = 0.5000000000000001 WHERE a = 166 AND b = 'k2'", // the next double after 0.5
		})
	is := is.New(t)
	ctx := context.Background()
	tbl := gapsync.Table{Name: "sums", Direction: gapsync.Push, Key: []string{"a", "b"}, Cursor: "updated_at", Enabled: true}
	// The two engines' checksums never compare: each refuses the other's.
	my, pg := openEngine(t, "mariadb", nil), openEngine(t, "postgres", nil)
	for _, db := range []*DB{my, pg} {
		is.NoErr(db.Migrate(ctx))
		MustExec(t, db, "CREATE TABLE sums (a INT NOT NULL, b VARCHAR(10) NOT NULL, updated_at DATETIME(6) NULL, PRIMARY KEY (a, b))")
		is.NoErr(db.Configure(ctx, tbl))
	}
	is.True(SumMySQLMD5 != SumPostgresMD5)
	is.Equal(pg.SumAlgorithm(), SumPostgresMD5)
	is.True(pg.SumExactFloats() && !my.SumExactFloats())
	_, _, err := my.SumRanges(ctx, tbl, []string{"a", "b"}, gapsync.KeyRange{}, 10, 10, nil, SumPostgresMD5)
	is.True(errors.Is(err, gapsync.ErrMalformed))
	_, _, err = pg.SumRanges(ctx, tbl, []string{"a", "b"}, gapsync.KeyRange{}, 10, 10, nil, SumMySQLMD5)
	is.True(errors.Is(err, gapsync.ErrMalformed))
}

// sumRangesCase makes the table of ddl on two databases of engine, fills
// both with the same 1,000 rows (row's format takes i/3, i%3, i, i, i,
// i%100, i, i), and checks algo's sums: the same ranges as HashRanges,
// the same sums on both, salted, cut by the budget and at 256 ranges;
// each of damage (to row 500, in the second range of 300) makes exactly
// that range differ; a byte moved between the text columns note and l1
// too.
func sumRangesCase(t *testing.T, engine, algo, ddl, row string, damage []string) {
	is := is.New(t)
	ctx := context.Background()
	tbl := gapsync.Table{Name: "sums", Direction: gapsync.Push, Key: []string{"a", "b"}, Cursor: "updated_at", Enabled: true}
	var dbs []*DB
	for range 2 {
		db := openEngine(t, engine, &Options{Lag: time.Millisecond})
		is.NoErr(db.Migrate(ctx))
		MustExec(t, db, ddl)
		var vals []string
		for i := 0; i < 1000; i++ {
			vals = append(vals, fmt.Sprintf(row, i/3, i%3, i, i, i, i%100, i, i))
		}
		MustExec(t, db, "INSERT INTO sums VALUES "+strings.Join(vals, ","))
		is.NoErr(db.Configure(ctx, tbl))
		dbs = append(dbs, db)
	}
	cols, err := dbs[0].VerifyColumns(ctx, tbl)
	is.NoErr(err)
	salt := []byte("salt")
	is.Equal(dbs[0].SumAlgorithm(), algo)
	sums := func(db *DB, r gapsync.KeyRange, per, budget int) ([]gapsync.RangeHash, bool) {
		t.Helper()
		rs, more, err := db.SumRanges(ctx, tbl, cols, r, per, budget, salt, algo)
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
	other, _, err := dbs[0].SumRanges(ctx, tbl, cols, gapsync.KeyRange{}, 300, 10_000, []byte("other"), algo)
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
	none, _ := sums(dbs[0], gapsync.KeyRange{Lo: a[3].Last, Hi: []any{int64(1 << 30), []byte("z")}}, math.MaxInt, math.MaxInt)
	is.Equal(len(none), 0)

	for _, damage := range damage {
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
	_, _, err = dbs[0].SumRanges(ctx, tbl, []string{"a", "b", "nope"}, gapsync.KeyRange{}, 300, 1000, salt, algo)
	is.True(errors.Is(err, gapsync.ErrUnknownColumn))
	_, _, err = dbs[0].SumRanges(ctx, tbl, cols, gapsync.KeyRange{Lo: []any{int64(1)}}, 300, 1000, salt, algo)
	is.True(errors.Is(err, gapsync.ErrMalformed))
}

// PostgreSQL's checksum over every type the project carries
// (sqltest.PostgresTypes, at their edges): two databases with the same
// rows sum alike, also when one's session prints floats with fewer
// digits, dates, intervals and bytea another way and runs in another
// time zone (a value is hashed in its binary form, not its text); and a
// change of one bit of a float, one microsecond, one byte, one digit of
// a numeric, one element of an array, … in any column makes the sums
// differ, until the other side has the same change.
func TestSumRangesPostgresTypes(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	tbl := sqltest.PostgresTypes.Config
	var dbs []*DB
	for range 2 {
		db := openEngine(t, "postgres", &Options{Lag: time.Millisecond})
		is.NoErr(db.Migrate(ctx))
		for _, q := range append(append([]string{}, sqltest.PostgresTypes.DDL...), sqltest.PostgresTypes.Insert...) {
			_, err := db.sql.ExecContext(ctx, q)
			is.NoErr(err)
		}
		is.NoErr(db.Configure(ctx, tbl))
		dbs = append(dbs, db)
	}
	// The second database's one session prints values its own way.
	odd := dbs[1]
	odd.sql.SetMaxOpenConns(1)
	_, err := odd.sql.ExecContext(ctx, "SET extra_float_digits = -15; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; "+
		"SET TimeZone = 'Pacific/Chatham'; SET bytea_output = 'escape'")
	is.NoErr(err)
	cols, err := dbs[0].VerifyColumns(ctx, tbl)
	is.NoErr(err)
	is.True(len(cols) >= 30)
	salt := []byte("types")
	sum := func(db *DB) []gapsync.RangeHash {
		t.Helper()
		rs, more, err := db.SumRanges(ctx, tbl, cols, gapsync.KeyRange{}, 2, 1000, salt, SumPostgresMD5)
		is.NoErr(err)
		is.True(!more)
		is.Equal(len(rs), 3) // 6 rows, 2 a range
		return rs
	}
	same := func() bool {
		t.Helper()
		a, b := sum(dbs[0]), sum(dbs[1])
		eq := true
		for i := range a {
			eq = eq && bytes.Equal(a[i].Hash, b[i].Hash)
		}
		return eq
	}
	is.True(same())
	var efd string
	is.NoErr(odd.sql.QueryRowContext(ctx, "SHOW extra_float_digits").Scan(&efd))
	is.Equal(efd, "-15") // the sums above ran in that session

	// The same instant written in another zone is the same value.
	MustExec(t, odd, "UPDATE types_demo SET tz = '2000-02-29 04:34:56.000001+00' WHERE k = 'floats'")
	is.True(same())

	where := map[string]string{"max": "k = 'max'", "min": "k = 'min'", "special": "k = 'special'", "floats": "k = 'floats'", "key": "id = 2", "nulls": "k = 'nulls'"}
	for _, c := range []struct{ row, set string }{
		{"key", "f8 = 0.3"},      // 0.30000000000000004 less one unit in the last place
		{"floats", "f8 = 0"},     // -0: the sign bit
		{"floats", "f4 = 0"},     // the same for a real
		{"key", "f4 = 16777218"}, // 16777216 and the next real
		{"max", "f8 = 1.7976931348623155e308"},
		{"special", "f4 = 'Infinity'"},
		{"max", "nu = nu - 0.000000000000000000000000000001"}, // the last of 65 digits
		{"max", "nf = nf + 0.000000000000000000000000000001"},
		{"special", "nf = 'NaN'"},
		{"max", "ni = 12345678.91"},
		{"max", "i2 = 32766"}, {"max", "i4 = 2147483646"}, {"max", "i8 = 9223372036854775806"},
		{"min", "bo = true"},
		{"special", "bo = false"}, // NULL: false
		{"max", "da = '5874897-12-30'"},
		{"floats", "ts = '2000-02-29 12:34:56.000002'"}, // a microsecond
		{"floats", "tz = '2000-02-29 12:34:56.000002+08'"},
		{"special", "ts = 'infinity'"},
		{"special", "tm = '00:00:00.000002'"},
		{"special", "tt = '12:00:00+01'"}, // the same time in another zone is another timetz
		{"special", "iv = '1 day -1 second -1 microsecond'"},
		{"special", "iv = '23:59:59'"},   // equal as an interval, held apart by PostgreSQL as by its text
		{"max", `ba = '\x000102feff01'`}, // one byte
		{"min", "ba = NULL"},             // NULL for no bytes
		{"special", `ba = '\x0000'`},
		{"max", "tx = '中文字符 😀 emoji 🎊'"},
		{"min", "tx = NULL"},                                 // NULL for ''
		{"special", "tx = ' trailing', vc = ' a''quoted\"'"}, // a byte moved between two text columns
		{"special", "ch = '  '"},                             // char(10) pads: the same
		{"max", "vc = repeat('长', 299) || '张'"},
		{"max", `js = '{"k": [1, 2.5, "中", null, {"e": "😀"}],  "k": 2}'`}, // json keeps its spaces
		{"max", `jb = '{"b": 1, "a": [true, false]}'`},
		{"max", "uu = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"},
		{"max", "ia = '{1,2,NULL,-4}'"},
		{"max", `ta = '{"a b","中","NULL","\""}'`}, // the text NULL for a NULL element
		{"special", "ia = '{{1,2},{3,5}}'"},
		{"special", "ia = '{1,2,3,5}'"}, // the same elements in one dimension
		{"max", "bits = B'1111111111111111111111111111111111111111111111111111111111111110'"},
		{"min", "bits = B'00'"},
		{"max", "mo = 'ok'"}, {"max", "ip = '10.0.0.2'"}, {"max", "mc = '08:00:2b:01:02:04'"},
		{"max", "pt = '(0,1e-300)'"}, // -0: one bit
		{"max", "xm = '<y/>'"}, {"max", "dm = 2147483646"}, {"max", "tr = '[2020-01-01,2021-01-01)'"},
		{"nulls", "tx = ''"},
		{"nulls", "updated_at = '2000-01-01'"},
	} {
		q := "UPDATE types_demo SET " + c.set + " WHERE " + where[c.row]
		_, err := odd.sql.ExecContext(ctx, q)
		is.NoErr(err)
		if c.set == "ch = '  '" {
			is.True(same()) // char(10) holds ' ' and '  ' alike
		} else if same() {
			t.Errorf("%s: the sums are equal", q)
		}
		_, err = dbs[0].sql.ExecContext(ctx, q)
		is.NoErr(err)
		if !same() {
			t.Errorf("%s on both: the sums differ", q)
		}
	}
}

// A sum reads as its 64 bits whether the driver gives it signed,
// unsigned or as digits.
func TestSum64Scan(t *testing.T) {
	is := is.New(t)
	for _, v := range []any{int64(-1), uint64(math.MaxUint64), []byte("18446744073709551615"), "-1"} {
		var s sum64
		is.NoErr(s.Scan(v))
		is.Equal(uint64(s), uint64(math.MaxUint64))
	}
	var s sum64
	is.NoErr(s.Scan(int64(5)))
	is.Equal(uint64(s), uint64(5))
	is.True(s.Scan("x") != nil)
	is.True(s.Scan(1.5) != nil)
}

// PostgreSQL's row digest, without a server: each column's send form, a
// length before those of varying width, an array's element oid zeroed,
// a type of the application's own as its text, then the NULL bits in
// words of 64; no checksum without bit_xor.
func TestPostgresRowSumSQL(t *testing.T) {
	is := is.New(t)
	d := pgDialect{bitXor: true}
	is.Equal(d.sumAlgorithm(), SumPostgresMD5)
	is.Equal(pgDialect{}.sumAlgorithm(), "")
	got := d.rowSum([]string{"id", "note", "f", "ia", "mo"}, []string{"bigint", "character varying(3)", "double precision", "integer[]", "mood"})
	is.Equal(got, `('x' || md5(decode(?, 'hex')`+
		` || COALESCE(int8send("id"), ''::bytea)`+
		` || COALESCE(int4send(octet_length(varcharsend("note"))) || varcharsend("note"), ''::bytea)`+
		` || COALESCE(float8send("f"), ''::bytea)`+
		` || COALESCE(int4send(octet_length(overlay(array_send("ia") placing '\x00000000'::bytea from 9 for 4))) || overlay(array_send("ia") placing '\x00000000'::bytea from 9 for 4), ''::bytea)`+
		` || COALESCE(int4send(octet_length(textsend("mo"::text))) || textsend("mo"::text), ''::bytea)`+
		` || int8send((("id" IS NULL)::int::int8 << 0) | (("note" IS NULL)::int::int8 << 1) | (("f" IS NULL)::int::int8 << 2) | (("ia" IS NULL)::int::int8 << 3) | (("mo" IS NULL)::int::int8 << 4))`+
		`))::bit(64)::bigint`)
	is.Equal(strings.Count(got, "?"), 1) // the salt
	var cols, types []string
	for i := range 65 {
		cols, types = append(cols, fmt.Sprintf("c%d", i)), append(types, "timestamp(6) with time zone")
	}
	got = d.rowSum(cols, types)
	is.Equal(strings.Count(got, "timestamptz_send("), 65)
	is.Equal(strings.Count(got, "int8send("), 2) // two words of NULL bits
	is.True(strings.Contains(got, `|| int8send((("c64" IS NULL)::int::int8 << 0))`))
}
