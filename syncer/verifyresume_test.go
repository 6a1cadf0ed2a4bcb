package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// dyingClient is the gateway's client that fails every range request
// after the first alive ones, as a process killed midway would stop, and
// counts the rows it was answered.
type dyingClient struct {
	*transport.Client
	alive atomic.Int64
	rows  atomic.Int64
}

var errKilled = errors.New("killed")

func (c *dyingClient) HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	return c.count(c.Client.HashRanges(ctx, t, cols, r, per, budget, salt))
}

// SumRanges is the same for the checksums of two databases of one engine.
func (c *dyingClient) SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error) {
	if c.alive.Load() <= 0 {
		return nil, false, errKilled
	}
	return c.count(c.Client.SumRanges(ctx, t, cols, r, per, budget, salt, algo))
}

func (c *dyingClient) count(rs []gapsync.RangeHash, more bool, err error) ([]gapsync.RangeHash, bool, error) {
	if c.alive.Add(-1) < 0 {
		return nil, false, errKilled
	}
	for _, x := range rs {
		c.rows.Add(x.Rows)
	}
	return rs, more, err
}

// damagedOrders fills orders with n rows on both sides, synced, then
// damages four rows on the intranet (one in the first 500 rows, one after
// the first quarter, one after three quarters, one past the end)
// and returns what a verification must report.
func damagedOrders(t *testing.T, z *zones, n int) []string {
	t.Helper()
	z.both(orders, inKind(z.kind, ordersDDL))
	for start := 0; start < n; start += 500 {
		var vals []string
		for i := start; i < start+500; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 'order %d', %d.%02d, %s, %s)", i, i, i, i%100, blobIn(z.kind, fmt.Sprintf("%04x00ff", i)), z.now))
		}
		mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
	}
	z.waitLag()
	if _, err := z.runOnce(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, z.dst(), "DELETE FROM orders WHERE id = 10")
	mustExec(t, z.dst(), fmt.Sprintf("UPDATE orders SET note = 'x' WHERE id = %d", n/4+100))
	mustExec(t, z.dst(), fmt.Sprintf("UPDATE orders SET amount = 0.01 WHERE id = %d", 3*n/4+100))
	mustExec(t, z.dst(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (99999, 'stray', 1.00, NULL, "+z.now+")")
	return []string{
		"orders 10 missing intranet ",
		fmt.Sprintf("orders %d different intranet note", n/4+100),
		fmt.Sprintf("orders %d different intranet amount", 3*n/4+100),
		"orders 99999 extra intranet ",
	}
}

// A verification that dies midway (its requests to the gateway fail, as
// when the process is killed) keeps its progress; the next verification
// of the same tables continues from the last range kept, reads only the
// rest, and reports exactly what one run in one go does, the rows found
// before the stop included, each kept once in sync_verify.
func TestVerifyResumesAfterStop(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		const n = 4000
		want := damagedOrders(t, z, n)
		opts := &syncer.VerifyOptions{RangeRows: 250, CheckpointEvery: time.Nanosecond}

		dc := &dyingClient{Client: z.client}
		dc.alive.Store(12) // some ranges, then the process dies
		coord, err := syncer.NewCoordinator(z.inet, dc, nil)
		is.NoErr(err)
		opts.Budget = 250 // one range a request
		_, err = coord.Verify(ctx, []string{"orders"}, opts)
		is.True(errors.Is(err, errKilled))
		before := dc.rows.Load()

		dc.alive.Store(1 << 30)
		dc.rows.Store(0)
		vs, err := coord.Verify(ctx, []string{"orders"}, opts)
		is.NoErr(err)
		is.Equal(diffLines(vs), want)
		is.Equal(vs[0].Rows, int64(n+1))
		is.True(vs[0].Resumed >= 1000)   // carried over, not read again
		is.True(vs[0].Resumed <= before) // and only what was compared
		rest, resumed := dc.rows.Load(), vs[0].Resumed
		is.True(!vs[0].Unfinished)

		kept, err := z.inet.Verifications(ctx, "")
		is.NoErr(err)
		var lines []string
		for _, k := range kept[1:] {
			lines = append(lines, k.TableName+" "+k.KeyText+" "+k.Kind+" "+k.Side+" "+k.Columns)
		}
		is.Equal(lines, want) // each once
		is.Equal(kept[0].Rows, int64(n+1))

		// Finished: the next verification starts over, and agrees.
		dc.rows.Store(0)
		vs, err = coord.Verify(ctx, []string{"orders"}, opts)
		is.NoErr(err)
		is.Equal(diffLines(vs), want)
		is.Equal(vs[0].Resumed, int64(0))
		is.True(dc.rows.Load() >= n)
		is.True(rest <= dc.rows.Load()-resumed) // the continued run read only the rest

		// A repair of a continued verification's report checks every
		// row against the hashes seen before the stop.
		dc.alive.Store(12)
		_, err = coord.Verify(ctx, []string{"orders"}, opts)
		is.True(errors.Is(err, errKilled))
		dc.alive.Store(1 << 30)
		vs, err = coord.Verify(ctx, []string{"orders"}, opts)
		is.NoErr(err)
		is.True(vs[0].Resumed > 0)
		rs, err := coord.Repair(ctx, vs)
		is.NoErr(err)
		done := 0
		for _, r := range rs {
			if r.Done {
				done++
			}
		}
		is.Equal(done, 3) // the extra stays: no tombstones on the internet
	})
}

