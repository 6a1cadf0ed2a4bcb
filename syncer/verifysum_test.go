package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// Two MariaDB databases, and two PostgreSQL ones: the ranges are
// checksummed by the servers (no row read out above the leaves), and the
// report is the one the row hashes give. A table with a binary float is
// hashed from its rows on MariaDB (its checksum reads the float's text)
// and checksummed on PostgreSQL (whose checksum takes its bits), a
// last-bit difference found either way; a table whose column types
// differ between the sides is hashed from its rows; a database that
// cannot checksum (SQLite) refuses to be asked.
func TestVerifySumsOnTheServers(t *testing.T) {
	t.Run("mariadb", func(t *testing.T) { verifySums(t, "mysql") })
	t.Run("postgres", func(t *testing.T) { verifySums(t, "postgres") })

	// SQLite has no server checksum: asked for one, the gateway answers
	// with row hashes, which the client tells apart.
	is := is.New(t)
	ctx := context.Background()
	zs := newZones(t, "sqlite", zoneOpts{})
	zs.both(orders, ordersDDL)
	_, _, err := zs.client.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, storage.SumMySQLMD5)
	is.True(errors.Is(err, transport.ErrNoSum))
	_, _, err = zs.client.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, strings.Repeat("x", transport.MaxSumName+1))
	is.True(errors.Is(err, gapsync.ErrTooLarge))
}

// servedRanges is how many range hashes of rows read out the gateway's
// log says it served.
func servedRanges(t *testing.T, log string) int {
	t.Helper()
	hashed := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "served verify ranges") {
			var n int
			if _, err := fmt.Sscanf(l[strings.Index(l, " ranges=")+1:], "ranges=%d", &n); err != nil {
				t.Fatal(err)
			}
			hashed += n
		}
	}
	return hashed
}

func verifySums(t *testing.T, kind string) {
	is := is.New(t)
	ctx := context.Background()
	var logs lockedBuffer
	z := newZones(t, kind, zoneOpts{gw: &syncer.GatewayOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	want := damagedOrders(t, z, 3000)
	vs, err := z.coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 500})
	is.NoErr(err)
	is.Equal(diffLines(vs), want)
	is.Equal(vs[0].Rows, int64(3001))
	served := logs.String()
	is.True(strings.Count(served, "served verify sums") > 0)
	// Rows are read out and hashed only at the leaves of the bisection:
	// a few ranges of one row around each of the four differing rows.
	hashed := servedRanges(t, served)
	t.Logf("rows hashed from rows read out: %d of 3001", hashed)
	is.True(hashed <= 4*64)
	is.True(strings.Contains(served, "served verify rows")) // the differing rows' values, to name their columns

	// A binary float: MariaDB's checksum reads its text, which could
	// hide a last bit, so rows are hashed; PostgreSQL's takes its bits.
	floatsDDL := "CREATE TABLE floats (id BIGINT NOT NULL PRIMARY KEY, f FLOAT NULL, updated_at DATETIME(6) NULL)"
	next := "42.500004" // the next float32 after 42.5
	if kind == "postgres" {
		floatsDDL, next = "CREATE TABLE floats (id BIGINT NOT NULL PRIMARY KEY, f DOUBLE PRECISION NULL, updated_at TIMESTAMP(6) NULL)", "42.50000000000001"
	}
	floats := gapsync.Table{Name: "floats", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	z.both(floats, floatsDDL)
	var vals []string
	for i := 0; i < 100; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d.5, %s)", i, i, z.now))
	}
	mustExec(t, z.src(), "INSERT INTO floats VALUES "+strings.Join(vals, ","))
	z.waitLag()
	_, err = z.runOnce()
	is.NoErr(err)
	logs.Reset()
	vs, err = z.coord.Verify(ctx, []string{"floats"}, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string(nil))
	if kind == "postgres" {
		is.True(strings.Contains(logs.String(), "served verify sums"))
		is.Equal(servedRanges(t, logs.String()), 0) // equal: not a row read out
	}
	mustExec(t, z.dst(), "UPDATE floats SET f = "+next+" WHERE id = 42")
	logs.Reset()
	vs, err = z.coord.Verify(ctx, []string{"floats"}, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string{"floats 42 different intranet f"})
	is.Equal(strings.Contains(logs.String(), "served verify sums"), kind == "postgres")

	// Other column types there: rows hashed, in the canonical form, equal.
	if kind == "postgres" {
		mustExec(t, z.dst(), "ALTER TABLE orders ALTER COLUMN note TYPE VARCHAR(80)")
	} else {
		mustExec(t, z.dst(), "ALTER TABLE orders MODIFY note VARCHAR(80) NULL")
	}
	logs.Reset()
	vs, err = z.coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 500})
	is.NoErr(err)
	is.Equal(diffLines(vs), want)
	is.True(!strings.Contains(logs.String(), "served verify sums"))
}

