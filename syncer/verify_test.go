package syncer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

const ordersDDL = `CREATE TABLE orders (
	id BIGINT NOT NULL PRIMARY KEY,
	note VARCHAR(50) NULL,
	amount DECIMAL(12,2) NULL,
	data BLOB NULL,
	updated_at DATETIME(6) NULL)`

// inKind turns the tests' MySQL-flavoured DDL into kind's, and blob
// writes a BLOB literal there from hex digits.
func inKind(kind, ddl string) string {
	if kind == "postgres" {
		return strings.NewReplacer("BLOB", "BYTEA", "DATETIME(6)", "TIMESTAMP(6)").Replace(ddl)
	}
	return ddl
}

func blobIn(kind, h string) string {
	if kind == "postgres" {
		return `'\x` + h + `'::bytea`
	}
	return "X'" + h + "'"
}

// eachEngine is eachBackend and PostgreSQL.
func eachEngine(t *testing.T, fn func(t *testing.T, kind string)) {
	eachBackend(t, fn)
	t.Run("postgres", func(t *testing.T) { fn(t, "postgres") })
}

var orders = gapsync.Table{Name: "orders", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

const lettersDDL = `CREATE TABLE letters (id BIGINT NOT NULL PRIMARY KEY, body TEXT NULL, updated_at DATETIME(6) NULL)`

var letters = gapsync.Table{Name: "letters", Direction: gapsync.Pull, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

// byteCounter counts the bytes of requests and answers that cross it.
type byteCounter struct {
	next  http.Handler
	bytes atomic.Int64
}

func (c *byteCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.bytes.Add(max(r.ContentLength, 0))
	c.next.ServeHTTP(&countingWriter{ResponseWriter: w, n: &c.bytes}, r)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return w.ResponseWriter.Write(p)
}

func diffLines(vs []gapsync.TableVerify) []string {
	var out []string
	for _, v := range vs {
		for _, d := range v.Diffs {
			out = append(out, fmt.Sprintf("%s %s %s %s %s", d.Table, d.KeyText(), d.Kind, d.Side, strings.Join(d.Columns, ",")))
		}
	}
	return out
}

// After a sync, verify finds nothing; damage made on the intranet behind
// sync's back (a row deleted, a DECIMAL digit and a BLOB byte changed in
// two others, a row added) is found exactly, with its kind and columns,
// and kept in sync_verify.
func TestVerifyFindsDamage(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		cnt := &byteCounter{next: z.faults.next}
		z.faults.next = cnt
		z.both(orders, inKind(kind, ordersDDL))
		z.both(letters, inKind(kind, lettersDDL))
		const n = 3000
		for start := 0; start < n; start += 500 {
			var vals []string
			for i := start; i < start+500; i++ {
				vals = append(vals, fmt.Sprintf("(%d, 'order %d', %d.%02d, %s, %s)", i, i, i, i%100, blobIn(kind, fmt.Sprintf("%04x00ff", i)), z.now))
			}
			mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
		}
		for i := 0; i < 20; i++ {
			mustExec(t, z.dst(), fmt.Sprintf("INSERT INTO letters (id, body, updated_at) VALUES (%d, 'doc %d', %s)", i, i, z.now))
		}
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)

		cnt.bytes.Store(0)
		vs, err := z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(len(vs), 2)
		is.Equal(diffLines(vs), []string(nil))
		rows := map[string]int64{}
		for _, v := range vs {
			rows[v.Table] = v.Rows
		}
		is.Equal(rows, map[string]int64{"orders": n, "letters": 20})
		t.Logf("%s: verify of %d equal rows: %d bytes crossed the gateway", kind, n+20, cnt.bytes.Load())
		is.True(cnt.bytes.Load() < 64<<10)

		// Damage behind sync's back.
		mustExec(t, z.dst(), "DELETE FROM orders WHERE id = 10")
		mustExec(t, z.dst(), "UPDATE orders SET amount = 1511.12 WHERE id = 1511")                    // was 1511.11
		mustExec(t, z.dst(), "UPDATE orders SET data = "+blobIn(kind, "07e800fe")+" WHERE id = 2024") // was X'07e800ff'
		mustExec(t, z.dst(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (99999, 'stray', 1.00, NULL, "+z.now+")")
		mustExec(t, z.src(), "DELETE FROM letters WHERE id = 7") // a pull table: the internet lacks it

		want := []string{
			"orders 10 missing intranet ",
			"orders 1511 different intranet amount",
			"orders 2024 different intranet data",
			"orders 99999 extra intranet ",
		}
		cnt.bytes.Store(0)
		vs, err = z.coord.Verify(ctx, []string{"orders"}, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), want)
		t.Logf("%s: verify finding 4 differing rows in %d: %d bytes crossed the gateway", kind, n, cnt.bytes.Load())

		// A deep bisection finds the same.
		vs, err = z.coord.Verify(ctx, []string{"orders", "letters"}, &syncer.VerifyOptions{RangeRows: 100, Fanout: 2, LeafRows: 3, Budget: 250})
		is.NoErr(err)
		is.Equal(diffLines(vs), append(want, "letters 7 missing internet "))
		is.Equal(vs[0].Ranges, n/100) // the intranet holds 3000 rows too

		kept, err := z.inet.Verifications(ctx, "")
		is.NoErr(err)
		is.Equal(len(kept), 2+5)
		is.Equal(kept[0].Kind, storage.VerifyTable)
		is.Equal(kept[0].Differ+kept[1].Differ, 5)
		var lines []string
		for _, k := range kept[2:] {
			lines = append(lines, k.TableName+" "+k.KeyText+" "+k.Kind+" "+k.Side+" "+k.Columns)
		}
		is.Equal(lines, append(want, "letters 7 missing internet "))

		_, err = z.coord.Verify(ctx, []string{"nope"}, nil)
		is.True(err != nil)
	})
}

