package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// The column-array upsert's SQL, without a server: one text[] (bytea[])
// parameter a column, each cast to the type without its typmod, and the
// same statement text for any number of rows; an unknown type or a value
// not in writeValue's form falls back to the VALUES list.
func TestPostgresArrayUpsertSQL(t *testing.T) {
	is := is.New(t)
	d := pgDialect{}
	for typ, want := range map[string]string{
		"bigint": "bigint", "character varying(64)": "character varying", "character(3)": "bpchar",
		"numeric(14,2)": "numeric", "timestamp(6) without time zone": "timestamp without time zone",
		"time(3) with time zone": "time with time zone", "bit(4)": "varbit", "bit varying(8)": "bit varying",
		"interval day to second(3)": "interval", "character varying(10)[]": "character varying[]",
		"character(2)[][]": "bpchar[][]", "integer[]": "integer[]", `"My Type"`: `"My Type"`, "": "",
	} {
		is.Equal(pgBaseType(typ), want) // typ
	}
	rows := func(vals ...[]any) []batch.Row {
		var out []batch.Row
		for _, v := range vals {
			out = append(out, batch.Row{Op: batch.OpUpsert, Values: v})
		}
		return out
	}
	cols, types := []string{"id", "v", "b"}, []string{"bigint", "character varying(3)", "bytea"}
	q, ok := d.arrayUpsert("t", cols, types, []string{"id"}, rows([]any{"1", "x", []byte{0}}, []any{"2", nil, nil}))
	is.True(ok)
	is.Equal(q.SQL, `INSERT INTO "t" ("id","v","b") OVERRIDING SYSTEM VALUE SELECT CAST("v1" AS bigint),CAST("v2" AS character varying),"v3" `+
		`FROM unnest(?::text[],?::text[],?::bytea[]) AS u("v1","v2","v3") ON CONFLICT ("id") DO UPDATE SET "v"=excluded."v","b"=excluded."b"`)
	one, _ := d.arrayUpsert("t", cols, types, []string{"id"}, rows([]any{"1", "x", nil}))
	is.Equal(one.SQL, q.SQL) // one text for any number of rows
	is.Equal(len(q.Args), 3)
	ids, vs, bs := q.Args[0].([]*string), q.Args[1].([]*string), q.Args[2].([][]byte)
	is.Equal(*ids[0], "1")
	is.Equal(*ids[1], "2")
	is.Equal(*vs[0], "x")
	is.True(vs[1] == nil) // NULL
	is.Equal(bs[0], []byte{0})
	is.True(bs[1] == nil)
	_, ok = d.arrayUpsert("t", cols, []string{"bigint", "", "bytea"}, []string{"id"}, rows([]any{"1", "x", nil}))
	is.True(!ok) // a type not known
	_, ok = d.arrayUpsert("t", cols, types, []string{"id"}, rows([]any{int64(1), "x", nil}))
	is.True(!ok) // not text
	_, ok = d.arrayUpsert("t", cols, types, []string{"id"}, rows([]any{"1", "x", "not bytes"}))
	is.True(!ok)
}