// Until stops a verification at the end of a range; the next one
// continues it, and Fresh starts over instead.
func TestVerifyUntilThenContinue(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	want := damagedOrders(t, z, 2000)
	opts := &syncer.VerifyOptions{RangeRows: 500, Until: time.Now()}
	vs, err := z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	is.Equal(len(vs), 1)
	is.True(vs[0].Unfinished)
	is.Equal(vs[0].Rows, int64(501)) // one range: the intranet's first 500 rows, and row 10 here
	is.Equal(diffLines(vs), want[:1])

	opts.Until = time.Time{}
	vs, err = z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	is.True(!vs[0].Unfinished)
	is.Equal(vs[0].Resumed, int64(501))
	is.Equal(diffLines(vs), want)

	opts.Until = time.Now()
	_, err = z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	opts.Until, opts.Fresh = time.Time{}, true
	vs, err = z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	is.Equal(vs[0].Resumed, int64(0))
	is.Equal(diffLines(vs), want)
}

// First-level ranges follow the time they take: with a time budget no
// range can meet they stay at the smallest size, with one every range
// meets they grow to the largest after the first requests.
func TestVerifyRangesSizedToTime(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	damagedOrders(t, z, 3000)
	opts := &syncer.VerifyOptions{MinRangeRows: 50, MaxRangeRows: 500, RangeTime: time.Nanosecond, Fresh: true}
	vs, err := z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	is.Equal(vs[0].Ranges, 3000/50)
	is.Equal(len(vs[0].Diffs), 4)

	opts.RangeTime = time.Hour
	vs, err = z.coord.Verify(ctx, nil, opts)
	is.NoErr(err)
	is.Equal(vs[0].Ranges, 8+(3000-8*50+499)/500) // 4 ranges of 50 in each of the first two requests (the second is asked while the first is compared), then 500 each
	is.Equal(len(vs[0].Diffs), 4)
}

