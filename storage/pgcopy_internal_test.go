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
	db := openEngine(t, "postgres", &Options{Lag: time.Millisecond})
	is.NoErr(db.Migrate(context.Background()))
	var copied []error
	var mu sync.Mutex
	testHookCopied = func(_ string, _ int64, err error) { mu.Lock(); copied = append(copied, err); mu.Unlock() }
	t.Cleanup(func() { testHookCopied = nil })
	load, upsert := typedTable(t, db, "loaded", "text[]"), typedTable(t, db, "upserted", "text[]")
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
	res, err := load("l-1", batch.FlagLoad, rows...)
	is.NoErr(err)
	is.Equal(res.Written, int64(3))
	is.Equal(copied, []error{nil}) // copied in
	_, err = upsert("u-1", 0, rows...)
	is.NoErr(err)
	is.Equal(len(copied), 1) // not a load: upserted
	same()

	// A page read again (a window taken up after a kill) under a new id:
	// its rows are there, the COPY is undone and the rows upserted.
	changed := append([]any{}, rows[1]...)
	changed[1] = "new"
	res, err = load("l-2", batch.FlagLoad, changed, []any{"4", "x", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.NoErr(err)
	is.Equal(res.Written, int64(2))
	is.Equal(len(copied), 2)
	is.True(copied[1] != nil) // the COPY failed and was undone
	_, err = upsert("u-2", 0, changed, []any{"4", "x", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.NoErr(err)
	same()

	// Too long for a column: refused as ever, nothing written.
	_, err = load("l-3", batch.FlagLoad, []any{"5", "ok", nil, nil, nil, nil, nil, nil, nil, nil, at}, []any{"6", "abcd", nil, nil, nil, nil, nil, nil, nil, nil, at})
	is.True(errors.Is(err, gapsync.ErrRejected))
	var n int
	is.NoErr(db.sql.QueryRow("SELECT count(*) FROM loaded").Scan(&n))
	is.Equal(n, 4)

	// The same batch id again: a duplicate, nothing copied.
	res, err = load("l-1", batch.FlagLoad, rows...)
	is.NoErr(err)
	is.True(res.Duplicate)
	is.Equal(len(copied), 3)
}
