package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// Two MariaDB databases: the ranges are checksummed by the servers (no
// row read out above the leaves), and the report is the one the row
// hashes give. A table with a binary float, or whose column types differ
// between the sides, is hashed from its rows instead; a database that
// cannot checksum (SQLite) refuses to be asked.
func TestVerifySumsOnTheServers(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	var logs lockedBuffer
	z := newZones(t, "mysql", zoneOpts{gw: &syncer.GatewayOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	want := damagedOrders(t, z, 3000)
	vs, err := z.coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 500})
	is.NoErr(err)
	is.Equal(diffLines(vs), want)
	is.Equal(vs[0].Rows, int64(3001))
	served := logs.String()
	is.True(strings.Count(served, "served verify sums") > 0)
	// Rows are read out and hashed only at the leaves of the bisection:
	// a few ranges of one row around each of the four differing rows.
	hashed := 0
	for _, l := range strings.Split(served, "\n") {
		if strings.Contains(l, "served verify ranges") {
			var n int
			_, err := fmt.Sscanf(l[strings.Index(l, " ranges=")+1:], "ranges=%d", &n)
			is.NoErr(err)
			hashed += n
		}
	}
	t.Logf("rows hashed from rows read out: %d of 3001", hashed)
	is.True(hashed <= 4*64)
	is.True(strings.Contains(served, "served verify rows")) // the differing rows' values, to name their columns

	// A FLOAT column: its text could hide a last bit, so rows are hashed.
	const floatsDDL = "CREATE TABLE floats (id BIGINT NOT NULL PRIMARY KEY, f FLOAT NULL, updated_at DATETIME(6) NULL)"
	floats := gapsync.Table{Name: "floats", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	z.both(floats, floatsDDL)
	var vals []string
	for i := 0; i < 100; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d.5, NOW(6))", i, i))
	}
	mustExec(t, z.src(), "INSERT INTO floats VALUES "+strings.Join(vals, ","))
	z.waitLag()
	_, err = z.runOnce()
	is.NoErr(err)
	mustExec(t, z.dst(), "UPDATE floats SET f = 42.500004 WHERE id = 42") // the next float32 after 42.5
	logs = lockedBuffer{}
	vs, err = z.coord.Verify(ctx, []string{"floats"}, nil)
	is.NoErr(err)
	is.Equal(diffLines(vs), []string{"floats 42 different intranet f"})
	is.True(!strings.Contains(logs.String(), "served verify sums"))

	// Other column types there: rows hashed, in the canonical form, equal.
	mustExec(t, z.dst(), "ALTER TABLE orders MODIFY note VARCHAR(80) NULL")
	logs = lockedBuffer{}
	vs, err = z.coord.Verify(ctx, []string{"orders"}, &syncer.VerifyOptions{RangeRows: 500})
	is.NoErr(err)
	is.Equal(diffLines(vs), want)
	is.True(!strings.Contains(logs.String(), "served verify sums"))

	// SQLite has no server checksum: asked for one, the gateway refuses.
	zs := newZones(t, "sqlite", zoneOpts{})
	zs.both(orders, ordersDDL)
	_, _, err = zs.client.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, storage.SumMySQLMD5)
	is.True(errors.Is(err, gapsync.ErrMalformed))
	_, _, err = zs.client.SumRanges(ctx, orders, []string{"id", "note"}, gapsync.KeyRange{}, 10, 100, nil, strings.Repeat("x", transport.MaxSumName+1))
	is.True(errors.Is(err, gapsync.ErrTooLarge))
}
