package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/transport"
)

// fillItems inserts items [from, to) on db in statements of 500 rows.
func (z *zones) fillItems(db *storage.DB, from, to int) {
	z.t.Helper()
	for lo := from; lo < to; lo += 500 {
		var vals []string
		var args []any
		for i := lo; i < min(lo+500, to); i++ {
			vals = append(vals, "(?, ?, ?, "+z.now+")")
			args = append(args, i, fmt.Sprintf("item %d 物品", i), i)
		}
		mustExec(z.t, db.Bun().DB, "INSERT INTO items (id, name, qty, updated_at) VALUES "+strings.Join(vals, ","), args...)
	}
}

// TestResumeWindow cuts a first load of 3,000 rows in pages of 100 after
// 12 pages, in each direction: the checkpoint holds the pages applied in
// order, -status shows the window in progress, and the next run reads
// only the rows after the checkpoint, in the same window, and ends with
// the tables equal and no checkpoint left.
func TestResumeWindow(t *testing.T) {
	const n, pageRows = 3000, 100
	eachBackend(t, func(t *testing.T, kind string) {
		for _, d := range []gapsync.Direction{gapsync.Push, gapsync.Pull} {
			t.Run(string(d), func(t *testing.T) {
				is := is.New(t)
				ctx := context.Background()
				z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: pageRows}})
				tbl := items
				tbl.Direction = d
				z.both(tbl, itemsDDL)
				src, dst := z.inet, z.intra
				path := transport.PathApply
				if d == gapsync.Pull {
					src, dst, path = z.intra, z.inet, transport.PathPull
				}
				z.fillItems(src, 0, n)
				z.waitLag()
				z.faults.only, z.faults.passFirst, z.faults.fail500 = path, 12, 1<<20
				r, err := z.runOnce()
				is.True(err != nil)
				first := r.Tables[0]
				t.Logf("first run: %d rows acknowledged, err %v", first.Rows, err)

				cp, ok, err := z.inet.Checkpoint(ctx, "items", d)
				is.NoErr(err)
				is.True(ok)
				applied := int64(count(t, dst.Bun().DB, "SELECT COUNT(*) FROM items"))
				t.Logf("checkpoint %d rows, %d applied", cp.Rows, applied)
				is.True(cp.Rows > 0)
				is.True(cp.Rows%pageRows == 0)
				is.True(cp.Rows <= first.Rows) // only acknowledged pages count…
				is.True(first.Rows <= applied)
				is.True(applied-cp.Rows <= 3*pageRows) // …and at most InFlight pages pass the checkpoint
				is.Equal(cp.Window, first.Window)
				is.Equal(cp.Window.From, "")
				is.Equal(cp.Left, n-cp.Rows) // counted when the run first checkpointed (for a pull, by the gateway)

				st, err := z.inet.Status(ctx)
				is.NoErr(err)
				is.Equal(len(st.Tables), 1)
				p := st.Tables[0].InProgress
				is.True(p != nil)
				is.Equal(p.Rows, cp.Rows)
				is.Equal(p.Left, cp.Left)
				is.Equal(p.To, cp.Window.To)

				z.fillItems(src, n, n+10) // after the window's bound: the next window's
				z.waitLag()
				z.faults.fail500 = 0
				r, err = z.runOnce()
				is.NoErr(err)
				e := r.Tables[0]
				is.Equal(e.Window, cp.Window)           // the same window
				is.Equal(e.Rows, int64(n)-cp.Rows)      // only the rows after the checkpoint
				is.True(e.Rows <= n-applied+3*pageRows) // at most what was not applied, and the pages in flight
				_, ok, err = z.inet.Checkpoint(ctx, "items", d)
				is.NoErr(err)
				is.True(!ok)

				r, err = z.runOnce() // the next window: the rows inserted meanwhile
				is.NoErr(err)
				is.Equal(r.Tables[0].Rows, int64(10))
				z.assertSame("items", "id")
			})
		}
	})
}

// TestResumeWindowStale: a checkpoint that does not fit any more (the
// table configured differently, the position edited into garbage) is
// dropped, and the window is read again from its first page.
func TestResumeWindowStale(t *testing.T) {
	const n = 600
	eachBackend(t, func(t *testing.T, kind string) {
		for _, c := range []struct {
			name  string
			spoil func(z *zones)
		}{
			{"reconfigured", func(z *zones) {
				tbl := items
				tbl.SoftDelete = "qty"
				if err := z.inet.Configure(context.Background(), tbl); err != nil {
					z.t.Fatal(err)
				}
			}},
			{"garbage position", func(z *zones) {
				mustExec(z.t, z.src(), "UPDATE sync_checkpoint SET position = ?", []byte("\x01\x02 not a position"))
			}},
			{"bound edited", func(z *zones) {
				mustExec(z.t, z.src(), "UPDATE sync_checkpoint SET window_to = ?", "not a bound")
			}},
			{"reloaded", func(z *zones) {
				if _, err := z.inet.Reload(context.Background(), "items", "coordinator", 0); err != nil {
					z.t.Fatal(err)
				}
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				is := is.New(t)
				ctx := context.Background()
				z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 50}, inFlight: 1})
				z.both(items, itemsDDL)
				z.fillItems(z.inet, 0, n)
				z.waitLag()
				z.faults.only, z.faults.passFirst, z.faults.fail500 = transport.PathApply, 4, 1<<20
				_, err := z.runOnce()
				is.True(err != nil)
				_, ok, err := z.inet.Checkpoint(ctx, "items", gapsync.Push)
				is.NoErr(err)
				is.True(ok)
				c.spoil(z)
				z.faults.fail500 = 0
				r, err := z.runOnce()
				is.NoErr(err)
				is.Equal(r.Tables[0].Rows, int64(n)) // from the first page
				_, ok, err = z.inet.Checkpoint(ctx, "items", gapsync.Push)
				is.NoErr(err)
				is.True(!ok)
				z.assertSame("items", "id")
			})
		}
	})
}