// Through the column arrays, PostgreSQL keeps every value exactly and
// applies each column's typmod as it does to a parameter: a value too
// long for a varchar(n), a char(n) or a bit(n) is refused, not cut, and a
// decimal keeps its scale; NULLs stay NULL, bytea is bytes, arrays and
// intervals arrive whole, an identity key takes the id that arrives, and
// an upsert updates the rows it finds.
func TestPostgresArrayUpsert(t *testing.T) {
	is := is.New(t)
	db := openEngine(t, "postgres", &Options{Lag: time.Millisecond})
	is.NoErr(db.Migrate(context.Background()))
	apply := typedTable(t, db, "typed", "integer[]")
	const at = "2026-01-01 00:00:00.000000"
	res, err := apply("typed-1", 0,
		[]any{"1", "abc", "ab", "101", "1234.5", []byte{0, 0xff, '\\'}, "{1,2,NULL}", "1 day 02:03:04.5", "2026-01-02 03:04:05.123", "订单 'x'", at},
		[]any{"2", nil, nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.NoErr(err)
	is.Equal(res.Written, int64(2))
	var vc, ch, bits, amount, ints, span, stamp, note string
	var data []byte
	is.NoErr(db.sql.QueryRow("SELECT vc, ch, bits::text, amount::text, data, ints::text, span::text, at::text, note FROM typed WHERE id = 1").
		Scan(&vc, &ch, &bits, &amount, &data, &ints, &span, &stamp, &note))
	is.Equal([]string{vc, ch, bits, amount, ints, span, stamp, note},
		[]string{"abc", "ab", "101", "1234.50", "{1,2,NULL}", "1 day 02:03:04.5", "2026-01-02 03:04:05.123", "订单 'x'"})
	is.Equal(data, []byte{0, 0xff, '\\'})
	var nulls int
	is.NoErr(db.sql.QueryRow("SELECT num_nulls(vc, ch, bits, amount, data, ints, span, at, note) FROM typed WHERE id = 2").Scan(&nulls))
	is.Equal(nulls, 9)

	// Too long for the column: refused, as a parameter would be.
	for i, bad := range [][]any{
		{"3", "abcd", nil, nil, nil, nil, nil, nil, nil, nil, at},
		{"3", nil, "abc", nil, nil, nil, nil, nil, nil, nil, at},
		{"3", nil, nil, "1011", nil, nil, nil, nil, nil, nil, at},
	} {
		_, err := apply("typed-bad-"+string(rune('a'+i)), 0, bad)
		is.True(err != nil)
		is.True(errors.Is(err, gapsync.ErrRejected)) // a value the column cannot store
	}
	var n int
	is.NoErr(db.sql.QueryRow("SELECT count(*) FROM typed").Scan(&n))
	is.Equal(n, 2)

	// An upsert of a row that is there updates it.
	res, err = apply("typed-2", 0, []any{"2", "z", "z", "111", "-1", []byte{}, "{}", "00:00:00", nil, "", at})
	is.NoErr(err)
	is.Equal(res.Written, int64(1))
	is.NoErr(db.sql.QueryRow("SELECT vc, ch, bits::text, amount::text, data, ints::text, note FROM typed WHERE id = 2").
		Scan(&vc, &ch, &bits, &amount, &data, &ints, &note))
	is.Equal([]string{vc, ch, bits, amount, ints, note}, []string{"z", "z ", "111", "-1.00", "{}", ""})
	is.Equal(len(data), 0)
}

// typedTable creates a push table name of types that take a typmod, an
// identity key and an array column of arrayType, and returns a function
// that applies rows over all its columns as one batch.
func typedTable(t *testing.T, db *DB, name, arrayType string) func(id string, flags batch.Flags, rows ...[]any) (gapsync.Result, error) {
	t.Helper()
	ctx := context.Background()
	MustExec(t, db, `CREATE TABLE `+name+` (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, vc varchar(3), ch char(2), bits bit(3),
		amount numeric(6,2), data bytea, ints `+arrayType+`, span interval day to second(3), at timestamp(3), note text, updated_at timestamp(6))`)
	if err := db.Configure(ctx, gapsync.Table{Name: name, Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	var cols []batch.Column
	for _, n := range []string{"id", "vc", "ch", "bits", "amount", "data", "ints", "span", "at", "note", "updated_at"} {
		cols = append(cols, batch.Column{Name: n, Key: n == "id"})
	}
	return func(id string, flags batch.Flags, rows ...[]any) (gapsync.Result, error) {
		b := &batch.Batch{ID: id, Table: name, Direction: "push", Flags: flags, Columns: cols}
		for _, r := range rows {
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: r})
		}
		return db.Apply(ctx, b)
	}
}