// The verify endpoint takes the refusals of the others: a table not
// enabled there, a column it lacks or the allowlist leaves out, a request
// over the limits.
func TestVerifyEndpointRefuses(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{gw: &syncer.GatewayOptions{Columns: map[string][]string{"orders": {"id", "note", "amount", "updated_at"}}}})
	z.both(orders, ordersDDL)
	mustExec(t, z.dst(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (1, 'a', 1.00, X'00', "+z.now+")")
	all := []string{"id", "note", "amount", "data", "updated_at"}

	rs, more, err := z.client.HashRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil)
	is.NoErr(err)
	is.True(!more)
	is.Equal(len(rs), 1)
	is.Equal(rs[0].Rows, int64(1))

	_, _, err = z.client.HashRanges(ctx, orders, all, gapsync.KeyRange{}, 10, 100, nil)
	is.True(errors.Is(err, gapsync.ErrUnknownColumn)) // data is not in the allowlist
	_, err = z.client.RowsByKey(ctx, orders, all, [][]any{{int64(1)}})
	is.True(errors.Is(err, gapsync.ErrUnknownColumn))
	_, _, err = z.client.HashRanges(ctx, orders, []string{"id", "nope"}, gapsync.KeyRange{}, 10, 100, nil)
	is.True(errors.Is(err, gapsync.ErrUnknownColumn))
	other := orders
	other.Name = "letters"
	_, _, err = z.client.HashRanges(ctx, other, []string{"id"}, gapsync.KeyRange{}, 10, 100, nil)
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
	_, _, err = z.client.HashRanges(ctx, orders, []string{"id"}, gapsync.KeyRange{}, transport.MaxVerifyBudget+1, 100, nil)
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	_, _, err = z.client.HashRanges(ctx, orders, []string{"id"}, gapsync.KeyRange{Lo: []any{int64(1), int64(2)}}, 10, 100, nil)
	is.True(errors.Is(err, gapsync.ErrMalformed)) // a bound that is not a key

	got, err := z.client.RowsByKey(ctx, orders, []string{"id", "note"}, [][]any{{int64(1)}, {int64(2)}})
	is.NoErr(err)
	is.Equal(len(got), 2)
	is.Equal(fmt.Sprintf("%s", got[0][1]), "a")
	is.True(got[1] == nil)
}

// Repair sends the differing rows again and deletes the extra one (the
// internet has tombstones, so deletions travel); a row the application
// changed on the intranet after the verification saw it is left alone;
// a second verification finds only that row.
func TestRepairThenVerifyClean(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		z.both(orders, inKind(kind, ordersDDL))
		is.NoErr(z.inet.InstallTombstones(ctx, orders))
		var vals []string
		for i := 0; i < 500; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 'order %d', %d.%02d, %s, %s)", i, i, i, i%100, blobIn(kind, fmt.Sprintf("%04x00ff", i)), z.now))
		}
		mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)

		mustExec(t, z.dst(), "DELETE FROM orders WHERE id = 10")
		mustExec(t, z.dst(), "UPDATE orders SET amount = 111.12 WHERE id = 111")
		mustExec(t, z.dst(), "UPDATE orders SET data = "+blobIn(kind, "00e800fe")+" WHERE id = 232")
		mustExec(t, z.dst(), "UPDATE orders SET note = 'damaged' WHERE id = 300")
		mustExec(t, z.dst(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (99999, 'stray', 1.00, NULL, "+z.now+")")
		vs, err := z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(len(diffLines(vs)), 5)

		// The application changes row 300 on the intranet after the
		// verification saw it: the repair must not overwrite it.
		mustExec(t, z.dst(), "UPDATE orders SET note = 'by the application', updated_at = "+z.now+" WHERE id = 300")
		rs, err := z.coord.Repair(ctx, vs)
		is.NoErr(err)
		var done []string
		for _, r := range rs {
			done = append(done, fmt.Sprintf("%s %s %v %s", r.KeyText(), r.Action, r.Done, r.Reason))
		}
		is.Equal(done, []string{
			"10 upsert true ",
			"111 upsert true ",
			"232 upsert true ",
			"300  false changed since the verification saw it; the next cycle carries it",
			"99999 delete true ",
		})
		var note string
		is.NoErr(z.dst().QueryRow("SELECT note FROM orders WHERE id = 300").Scan(&note))
		is.Equal(note, "by the application")

		vs, err = z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string{"orders 300 different intranet note,updated_at"})
	})
}