// On a pull table (intranet → internet) the internet is the far side: a
// row only there is deleted by a repair when the intranet has the table's
// tombstones (its deletions travel, so the intranet deleted or never had
// it), and left, with the reason, when it has none (the internet may keep
// rows the intranet deleted, by design).
func TestRepairPullTableExtras(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		for _, tombstones := range []bool{true, false} {
			t.Run(fmt.Sprint("tombstones=", tombstones), func(t *testing.T) {
				is := is.New(t)
				ctx := context.Background()
				z := newZones(t, kind, zoneOpts{})
				z.both(letters, inKind(kind, lettersDDL))
				if tombstones {
					is.NoErr(z.intra.InstallTombstones(ctx, letters))
				}
				for i := 0; i < 20; i++ {
					mustExec(t, z.dst(), fmt.Sprintf("INSERT INTO letters (id, body, updated_at) VALUES (%d, 'doc %d', %s)", i, i, z.now))
				}
				z.waitLag()
				_, err := z.runOnce()
				is.NoErr(err)
				mustExec(t, z.src(), "DELETE FROM letters WHERE id = 7")
				mustExec(t, z.src(), "INSERT INTO letters (id, body, updated_at) VALUES (500, 'only here', "+z.now+")")
				vs, err := z.coord.Verify(ctx, nil, nil)
				is.NoErr(err)
				is.Equal(diffLines(vs), []string{"letters 7 missing internet ", "letters 500 extra internet "})

				rs, err := z.coord.Repair(ctx, vs)
				is.NoErr(err)
				var got []string
				for _, r := range rs {
					got = append(got, fmt.Sprintf("%s %s %v %s", r.KeyText(), r.Action, r.Done, r.Reason))
				}
				vs, err = z.coord.Verify(ctx, nil, nil)
				is.NoErr(err)
				if tombstones {
					is.Equal(got, []string{"7 upsert true ", "500 delete true "})
					is.Equal(diffLines(vs), []string(nil))
					is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM letters WHERE id = 500"), 0)
					is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM letters"), 20) // the intranet untouched
					return
				}
				is.Equal(got, []string{"7 upsert true ", "500 delete false deletions do not travel for this table (no tombstone table on the intranet side)"})
				is.Equal(diffLines(vs), []string{"letters 500 extra internet "})
			})
		}
	})
}

// A file reference edited behind sync's back on the intranet is named by
// verify (references compare as their origin wrote them), and repair puts
// it back without breaking the reference rules: a row holding the
// internet's file points at the intranet's copy again, a row holding the
// intranet's own file keeps it as its own (it is neither redirected to a
// copy nor taken for an internet file), nothing is staged or exported
// for the corrupt reference, and the cycles after are quiet.
func TestVerifyRepairsCorruptedReference(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := fileZonesWith(t, kind, inKind(kind, docsDDL))
		put(t, z.inetStore, "in/a.png", []byte("file a"))
		put(t, z.inetStore, "in/b.png", []byte("file b"))
		put(t, z.intraStore, "out/c.png", []byte("file c"))
		put(t, z.intraStore, "out/d.png", []byte("file d, never referenced by sync"))
		z.doc(gapsync.Internet, 1, "in/a.png")
		z.doc(gapsync.Internet, 2, "in/b.png")
		z.doc(gapsync.Intranet, 3, "out/c.png")
		z.rounds(3)
		is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/a.png")
		is.Equal(z.path(gapsync.Internet, 3), "from-intranet/out/c.png")
		vs, err := z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string(nil)) // each side's copy compares as its origin's reference

		records := func(side gapsync.Side) int {
			return count(t, z.db(side).db, "SELECT COUNT(*) FROM file_record")
		}
		inetRecords, intraRecords := records(gapsync.Internet), records(gapsync.Intranet)
		intra := z.db(gapsync.Intranet)
		intra.exec("UPDATE docs SET path = 'from-internet/in/b.png' WHERE id = 1") // redirected to another row's file
		intra.exec("UPDATE docs SET path = 'out/d.png' WHERE id = 3")              // the intranet's own, edited
		vs, err = z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string{"docs 1 different intranet path", "docs 3 different intranet path"})

		rs, err := z.coord.Repair(ctx, vs)
		is.NoErr(err)
		for _, r := range rs {
			is.True(r.Done)
		}
		is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/a.png") // the intranet's copy of the internet's file
		is.Equal(z.path(gapsync.Intranet, 3), "out/c.png")              // its own file, as its own
		is.Equal(z.path(gapsync.Intranet, 2), "from-internet/in/b.png") // untouched
		vs, err = z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string(nil))

		for range 3 {
			r, _ := z.round()
			is.Equal(r.Rows(""), int64(0)) // quiet: the repair is not a change to send back
		}
		is.Equal(records(gapsync.Internet), inetRecords) // nothing staged for the corrupt references
		is.Equal(records(gapsync.Intranet), intraRecords)
		is.True(!stored(z.inetStore, "from-intranet/out/d.png"))
		is.Equal(z.path(gapsync.Internet, 1), "in/a.png")
		is.Equal(z.path(gapsync.Internet, 3), "from-intranet/out/c.png")
		is.Equal(z.path(gapsync.Intranet, 3), "out/c.png")
	})
}