// PostgreSQL on both sides, every type the project carries
// (sqltest.PostgresTypes): equal tables are compared by the servers'
// checksums without a row read out, and one bit of a float, one
// microsecond of a timestamp or a timestamptz, one byte of a bytea, one
// digit of a numeric, an array's element, a json's text, an interval, a
// uuid, a boolean, a date, a time are each found, with their columns.
func TestVerifySumsPostgresTypes(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	var logs lockedBuffer
	z := newZones(t, "postgres", zoneOpts{gw: &syncer.GatewayOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	tt := z.typesTable
	z.both(tt.Config, tt.DDL...)
	for _, db := range []*storage.DB{z.inet, z.intra} {
		for _, q := range tt.Insert {
			mustExec(t, db.Bun().DB, q)
		}
	}
	name := []string{tt.Config.Name}
	vs, err := z.coord.Verify(ctx, name, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string(nil))
	is.Equal(vs[0].Rows, int64(6))
	is.True(strings.Contains(logs.String(), "served verify sums"))
	is.Equal(servedRanges(t, logs.String()), 0) // not a row read out

	for _, c := range []struct{ set, where, want string }{
		{"f8 = 0.3", "id = 2", "2,键 🔑 different intranet f8"},        // 0.30000000000000004 less one unit in the last place
		{"f4 = 0", "k = 'floats'", "1,floats different intranet f4"}, // -0
		{"ts = '2000-02-29 12:34:56.000002'", "k = 'floats'", "1,floats different intranet ts"},
		{"tz = '2000-02-29 12:34:56.000002+08'", "k = 'floats'", "1,floats different intranet tz"},
		{`ba = '\x000102feff01'`, "k = 'max'", "9223372036854775807,max different intranet ba"},
		{"nu = nu - 0.000000000000000000000000000001", "k = 'max'", "9223372036854775807,max different intranet nu"},
		{"i8 = 9223372036854775806", "k = 'max'", "9223372036854775807,max different intranet i8"},
		{"bo = true, da = '4713-01-02 BC'", "k = 'min'", "-9223372036854775808,min different intranet bo,da"},
		{"tm = '00:00:00.000002', iv = '1 day -1 second -1 microsecond'", "k = 'special'", "0,special different intranet tm,iv"},
		{"ia = '{{1,2},{3,5}}'", "k = 'special'", "0,special different intranet ia"},
		{`js = '{"k": [1, 2.5, "中", null, {"e": "😀"}],   "k": 3}', jb = '{"b": 1, "a": [true, false]}'`, "k = 'max'",
			"9223372036854775807,max different intranet js,jb"},
		{"uu = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', tx = '中文字符 😀 emoji 🎊'", "k = 'max'", "9223372036854775807,max different intranet tx,uu"},
	} {
		q := "UPDATE types_demo SET " + c.set + " WHERE " + c.where
		mustExec(t, z.dst(), q)
		logs.Reset()
		vs, err := z.coord.Verify(ctx, name, nil)
		is.NoErr(err)
		if got := diffLines(vs); len(got) != 1 || got[0] != "types_demo "+c.want {
			t.Errorf("%s: found %q", q, got)
		}
		is.True(strings.Contains(logs.String(), "served verify sums"))
		mustExec(t, z.src(), q) // the same on both sides again
	}
	vs, err = z.coord.Verify(ctx, name, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string(nil))
}

// PostgreSQL on both sides, the intranet's without a checksum (as before
// 14, which has no bit_xor): the gateway answers the probe with row
// hashes, and the verification hashes rows on both sides and finds the
// damage, where it failed on the gateway's refusal.
func TestVerifySumsGatewayWithout(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "postgres", zoneOpts{})
	want := damagedOrders(t, z, 1000)
	var logs lockedBuffer
	gw, err := syncer.NewGateway(sumless{z.intra}, z.keys, &syncer.GatewayOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	is.NoErr(err)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	client, err := transport.NewClient(srv.URL, z.keys, nil)
	is.NoErr(err)
	t.Cleanup(func() { client.Close() })
	coord, err := syncer.NewCoordinator(z.inet, client, nil)
	is.NoErr(err)
	vs, err := coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 250})
	is.NoErr(err)
	is.Equal(diffLines(vs), want)
	is.True(strings.Contains(logs.String(), "verify sums asked for, none here"))
	is.True(!strings.Contains(logs.String(), "served verify sums"))
	is.True(servedRanges(t, logs.String()) > 0)
}