// MariaDB on the internet, PostgreSQL on the intranet: both hash the
// canonical form of each value, so after a sync the verification finds
// nothing, and damage made on PostgreSQL (a DECIMAL digit, a microsecond
// of a timestamp, a Chinese character, NULL for an empty string, a bytea
// byte, a boolean) is named with its columns, and repaired.
func TestVerifyAcrossEngines(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "mysql", zoneOpts{})
	z.intra = openDB(t, "postgres")
	z.restartGateway()
	mixed := gapsync.Table{Name: "mixed", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	for _, db := range []*storage.DB{z.inet, z.intra} {
		is.NoErr(db.Configure(ctx, mixed))
	}
	mustExec(t, z.src(), `CREATE TABLE mixed (id BIGINT NOT NULL PRIMARY KEY, amount DECIMAL(30,10), big BIGINT UNSIGNED,
		at DATETIME(6), at0 DATETIME, ts TIMESTAMP(6) NULL, d DATE, tm TIME(6), body TEXT, note VARCHAR(50), data BLOB,
		flag TINYINT(1), f FLOAT, db DOUBLE, updated_at DATETIME(6))`)
	mustExec(t, z.dst(), `CREATE TABLE mixed (id BIGINT NOT NULL PRIMARY KEY, amount NUMERIC(30,10), big NUMERIC(20,0),
		at TIMESTAMP(6), at0 TIMESTAMP(0), ts TIMESTAMPTZ(6), d DATE, tm TIME(6), body TEXT, note VARCHAR(50), data BYTEA,
		flag BOOLEAN, f REAL, db DOUBLE PRECISION, updated_at TIMESTAMP(6))`)
	var vals []string
	for i := 0; i < 300; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d.0123456789, 18446744073709551615, '2026-01-02 03:04:05.%06d', '2026-01-02 03:04:05', "+
			"'2038-01-19 03:14:07.999999', '2026-12-31', '23:59:59.000001', '中文内容 %d 😀', '', X'00ff%04x', %d, 0.1, 0.30000000000000004, NOW(6))",
			i, i, i, i, i, i%2))
	}
	vals = append(vals, "(1000, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NOW(6))")
	mustExec(t, z.src(), "INSERT INTO mixed VALUES "+strings.Join(vals, ","))
	z.waitLag()
	_, err := z.runOnce()
	is.NoErr(err)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM mixed"), 301)

	vs, err := z.coord.Verify(ctx, nil, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string(nil))
	is.Equal(vs[0].Rows, int64(301))

	mustExec(t, z.dst(), "UPDATE mixed SET amount = 11.0123456788 WHERE id = 11")
	mustExec(t, z.dst(), "UPDATE mixed SET at = '2026-01-02 03:04:05.000023', ts = '2038-01-19 03:14:07.999998+00' WHERE id = 22")
	mustExec(t, z.dst(), "UPDATE mixed SET body = '中文内容 33 😁' WHERE id = 33")
	mustExec(t, z.dst(), "UPDATE mixed SET note = NULL WHERE id = 44")
	mustExec(t, z.dst(), `UPDATE mixed SET data = '\x00ff0038'::bytea, flag = NOT flag WHERE id = 55`)
	mustExec(t, z.dst(), "UPDATE mixed SET note = '' WHERE id = 1000")
	vs, err = z.coord.Verify(ctx, nil, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string{
		"mixed 11 different intranet amount",
		"mixed 22 different intranet at,ts",
		"mixed 33 different intranet body",
		"mixed 44 different intranet note",
		"mixed 55 different intranet data,flag",
		"mixed 1000 different intranet note",
	})

	rs, err := z.coord.Repair(ctx, vs)
	is.NoErr(err)
	for _, r := range rs {
		is.True(r.Done)
	}
	vs, err = z.coord.Verify(ctx, nil, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string(nil))
	var note sql.NullString
	is.NoErr(z.dst().QueryRow("SELECT note FROM mixed WHERE id = 44").Scan(&note))
	is.True(note.Valid && note.String == "")
}

// RowsPerSecond paces a verification: 1,200 rows at 2,000 a second take
// at least 0.6 s.
func TestVerifyRowsPerSecond(t *testing.T) {
	is := is.New(t)
	z := newZones(t, "sqlite", zoneOpts{})
	z.both(orders, ordersDDL)
	var vals []string
	for i := 0; i < 1200; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'o', 1.00, NULL, '2026-01-01 00:00:00')", i))
	}
	for _, db := range []*sql.DB{z.src(), z.dst()} {
		mustExec(t, db, "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
	}
	start := time.Now()
	vs, err := z.coord.Verify(context.Background(), nil, &syncer.VerifyOptions{RowsPerSecond: 2000})
	is.NoErr(err)
	is.Equal(vs[0].Rows, int64(1200))
	is.Equal(len(vs[0].Diffs), 0)
	is.True(time.Since(start) >= 600*time.Millisecond)
}