// TestResumePositionRefused: the intranet refuses the position of a pull
// checkpoint (its table's key changed since): the run drops it and reads
// the window from its first page.
func TestResumePositionRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	const n = 400
	z := newZones(t, "sqlite", zoneOpts{page: gapsync.Page{Rows: 50}, inFlight: 1})
	tbl := items
	tbl.Direction = gapsync.Pull
	z.both(tbl, itemsDDL)
	z.fillItems(z.intra, 0, n)
	z.waitLag()
	z.faults.only, z.faults.passFirst, z.faults.fail500 = transport.PathPull, 3, 1<<20
	_, err := z.runOnce()
	is.True(err != nil)
	cp, ok, err := z.inet.Checkpoint(ctx, "items", gapsync.Pull)
	is.NoErr(err)
	is.True(ok)
	// The window's bounds are times; the intranet's cursor is now an integer.
	intra := tbl
	intra.Cursor = "qty"
	is.NoErr(z.intra.Configure(ctx, intra))
	z.faults.fail500 = 0
	r, err := z.runOnce()
	is.NoErr(err)
	is.Equal(r.Tables[0].Rows, int64(n))
	is.True(r.Tables[0].Window.To != cp.Window.To) // a new window
	_, ok, err = z.inet.Checkpoint(ctx, "items", gapsync.Pull)
	is.NoErr(err)
	is.True(!ok)
	z.assertSame("items", "id")
}

// TestRemainingRefusesBadInput: the gateway's count of the rows left of a
// pull window refuses a malformed body, window or position and a table
// not enabled for pull, and answers a good request.
func TestRemainingRefusesBadInput(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	tbl := items
	tbl.Direction = gapsync.Pull
	z.both(tbl, itemsDDL)
	z.fillItems(z.intra, 0, 30)
	to := "2999-01-01 00:00:00.000000"
	for name, body := range map[string]string{
		"not json":      `{"table":`,
		"no window":     `{"table":"items"}`,
		"unordered":     `{"table":"items","window":{"From":"2999-01-02 00:00:00.000000","To":"` + to + `"}}`,
		"position":      `{"table":"items","window":{"To":"` + to + `"},"after":"AAEC"}`,
		"bad table":     `{"table":"items; DROP TABLE items","window":{"To":"` + to + `"}}`,
		"not for pull":  `{"table":"sync_log","window":{"To":"` + to + `"}}`,
		"bound is text": `{"table":"items","window":{"To":"x' OR 1=1 --"}}`,
	} {
		_, err := z.client.Call(ctx, transport.PathRemaining, []byte(body))
		if err == nil {
			t.Fatalf("%s: answered", name)
		}
		t.Logf("%s: %v", name, err)
	}
	n, err := z.client.Remaining(ctx, tbl, gapsync.Window{To: to}, nil)
	is.NoErr(err)
	is.Equal(n, int64(30))
}

// TestResumeWindowInDeletions cuts a window in its deletions' phase (the
// tombstones come before the changed rows): the next run goes on from
// the checkpoint inside the tombstones, then reads the rows, and both
// sides end equal.
func TestResumeWindowInDeletions(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 50}, inFlight: 1})
		z.both(items, itemsDDL)
		is.NoErr(z.inet.InstallTombstones(ctx, items))
		z.fillItems(z.inet, 0, 600)
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)
		mustExec(t, z.src(), "DELETE FROM items WHERE id < 400")
		mustExec(t, z.src(), "UPDATE items SET qty = -1, updated_at = "+z.now+" WHERE id >= 500")
		z.waitLag()
		z.faults.only, z.faults.passFirst, z.faults.fail500 = transport.PathApply, 3, 1<<20
		_, err = z.runOnce()
		is.True(err != nil)
		cp, ok, err := z.inet.Checkpoint(ctx, "items", gapsync.Push)
		is.NoErr(err)
		is.True(ok)
		is.Equal(cp.Rows, int64(150)) // three pages of deletions
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 450)
		z.faults.fail500 = 0
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Tables[0].Rows, int64(250+100)) // the other deletions, then the changed rows
		z.assertSame("items", "id")
	})
}
