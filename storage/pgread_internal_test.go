package storage

import (
	"context"
	"reflect"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
)

// sqlOnly is a dialect without its optional parts: a page is read
// through database/sql.
type sqlOnly struct{ dialect }

// On PostgreSQL a page is read from pgx itself (pgDialect.readRows): the
// same values, of the same Go types, as database/sql's scan into any
// gives, for every type gapsync reads, NULLs, empty text and bytea, a
// filter's flag, deletions from the tombstone table, and pages cut by
// rows and by bytes.
func TestPostgresRawReadSameValues(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	url := testdb.Postgres(t)
	db, err := OpenPostgres(url, nil)
	is.NoErr(err)
	defer db.Close()
	is.NoErr(db.Migrate(ctx))
	_, err = db.sql.ExecContext(ctx, `CREATE TABLE raw_read (
		id bigint PRIMARY KEY, t text, vc varchar(10), ch char(5), b bytea, n numeric, n2 numeric(14,2),
		f8 double precision, f4 real, i2 smallint, i4 integer, ok boolean, d date, ts timestamp(6), tz timestamptz,
		iv interval, j json, jb jsonb, u uuid, ia integer[], ta text[], ip inet, m money, bits bit varying(8),
		r int4range, x xml, upd timestamp(6) NOT NULL DEFAULT now() - interval '1 minute')`)
	is.NoErr(err)
	_, err = db.sql.ExecContext(ctx, `INSERT INTO raw_read (id, t, vc, ch, b, n, n2, f8, f4, i2, i4, ok, d, ts, tz, iv, j, jb, u, ia, ta, ip, m, bits, r, x) VALUES
		(1, 'plain', 'v', 'ab', '\x00ff10', 1.50, 12.30, 0.1, 0.1, -32768, -2147483648, true, '2024-02-29', '2024-02-29 23:59:59.000001', '2024-02-29 23:59:59.5+08',
		 '1 year 2 mons 3 days 04:05:06.7', '{"a": [1, 2.50]}', '{"b": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{"x y","\"q\"",NULL}', '10.0.0.1/8', 12.34, B'101', '[1,5)', '<a>x</a>'),
		(2, '', '', '', '', 'NaN', 0, 'NaN', '-Infinity', 0, 0, false, 'infinity', '-infinity', 'infinity',
		 '-1 day', 'null', '[]', '00000000-0000-0000-0000-000000000000', '{}', '{}', '::1', -0.01, B'', 'empty', ''),
		(3, E'tab\there\nnew line \\ back 订单', repeat('z', 10), 'abcde', NULL, -0.000001, -99.99, 1e308, 3.4e38, 32767, 2147483647, NULL, '0044-03-15 BC', '0044-03-15 12:00:00.25 BC', '1999-12-31 23:59:59.999999+00',
		 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(4, NULL, NULL, NULL, NULL, NULL, NULL, 5e-324, '-0', NULL, NULL, NULL, NULL, '10000-01-01 00:00:00', NULL,
		 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	is.NoErr(err)
	for i := 5; i <= 60; i++ {
		_, err = db.sql.ExecContext(ctx, "INSERT INTO raw_read (id, t, b, n, f8) VALUES (?, repeat('w', ?), decode(repeat('ab', ?), 'hex'), ?, ?)", i, i*37, i*11, i, float64(i)/7)
		is.NoErr(err)
	}
	sqlDB, err := OpenPostgres(url, nil)
	is.NoErr(err)
	defer sqlDB.Close()
	sqlDB.d = sqlOnly{sqlDB.d}
	_, ok := sqlDB.d.(rawReader)
	is.True(!ok)

	tables := []gapsync.Table{
		{Name: "raw_read", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "upd", Enabled: true},
		{Name: "raw_read", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "upd", Enabled: true, Filter: "id < 30", FilterAs: "delete"},
		{Name: "raw_read", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "upd", Enabled: true, Filter: "id >= 3"},
	}
	for _, tb := range tables {
		for _, d := range []*DB{db, sqlDB} {
			is.NoErr(d.Configure(ctx, tb))
		}
		is.NoErr(db.InstallTombstones(ctx, tb))
		_, err := db.sql.ExecContext(ctx, "DELETE FROM raw_read WHERE id = 60")
		is.NoErr(err)
		bound, err := db.Bound(ctx, tb)
		is.NoErr(err)
		for _, w := range []gapsync.Window{{To: bound}, {From: "2000-01-01 00:00:00.000000", To: bound}} {
			for _, p := range []gapsync.Page{{Rows: 1}, {Rows: 7}, {Rows: 1000}, {Rows: 1000, Bytes: 900}} {
				raw := readPages(t, db, tb, w, p)
				std := readPages(t, sqlDB, tb, w, p)
				is.True(len(raw) > 1)
				if !reflect.DeepEqual(raw, std) {
					for i := range raw {
						if i < len(std) && !reflect.DeepEqual(raw[i], std[i]) {
							t.Fatalf("filter %q window %v page %+v: page %d differs:\nraw %#v\nsql %#v", tb.Filter, w, p, i, raw[i], std[i])
						}
					}
					t.Fatalf("filter %q window %v page %+v: %d pages, database/sql %d", tb.Filter, w, p, len(raw), len(std))
				}
			}
		}
	}
}

// readPages reads every page of tb in w.
func readPages(t *testing.T, db *DB, tb gapsync.Table, w gapsync.Window, p gapsync.Page) []*batch.Batch {
	t.Helper()
	var out []*batch.Batch
	var after []byte
	for {
		b, next, more, err := db.ReadPage(context.Background(), tb, w, after, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		if !more {
			return out
		}
		after = next
	}
}