// MariaDB on the internet, PostgreSQL on the intranet, the same table:
// the two engines' checksums never compare, so the coordinator does not
// ask the gateway for one (not even to probe), the rows are hashed on
// both sides, and the damage is found as by two databases of one engine.
func TestVerifySumsNotAcrossEngines(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	var logs lockedBuffer
	z := newZones(t, "mysql", zoneOpts{gw: &syncer.GatewayOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	z.intra = openDB(t, "postgres")
	z.restartGateway()
	is.True(z.inet.SumAlgorithm() != "" && z.intra.SumAlgorithm() != "" && z.inet.SumAlgorithm() != z.intra.SumAlgorithm())
	is.NoErr(z.inet.Configure(ctx, orders))
	is.NoErr(z.intra.Configure(ctx, orders))
	mustExec(t, z.src(), ordersDDL)
	mustExec(t, z.dst(), inKind("postgres", ordersDDL))
	var vals []string
	for i := 0; i < 1000; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'order %d', %d.%02d, %s, NOW(6))", i, i, i, i%100, blobIn("mysql", fmt.Sprintf("%04x00ff", i))))
	}
	mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
	z.waitLag()
	_, err := z.runOnce()
	is.NoErr(err)
	mustExec(t, z.dst(), "DELETE FROM orders WHERE id = 10")
	mustExec(t, z.dst(), "UPDATE orders SET note = 'x' WHERE id = 400")
	mustExec(t, z.dst(), "UPDATE orders SET amount = 0.01 WHERE id = 800")
	mustExec(t, z.dst(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (99999, 'stray', 1.00, NULL, LOCALTIMESTAMP(6))")
	logs.Reset()
	vs, err := z.coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 250})
	is.NoErr(err)
	is.Equal(diffLines(vs), []string{
		"orders 10 missing intranet ",
		"orders 400 different intranet note",
		"orders 800 different intranet amount",
		"orders 99999 extra intranet ",
	})
	is.True(!strings.Contains(logs.String(), "served verify sums"))
	is.True(servedRanges(t, logs.String()) > 0)
	// Asked anyway, each side refuses the other's algorithm (the
	// gateway with row hashes, which the client tells apart).
	_, _, err = z.client.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, storage.SumMySQLMD5)
	is.True(errors.Is(err, transport.ErrNoSum))
	_, _, err = z.inet.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, storage.SumPostgresMD5)
	is.True(errors.Is(err, gapsync.ErrMalformed))
}
