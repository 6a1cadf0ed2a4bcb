package syncer_test

import (
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
)

// TestFirstLoadPages: a table's first load goes in pages of LoadRows, its
// next windows in pages of Page.Rows, on every engine. Rows that are on
// the far side already (a table filled there before) are replaced as
// ever, and on a table synced both ways the loaded rows are not sent
// back: the load keeps every rule of an ordinary page.
func TestFirstLoadPages(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		for _, d := range []gapsync.Direction{gapsync.Push, gapsync.Both} {
			t.Run(string(d), func(t *testing.T) {
				is := is.New(t)
				z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 100}, loadRows: 1000})
				tbl := items
				tbl.Direction = d
				z.both(tbl, inKind(kind, itemsDDL))
				z.fillItems(z.inet, 0, 2500)
				if d == gapsync.Push {
					// Rows there already, with other values: a page of the
					// load meets them and writes them over.
					z.fillItems(z.intra, 1200, 1300)
					mustExec(t, z.intra.Bun().DB, "UPDATE items SET name = 'stale', qty = -1")
				}
				z.waitLag()
				r, err := z.runOnce()
				is.NoErr(err)
				push := entry(r, gapsync.Push)
				is.Equal(push.Rows, int64(2500))
				is.Equal(push.Batches, 3) // 1,000, 1,000, 500
				if d == gapsync.Both {
					is.Equal(entry(r, gapsync.Pull).Rows, int64(0)) // the loaded rows do not come back
				}
				z.assertSame("items", "id")

				z.fillItems(z.inet, 2500, 2750)
				z.waitLag()
				r, err = z.runOnce()
				is.NoErr(err)
				push = entry(r, gapsync.Push)
				is.Equal(push.Rows, int64(250))
				is.Equal(push.Batches, 3) // 100, 100, 50
				if d == gapsync.Both {
					is.Equal(entry(r, gapsync.Pull).Rows, int64(0))
				}
				z.assertSame("items", "id")
			})
		}
	})
}

// entry is the report's run of d.
func entry(r *syncer.Report, d gapsync.Direction) gapsync.LogEntry {
	for _, e := range r.Tables {
		if e.Direction == d {
			return e
		}
	}
	return gapsync.LogEntry{}
}
