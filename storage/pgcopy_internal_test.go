package storage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// COPY's statement and its text format, without a server: tabs between
// fields, \N for NULL, the four escapes, bytea in hex; a value of another
// form is refused.
func TestPostgresCopySQL(t *testing.T) {
	is := is.New(t)
	d := pgDialect{}
	is.Equal(d.copyIn("t", []string{"id", `o"dd`}), `COPY "t" ("id","o""dd") FROM STDIN`)
	row, ok := d.copyRow(nil, []any{"1", nil, "a\tb\nc\rd\\e 中", []byte{0, 0xab, '\\'}, "", []byte{}})
	is.True(ok)
	is.Equal(string(row), "1\t\\N\ta\\tb\\nc\\rd\\\\e 中\t\\\\x00ab5c\t\t\\\\x\n")
	_, ok = d.copyRow(nil, []any{int64(1)})
	is.True(!ok)
}

// A first load's page is copied in on PostgreSQL, and what it writes is
// what the upsert writes, value for value: text with tabs, newlines and
// backslashes, bytea, arrays, intervals, an identity key. A page with a
// row that is there after all, or with a value the table refuses, goes
// through the upsert instead: the row is replaced, the value refused as
// always, and nothing of the COPY remains.
func TestPostgresLoadCopy(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	db := openEngine(t, "postgres", &Options{Lag: time.Millisecond})
	is.NoErr(db.Migrate(ctx))
	var copied []error
	var mu sync.Mutex
	testHookCopied = func(_ string, _ int64, err error) { mu.Lock(); copied = append(copied, err); mu.Unlock() }
	t.Cleanup(func() { testHookCopied = nil })
	names := []string{"id", "vc", "ch", "bits", "amount", "data", "ints", "span", "at", "note", "updated_at"}
	var cols []batch.Column
	for _, n := range names {
		cols = append(cols, batch.Column{Name: n, Key: n == "id"})
	}
	for _, tb := range []string{"loaded", "upserted"} {
		MustExec(t, db, `CREATE TABLE `+tb+` (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, vc varchar(3), ch char(2), bits bit(3),
			amount numeric(6,2), data bytea, ints text[], span interval day to second(3), at timestamp(3), note text, updated_at timestamp(6))`)
		is.NoErr(db.Configure(ctx, gapsync.Table{Name: tb, Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}))
	}
	apply := func(tb, id string, load bool, rows ...[]any) (gapsync.Result, error) {
		b := &batch.Batch{ID: id, Table: tb, Direction: "push", Columns: cols}
		if load {
			b.Flags = batch.FlagLoad
		}
		for _, r := range rows {
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: r})
		}
		return db.Apply(ctx, b)
	}
	const at = "2026-01-01 00:00:00.000000"
	rows := [][]any{
		{"1", "a\tb", "\\", "101", "1234.5", []byte{0, 0xff, '\\', '\t', '\n'}, `{"x\ty","a\\b",NULL,"\"q\""}`, "1 day 02:03:04.5",
			"2026-01-02 03:04:05.123", "订单 'x'\n第二行\r\n\\N \\. end", at},
		{"2", nil, nil, nil, nil, nil, nil, nil, nil, nil, at},
		{"3", "", "", "000", "-0.01", []byte{}, "{}", "-1 days", "1999-12-31 23:59:59.999", "", at},
	}
	same := func() {
		t.Helper()
		var a, b string
		is.NoErr(db.sql.QueryRow("SELECT string_agg(t::text, E'\\n' ORDER BY id) FROM loaded t").Scan(&a))
		is.NoErr(db.sql.QueryRow("SELECT string_agg(t::text, E'\\n' ORDER BY id) FROM upserted t").Scan(&b))
		is.Equal(a, b)
	}
	res, err := apply("loaded", "l-1", true, rows...)
	is.NoErr(err)
	is.Equal(res.Written, int64(3))
	is.Equal(copied, []error{nil}) // copied in
	_, err = apply("upserted", "u-1", false, rows...)
	is.NoErr(err)
	is.Equal(len(copied), 1) // not a load: upserted
	same()

	// A page read again (a window taken up after a kill) under a new id:
	// its rows are there, the COPY is undone and the rows upserted.
	changed := append([]any{}, rows[1]...)
	changed[1] = "new"
	res, err = apply("loaded", "l-2", true, changed, []any{"4", "x", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.NoErr(err)
	is.Equal(res.Written, int64(2))
	is.Equal(len(copied), 2)
	is.True(copied[1] != nil) // the COPY failed and was undone
	_, err = apply("upserted", "u-2", false, changed, []any{"4", "x", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.NoErr(err)
	same()

	// Too long for a column: refused as ever, nothing written.
	_, err = apply("loaded", "l-3", true, []any{"5", "ok", nil, nil, nil, nil, nil, nil, nil, nil, at}, []any{"6", "abcd", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.True(errors.Is(err, gapsync.ErrRejected))
	var n int
	is.NoErr(db.sql.QueryRow("SELECT count(*) FROM loaded").Scan(&n))
	is.Equal(n, 4)

	// The same batch id again: a duplicate, nothing copied.
	res, err = apply("loaded", "l-1", true, rows...)
	is.NoErr(err)
	is.True(res.Duplicate)
	is.Equal(len(copied), 3)
}
